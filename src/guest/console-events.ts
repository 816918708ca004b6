// Decodes what the backdoor shell prints on hvc0 into events. Everything the shell itself says
// there is one line: commands' output goes to the ports, never to hvc0.

import { BANNER } from "./shell-framing.ts";

export type ConsoleEvent =
  /** A (new) shell started and waits for its prelude. */
  | { kind: "banner" }
  /** The prelude of session `token` ran; `problem` is empty when all is well. */
  | { kind: "ready"; token: string; problem: string }
  /** The shell of session `token` died. */
  | { kind: "died"; token: string }
  /** Command `nonce` exited with `exitCode`. */
  | { kind: "exited"; nonce: string; exitCode: number }
  /** Command `nonce` was killed at its limit. */
  | { kind: "killed"; nonce: string }
  /** Command `nonce` could not be started. */
  | { kind: "not-started"; nonce: string };

const STATUS = /(__corral_[0-9a-f]{32}_)(X(\d+)|T|F)$/;
const READY = /__corral_ready_([0-9a-f]{32}) ?(.*)$/;
const DIED = /__corral_died_([0-9a-f]{32})$/;
/** A longer line cannot be one of the shell's: only its end is kept. */
const MAX_LINE = 4096;

export class ConsoleEvents {
  #partial = "";

  /** The events of the lines `chunk` completes. */
  push(chunk: Buffer): ConsoleEvent[] {
    const lines = (this.#partial + chunk.toString("latin1")).split("\n");
    this.#partial = (lines.pop() ?? "").slice(-MAX_LINE);
    return lines.flatMap((line) => {
      // A terminal opened anew after a hangup has its default settings again: "\r\n" line ends.
      const event = parseLine(line.endsWith("\r") ? line.slice(0, -1) : line);
      return event ? [event] : [];
    });
  }
}

function parseLine(line: string): ConsoleEvent | undefined {
  const status = STATUS.exec(line);
  if (status) {
    const nonce = status[1] ?? "";
    if (status[3] !== undefined) return { kind: "exited", nonce, exitCode: Number(status[3]) };
    return status[2] === "T" ? { kind: "killed", nonce } : { kind: "not-started", nonce };
  }
  const died = DIED.exec(line);
  if (died) return { kind: "died", token: died[1] ?? "" };
  const ready = READY.exec(line);
  if (ready) return { kind: "ready", token: ready[1] ?? "", problem: (ready[2] ?? "").trim() };
  if (line.includes(BANNER)) return { kind: "banner" };
  return undefined;
}
