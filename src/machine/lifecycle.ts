// A machine's lifecycle as data: its states, the operations allowed in each, and where each
// operation leads. An operation not allowed in the current state fails with CORRAL_CONFLICT
// naming the state and the states that allow it.

import { CorralError, ErrorCodes } from "../errors.ts";

export type MachineState =
  /** Not started yet. */
  | "created"
  /** The VMM is starting or the guest is booting towards its shell. */
  | "starting"
  | "running"
  | "paused"
  /** Asked to end: the guest powers off or the VMM is being stopped. */
  | "stopping"
  /** Ended when asked to (shutdown, stop, dispose). */
  | "stopped"
  /** Ended without being asked: the guest powered off by itself, the VMM died or was killed. */
  | "exited";

export type MachineOperation =
  | "start"
  | "started"
  | "pause"
  | "resume"
  | "stop"
  | "stopped"
  | "exited"
  | "reboot"
  | "snapshot"
  | "resize"
  | "guest";

interface Transition {
  /** The states the operation is allowed in. */
  from: readonly MachineState[];
  /** The state it leads to; none when it leaves the state as it is. */
  to?: MachineState;
}

const ENDED: readonly MachineState[] = ["created", "stopped", "exited"];
const LIVE: readonly MachineState[] = ["starting", "running", "paused"];

/** Every operation, the states it is allowed in, and the state it leads to. */
export const TRANSITIONS: Readonly<Record<MachineOperation, Transition>> = {
  start: { from: ENDED, to: "starting" },
  started: { from: ["starting"], to: "running" },
  pause: { from: ["running"], to: "paused" },
  resume: { from: ["paused"], to: "running" },
  stop: { from: [...LIVE, "stopping"], to: "stopping" },
  stopped: { from: [...LIVE, "stopping"], to: "stopped" },
  exited: { from: [...LIVE, "stopping"], to: "exited" },
  reboot: { from: ["running"] },
  snapshot: { from: ["running", "paused"] },
  resize: { from: ["starting", "running"] },
  guest: { from: ["starting", "running"] },
};

/** The state machine of one machine. */
export class Lifecycle {
  #state: MachineState;
  readonly #listeners = new Set<(state: MachineState) => void>();

  constructor(initial: MachineState = "created") {
    this.#state = initial;
  }

  get state(): MachineState {
    return this.#state;
  }

  /** Whether `operation` is allowed now. */
  allows(operation: MachineOperation): boolean {
    return TRANSITIONS[operation].from.includes(this.#state);
  }

  /** Throws CORRAL_CONFLICT unless `operation` is allowed now; `what` names it in the message. */
  require(operation: MachineOperation, what: string, machine?: string): void {
    if (this.allows(operation)) return;
    const allowed = TRANSITIONS[operation].from.join(", ");
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `${machine ? `${machine}: ` : ""}${what}: not allowed while the machine is ${this.#state} (allowed when ${allowed})`,
      machine ? { machine } : {},
    );
  }

  /** Checks `operation` like require() and moves to the state it leads to. */
  apply(operation: MachineOperation, what: string, machine?: string): void {
    this.require(operation, what, machine);
    const to = TRANSITIONS[operation].to;
    if (to && to !== this.#state) {
      this.#state = to;
      for (const listener of this.#listeners) listener(to);
    }
  }

  /** Calls `listener` with each new state; returns the unsubscribe function. */
  onChange(listener: (state: MachineState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
