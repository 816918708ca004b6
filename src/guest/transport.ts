// The seam between guest channels and backends: each backend opens the guest's byte streams its
// own way (virtio-serial unix sockets for QEMU; hybrid vsock for Firecracker and Cloud
// Hypervisor), and the backdoor shell and transfer port speak over whatever it returns.

import type { Duplex } from "node:stream";
import type { Deadline } from "../deadline.ts";

/**
 * The guest's ports: `shell` is hvc0 (the backdoor shell's commands and exit codes), `stdout`
 * and `stderr` carry guest commands' output, `xfer` file contents, `qga` the QEMU guest agent
 * (`org.qemu.guest_agent.0`; only on VMs started with it).
 */
export type GuestPort = "shell" | "stdout" | "stderr" | "xfer" | "qga";

export interface GuestTransport {
  /**
   * True when each connection to the `shell` port gets a shell of its own that takes the
   * connection with it when it ends (vsock); false when one port carries shell after shell
   * (hvc0, where the guest's next shell prints its banner on the same stream).
   */
  readonly isShellPerConnection: boolean;
  /**
   * The stream of `port`, once the VMM has it connected; fails at the deadline or VMM exit. The
   * `qga` port may be opened again after its stream closed (the agent's client reconnects).
   */
  open(port: GuestPort, deadline: Deadline): Promise<Duplex>;
}
