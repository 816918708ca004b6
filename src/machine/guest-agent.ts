// A machine's link to the QEMU guest agent: one QgaClient for the machine's life, whose stream is
// the running VM's `qga` port, opened again when it closed (the agent restarted, or the VM did:
// the next call then reaches the new VM's agent).

import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { QgaClient, type QgaOpen } from "../guest/qga-client.ts";

export class GuestAgentLink {
  readonly #open: QgaOpen;
  #client: Promise<QgaClient> | undefined;
  #isClosed = false;

  /** `open` opens the running VM's agent port (and fails when none runs). */
  constructor(open: QgaOpen) {
    this.#open = open;
  }

  /**
   * The client, once the agent has answered a guest-ping within `deadline`. Fails with the
   * deadline's error when no agent answers (none runs in the guest yet, or at all), and with
   * CORRAL_GUEST_CHANNEL_BROKEN when the port cannot be opened.
   */
  async connected(deadline: Deadline): Promise<QgaClient> {
    if (this.#isClosed) {
      throw new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `${deadline.what}: the machine was disposed`,
      );
    }
    // A caller that closed the shared client gets a new one.
    const cached = await this.#client?.catch(() => undefined);
    if (cached?.isClosed) this.#client = undefined;
    if (!this.#client) {
      const connecting = QgaClient.connect(this.#open, deadline);
      this.#client = connecting;
      connecting.catch(() => {
        if (this.#client === connecting) this.#client = undefined;
      });
      const client = await connecting;
      if (this.#isClosed) client.close();
      return client;
    }
    const client = await this.#client;
    await client.ping(deadline);
    return client;
  }

  /** Closes the client; calls in flight fail with CORRAL_GUEST_CHANNEL_BROKEN. Idempotent. */
  close(): void {
    this.#isClosed = true;
    void this.#client?.then(
      (client) => client.close(),
      () => undefined,
    );
  }
}
