// A worker thread of the unique-name race in vms.test.ts: opens the store on its own connection
// (racing the others to migrate a new database), waits for the start signal, then creates a VM of
// the contested name and reports what happened.

import { parentPort, workerData } from "node:worker_threads";
import type { CorralError } from "../../../src/errors.ts";
import { Store } from "../../../src/store/store.ts";

const { dir, name, index, start } = workerData as {
  dir: string;
  name: string;
  index: number;
  start: SharedArrayBuffer;
};

const store = await Store.open({ dir });
parentPort?.postMessage({ ready: true });
Atomics.wait(new Int32Array(start), 0, 0);
try {
  const vm = store.vms.create({
    name,
    os: "linux",
    spec: { worker: index },
    state: "created",
    stateDir: `/var/lib/corral-test/vms/worker-${index}`,
  });
  parentPort?.postMessage({ won: vm.id });
} catch (error) {
  const { code, message } = error as CorralError;
  parentPort?.postMessage({ lost: { code, message } });
} finally {
  store.close();
}
