// Machine's console, virtual-terminal and keyboard verbs.

import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Deadline, formatMs, type WaitOptions } from "../deadline.ts";
import { CorralError, ErrorCodes, TimeoutError } from "../errors.ts";
import { ttyChangeScript } from "./guest-scripts.ts";
import { charToKeyCombo, keyCombo } from "./keys.ts";
import { MONITOR_TIMEOUT_MS, type VmSession, WAIT_TIMEOUT_MS } from "./vm-session.ts";

/** Where waitForConsoleText resumes: the first console line it has not looked at. */
export interface ConsoleCursor {
  next: number;
}

/**
 * Waits for a console line matching `regex`, looking first at the lines after `cursor`; returns
 * the line and moves the cursor past it.
 */
export async function waitForConsoleText(
  session: VmSession,
  cursor: ConsoleCursor,
  regex: RegExp,
  options: WaitOptions,
): Promise<string> {
  const vm = session.vm ?? (await session.launch());
  const what = `${session.name}: waitForConsoleText(${regex})`;
  const deadline = new Deadline(what, options, WAIT_TIMEOUT_MS);
  const lines = vm.console.lines;
  for (; cursor.next < lines.length; cursor.next++) {
    const line = lines[cursor.next] ?? "";
    if (regex.test(line)) {
      cursor.next++;
      return line;
    }
  }
  const { promise, resolve: found } = Promise.withResolvers<string>();
  const stop = vm.console.onLine((line) => {
    if (regex.test(line)) found(line);
  });
  try {
    const line = await vm.scope.race(promise, deadline, deadline.what);
    cursor.next = vm.console.lines.length;
    return line;
  } finally {
    stop();
  }
}

/** Waits until the text on virtual terminal `tty` matches `regex`; returns that text. */
export async function waitUntilTtyMatches(
  session: VmSession,
  tty: number,
  regex: RegExp,
  options: WaitOptions,
): Promise<string> {
  const what = `${session.name}: waitUntilTtyMatches(${tty}, ${regex})`;
  const deadline = new Deadline(what, options, WAIT_TIMEOUT_MS);
  let text: string | undefined;
  let hash: string | undefined;
  for (;;) {
    // Each round trip returns as soon as the screen changes (or after a few seconds).
    const wait = new Deadline(what, { timeout: Math.min(5000, deadline.remainingMs) }, 0);
    const result = await session.runWaitScript(
      ttyChangeScript(tty, hash, wait.remainingMs),
      wait,
      options.signal,
    );
    if (result.exitCode === 0) {
      text = result.stdout.toString().replace(/\n$/, "");
      hash = createHash("sha256").update(text).digest("hex");
      if (regex.test(text)) return text;
    }
    if (deadline.remainingMs <= 0) {
      throw new TimeoutError(`${what}: timed out after ${formatMs(deadline.timeoutMs)}`, {
        machine: session.name,
        details: ["Last screen:", ...(text ?? "(none)").split("\n").map((line) => `  | ${line}`)],
      });
    }
  }
}

/** Presses a key combination, NixOS style: "ctrl-alt-delete", "shift-a", "ret". */
export async function sendKey(
  session: VmSession,
  key: string,
  options: WaitOptions,
): Promise<void> {
  const keyboard = session.ability("sendKey", "keys");
  const deadline = session.deadline(`sendKey(${key})`, options, MONITOR_TIMEOUT_MS);
  await keyboard.sendKeys(deadline, keyCombo(key));
}

/** Types `text`, one key press per character (US layout). */
export async function sendChars(
  session: VmSession,
  text: string,
  options: WaitOptions & { delayMs?: number },
): Promise<void> {
  for (const char of text) {
    const combo = charToKeyCombo(char);
    if (!combo) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${session.name}: sendChars cannot type ${JSON.stringify(char)}`,
        { machine: session.name },
      );
    }
    await sendKey(session, combo, options);
    if (options.delayMs) await sleep(options.delayMs);
  }
}
