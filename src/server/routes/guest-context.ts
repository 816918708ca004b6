// What every guest route shares: where it finds a VM's guest, and a deadline per request that
// also fires when the client goes away.

import type { FastifyReply, FastifyRequest } from "fastify";
import { Deadline } from "../../deadline.ts";
import type { GuestOps } from "../../manager/guest/guest-ops.ts";

/**
 * The guest of VM `idOrName` through its channel. Throws CORRAL_NOT_FOUND for no such VM and
 * CORRAL_MACHINE_NOT_RUNNING (409) when it does not run.
 */
export type GuestResolver = (idOrName: string) => Promise<GuestOps>;

/** How long a guest call other than exec and file transfers may take: 60 s. */
export const GUEST_CALL_TIMEOUT_MS = 60_000;

/**
 * A deadline of `timeoutMs` (default GUEST_CALL_TIMEOUT_MS) for the guest call that answers
 * `request`, aborted when the client closes the connection before the answer is sent.
 */
export function requestDeadline(
  request: FastifyRequest,
  reply: FastifyReply,
  what: string,
  timeoutMs = GUEST_CALL_TIMEOUT_MS,
): Deadline {
  const gone = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) gone.abort(new Error("the client closed the connection"));
  });
  const vm = (request.params as { id?: string }).id;
  return new Deadline(
    `${vm === undefined ? "" : `VM "${vm}": `}${what}`,
    {
      timeout: timeoutMs,
      signal: gone.signal,
    },
    timeoutMs,
  );
}
