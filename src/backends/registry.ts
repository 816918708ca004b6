// The backends corral knows, by name. Machine, the driver and the CLI find a backend here and
// import no backend's folder themselves.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { Backend } from "./backend.ts";
import { cloudHypervisorBackend } from "./cloud-hypervisor/ch-backend.ts";
import { firecrackerBackend } from "./firecracker/fc-backend.ts";
import { qemuBackend } from "./qemu/qemu-backend.ts";

export const DEFAULT_BACKEND = "qemu";

const BACKENDS: ReadonlyMap<string, Backend> = new Map(
  [qemuBackend, firecrackerBackend, cloudHypervisorBackend].map((backend) => [
    backend.name,
    backend,
  ]),
);

/** Every backend corral knows, the default first. */
export function allBackends(): Backend[] {
  return [...BACKENDS.values()];
}

/** The backend called `name`; throws CORRAL_INVALID_ARGUMENT listing the known ones. */
export function findBackend(name: string = DEFAULT_BACKEND): Backend {
  const backend = BACKENDS.get(name);
  if (backend) return backend;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `unknown backend ${JSON.stringify(name)}; known backends: ${[...BACKENDS.keys()].join(", ")}`,
  );
}
