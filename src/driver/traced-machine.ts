// A Machine whose verbs the test log shows as steps (machine, verb, arguments, duration), whose
// screenshots with a relative path land in the test's output folder, and whose verbs end at once
// when the test stops and are refused from then on.

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
 * (failed, timed out, disposed), and undefined while it runs; when `stopped` fires, pending verbs
 * reject with its reason.
 */
export function traceMachine(
  machine: Machine,
  log: DriverLog,
  outputDir: string | undefined,
  refusal: (what: string) => Error | undefined,
  stopped: AbortSignal,
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

function describeArgs(args: unknown[]): string {
  return args
    .filter(
      (arg) => (typeof arg !== "object" || arg instanceof RegExp) && typeof arg !== "function",
    )
    .map((arg) => {
      const text = arg instanceof RegExp ? String(arg) : JSON.stringify(arg);
      return text.length > 120 ? `${text.slice(0, 120)}…` : text;
    })
    .join(", ");
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
