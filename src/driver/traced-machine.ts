// A Machine whose verbs the test log shows as steps (machine, verb, arguments, duration), and
// whose screenshots with a relative path land in the test's output folder.

import { isAbsolute, join } from "node:path";
import type { Machine } from "../machine/machine.ts";
import type { DriverLog } from "./driver-log.ts";

/** Verbs that are quick or that report by themselves; they are not logged as steps. */
const QUIET = new Set([
  "isUp",
  "getConsoleLog",
  "onConsoleLine",
  "sendConsole",
  "sendKey",
  "execute",
  "constructor",
]);

export function traceMachine(machine: Machine, log: DriverLog, outputDir?: string): Machine {
  return new Proxy(machine, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      // Machine's methods use private fields: they must run on the machine, not on the proxy.
      if (typeof property !== "string") return value.bind(target);
      if (property === "screenshot" && outputDir) {
        return (path: string, ...rest: unknown[]) =>
          value.apply(target, [isAbsolute(path) ? path : join(outputDir, path), ...rest]);
      }
      if (QUIET.has(property) || property.startsWith("#")) return value.bind(target);
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        if (!(result instanceof Promise)) return result;
        return log.step(`${property}(${describeArgs(args)})`, () => result, target.name);
      };
    },
  });
}

function describeArgs(args: unknown[]): string {
  return args
    .filter((arg) => typeof arg !== "object" || arg instanceof RegExp)
    .map((arg) => {
      const text = arg instanceof RegExp ? String(arg) : JSON.stringify(arg);
      return text.length > 120 ? `${text.slice(0, 120)}…` : text;
    })
    .join(", ");
}
