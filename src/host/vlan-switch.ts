// One virtual LAN: a vde_switch in hub mode whose socket folder QEMU NICs plug into, as in the
// NixOS test driver.

import { access } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CorralError, ErrorCodes } from "../errors.ts";
import { checkVlan } from "../network/addressing.ts";
import { requireHostTools } from "./requirements.ts";
import { SupervisedProcess } from "./supervised-process.ts";

const READY_TIMEOUT_MS = 10_000;
const STDERR_KEPT_CHARS = 2000;

export class VlanSwitch implements AsyncDisposable {
  readonly vlan: number;
  /** The switch's socket folder: QEMU's `-netdev vde,sock=…` and `QEMU_VDE_SOCKET_<vlan>`. */
  readonly socket: string;
  /**
   * Settles with the error to report when the switch ends before it is disposed (killed, or
   * crashed): every NIC on the VLAN is cut off from then on. Never rejects.
   */
  readonly died: Promise<CorralError>;
  readonly #process: SupervisedProcess;
  #isDisposed = false;

  private constructor(
    vlan: number,
    socket: string,
    process: SupervisedProcess,
    stderr: () => string,
  ) {
    this.vlan = vlan;
    this.socket = socket;
    this.#process = process;
    this.died = new Promise((resolve) => {
      void process.exited.then(({ code, signal }) => {
        if (this.#isDisposed) return;
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const said = stderr().trim().split("\n").filter(Boolean).slice(-10);
        resolve(
          new CorralError(
            ErrorCodes.HOST_COMMAND_FAILED,
            `the switch of VLAN ${vlan} (vde_switch, process ${process.pid}) ${how}: the machines on VLAN ${vlan} are cut off from each other`,
            {
              details: said.length
                ? ["vde_switch said:", ...said.map((line) => `  | ${line}`)]
                : [],
            },
          ),
        );
      });
    });
  }

  /** The switch's process id. */
  get pid(): number {
    return this.#process.pid;
  }

  /** Starts the switch of VLAN `vlan` with its socket folder in `dir`; ready when this returns. */
  static async start(vlan: number, dir: string): Promise<VlanSwitch> {
    checkVlan(vlan);
    requireHostTools(["vde_switch"], "starting a VLAN");
    const socket = join(dir, `vde${vlan}.ctl`);
    // vde_switch ends when its standard input closes, so it gets a pipe that lives as long as corral.
    const process = await SupervisedProcess.spawn(
      "vde_switch",
      ["--sock", socket, "--dirmode", "0700", "--hub"],
      { stdio: ["pipe", "ignore", "pipe"] },
    );
    process.child.stdin?.on("error", () => {});
    let stderr = "";
    process.child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT_CHARS);
    });
    const started = performance.now();
    while (!(await exists(join(socket, "ctl")))) {
      if (process.hasExited || performance.now() - started > READY_TIMEOUT_MS) {
        await process.stop();
        throw new CorralError(
          ErrorCodes.MACHINE_START_FAILED,
          `the switch of VLAN ${vlan} did not start${stderr ? `: ${stderr.trim()}` : ""}`,
        );
      }
      await sleep(10);
    }
    return new VlanSwitch(vlan, socket, process, () => stderr);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#isDisposed = true;
    await this.#process.stop();
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
