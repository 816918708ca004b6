// A Machine whose verbs the test log shows as steps (machine, verb, arguments, duration), whose
// screenshots with a relative path land in the test's output folder, and whose verbs are refused
// once the test has stopped.

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
/** Verbs that return no promise: refused by throwing rather than by a rejected promise. */
const SYNC = new Set(["isUp", "getConsoleLog", "onConsoleLine", "sendConsole"]);

/**
 * `refusal(what)` returns the error a verb throws instead of running once the test has stopped
 * (failed, timed out, disposed), and undefined while it runs.
 */
export function traceMachine(
  machine: Machine,
  log: DriverLog,
  outputDir: string | undefined,
  refusal: (what: string) => Error | undefined,
): Machine {
  return new Proxy(machine, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      // Machine's methods use private fields: they must run on the machine, not on the proxy.
      if (typeof property !== "string") return value.bind(target);
      return (...args: unknown[]) => {
        const refused = refusal(`${target.name}: ${property}`);
        if (refused && SYNC.has(property)) throw refused;
        if (refused) return Promise.reject(refused);
        if (property === "screenshot" && outputDir && typeof args[0] === "string") {
          args[0] = isAbsolute(args[0]) ? args[0] : join(outputDir, args[0]);
        }
        const result = value.apply(target, args);
        if (QUIET.has(property) || !(result instanceof Promise)) return result;
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
