// The guest side of one running VM: its backdoor shell and transfer port, opened over the VM's
// transport. A VM that booted prints the backdoor banner first; one restored from a snapshot has
// its shell idle and framed already (only its clock is behind), under the session the snapshot
// recorded; one attached to by another corral process may have a command in flight, whose output
// is drained first. Over vsock, where each connection has a shell of its own, a shell that ended
// is replaced by connecting again.

import type { RunningVm } from "../backends/backend.ts";
import type { Deadline } from "../deadline.ts";
import { BackdoorShell, type ShellStreams } from "../guest/backdoor-shell.ts";
import { TransferDisk } from "../guest/transfer-disk.ts";
import { TransferPort } from "../guest/transfer-port.ts";
import { setClockScripts } from "./guest-scripts.ts";

/** How the shell is found: after a boot, in a restored VM, or in a VM another process started. */
export type ShellArrival = "boot" | "restored" | "attached";

export class GuestSession {
  readonly #vm: RunningVm;
  #arrival: ShellArrival;
  readonly #describe: () => string[];
  readonly #restoredSession: string | undefined;
  #shell: Promise<BackdoorShell> | undefined;
  #transfer: Promise<TransferPort> | undefined;
  #disk: TransferDisk | undefined;
  #isUp = false;
  #gone: string | undefined;

  /** `restoredSession`: the session token of a restored snapshot's shell, when it recorded one. */
  constructor(
    vm: RunningVm,
    arrival: ShellArrival,
    describe: () => string[],
    restoredSession?: string,
  ) {
    this.#vm = vm;
    this.#arrival = arrival;
    this.#describe = describe;
    this.#restoredSession = restoredSession;
  }

  /** True once the shell has answered, until it is gone. */
  get isUp(): boolean {
    return this.#isUp && this.#gone === undefined;
  }

  /** The backdoor shell, once the guest has it up. */
  shell(deadline: Deadline): Promise<BackdoorShell> {
    this.#shell ??= this.#connect(deadline);
    this.#shell.catch(() => {
      this.#shell = undefined;
    });
    return this.#shell;
  }

  /** The transfer port, connected once. */
  transferPort(deadline: Deadline): Promise<TransferPort> {
    this.#transfer ??= this.#vm.transport
      .open("xfer", deadline)
      .then((stream) => new TransferPort(stream));
    this.#transfer.catch(() => {
      this.#transfer = undefined;
    });
    return this.#transfer;
  }

  /** The transfer disk, when the VM has one. */
  transferDisk(): TransferDisk | undefined {
    const path = this.#vm.transferDisk;
    if (path) this.#disk ??= new TransferDisk(path);
    return this.#disk;
  }

  /** The shell is going away (poweroff, reboot, the VM ended): every later call fails. */
  invalidate(reason: string): void {
    this.#gone ??= reason;
    this.#isUp = false;
    void this.#shell?.then(
      (shell) => shell.invalidate(reason),
      () => undefined,
    );
  }

  async #connect(deadline: Deadline): Promise<BackdoorShell> {
    const [console, stdout, stderr] = await Promise.all(
      (["shell", "stdout", "stderr"] as const).map((port) =>
        this.#vm.transport.open(port, deadline),
      ),
    );
    const streams = { console, stdout, stderr } as ShellStreams;
    const shell = await this.#arrive(streams, deadline);
    if (this.#vm.transport.isShellPerConnection) {
      void shell.connectionClosed.then(() => {
        stdout?.destroy();
        stderr?.destroy();
        if (this.#gone) return;
        // The guest's next shell comes with a new connection, and prints its banner.
        this.#isUp = false;
        this.#arrival = "boot";
        this.#shell = undefined;
      });
    }
    if (this.#gone) shell.invalidate(this.#gone);
    this.#isUp = true;
    return shell;
  }

  async #arrive(streams: ShellStreams, deadline: Deadline): Promise<BackdoorShell> {
    if (this.#arrival === "boot") return BackdoorShell.connect(streams, deadline, this.#describe);
    if (this.#arrival === "restored") {
      // Over vsock each connection gets a shell of its own: the snapshot's went with its connection.
      const session = this.#vm.transport.isShellPerConnection ? undefined : this.#restoredSession;
      const shell = BackdoorShell.attach(streams, session);
      await this.#vm.resume(deadline);
      // The prelude, when no session was recorded, runs first: the time is taken once it has.
      await shell.ready(deadline, this.#describe);
      // The guest's code is cold in TCG's cache: a fork or a process start costs tens of ms.
      const clock = setClockScripts(Date.now());
      await shell.exec(clock.script, deadline, this.#describe, {
        inShell: true,
        leadingLine: clock.request,
      });
      return shell;
    }
    const shell = BackdoorShell.attach(streams);
    // Output of a command that was in flight when the last process let go comes first: this
    // call waits for that command to end and drops everything before its own reply.
    await shell.exec("true", deadline, this.#describe);
    return shell;
  }
}
