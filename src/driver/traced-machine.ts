// A Machine whose verbs the test log shows as steps (machine, verb, arguments, duration), whose
// screenshots with a relative path land in the test's output folder, and whose verbs end at once
// when the driver stops.

import { isAbsolute, join } from "node:path";
import type { Machine } from "../machine/machine.ts";
import type { DriverLog } from "./driver-log.ts";

export interface TraceOptions {
  /** Where screenshots with a relative path go. */
  outputDir?: string;
  /** Once it fires, pending verbs reject with its reason and later ones do not start. */
  stopped?: AbortSignal;
}

/** Methods that answer at once, with no promise: they run as they are, even once stopped. */
const SYNCHRONOUS = new Set([
  "constructor",
  "isUp",
  "getConsoleLog",
  "onConsoleLine",
  "sendConsole",
]);
/** Verbs that are quick or that report by themselves; they are not logged as steps. */
const QUIET = new Set(["sendKey", "execute"]);

export function traceMachine(
  machine: Machine,
  log: DriverLog,
  options: TraceOptions = {},
): Machine {
  const { outputDir, stopped } = options;
  return new Proxy(machine, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      // Machine's methods use private fields: they must run on the machine, not on the proxy.
      if (typeof property !== "string" || SYNCHRONOUS.has(property)) return value.bind(target);
      return (...args: unknown[]) => {
        if (property === "screenshot" && outputDir && typeof args[0] === "string") {
          args[0] = isAbsolute(args[0]) ? args[0] : join(outputDir, args[0]);
        }
        if (stopped?.aborted) return Promise.reject(stopped.reason);
        const result = value.apply(target, args);
        if (!(result instanceof Promise)) return result;
        if (QUIET.has(property)) return untilStopped(result, stopped);
        return log.step(
          `${property}(${describeArgs(args)})`,
          () => untilStopped(result, stopped),
          target.name,
        );
      };
    },
  });
}

/** `promise`, or a rejection with the signal's reason as soon as `stopped` fires. */
function untilStopped<T>(promise: Promise<T>, stopped: AbortSignal | undefined): Promise<T> {
  if (!stopped) return promise;
  const { promise: outcome, resolve, reject } = Promise.withResolvers<T>();
  const onStop = () => reject(stopped.reason);
  stopped.addEventListener("abort", onStop, { once: true });
  promise.then(resolve, reject).finally(() => stopped.removeEventListener("abort", onStop));
  return outcome;
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
