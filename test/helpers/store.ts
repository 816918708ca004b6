// A state store in a temporary folder, closed and removed when the test ends, and a VM to put
// in it.

import { onTestFinished } from "vitest";
import { type OpenStoreOptions, Store } from "../../src/store/store.ts";
import type { NewVm } from "../../src/store/vm-types.ts";
import { temporaryDir } from "./cli.ts";

/** A new store in a new temporary folder; `dir` in `options` is ignored. */
export async function temporaryStore(options: OpenStoreOptions = {}): Promise<Store> {
  const store = await Store.open({ ...options, dir: temporaryDir("corral-store-") });
  onTestFinished(() => store.close());
  return store;
}

/** A valid new VM named `name`, with its folder named after it. */
export function newVm(name: string, fields: Partial<NewVm> = {}): NewVm {
  return {
    name,
    os: "linux",
    spec: { cpus: 1, memoryMiB: 256 },
    state: "created",
    stateDir: `/var/lib/corral-test/vms/${name}`,
    ...fields,
  };
}
