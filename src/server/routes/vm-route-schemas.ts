// Request parts the VM, snapshot and event routes share: path parameters, `?wait`, label filters.

import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { CorralError, ErrorCodes } from "../../errors.ts";

export const VmParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 63, description: "the VM's id or name" }),
});

export const SnapshotParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 63, description: "the snapshot's id" }),
});

export const WaitQuery = Type.Object(
  {
    wait: Type.Optional(
      Type.Boolean({
        default: true,
        description: "wait for the operation to end (default); false: 202 at once",
      }),
    ),
  },
  { additionalProperties: false },
);

/** A preValidation hook for routes whose body is optional: no body is an empty object. */
export async function emptyBodyAsObject(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/** `?label=k=v&label=k2=v2` as labels; a repeated key is an error. */
export function parseLabelFilter(
  pairs: readonly string[] | undefined,
): Record<string, string> | undefined {
  if (pairs === undefined) return undefined;
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    const key = pair.slice(0, at);
    if (key in labels) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `querystring/label names ${key} twice; give each key once`,
      );
    }
    labels[key] = pair.slice(at + 1);
  }
  return labels;
}
