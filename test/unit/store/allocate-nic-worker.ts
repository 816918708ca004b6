// A worker thread of the address race in networks.test.ts: opens the store on its own connection,
// waits for the start signal, then gives each of its VMs a NIC on the contested network.

import { parentPort, workerData } from "node:worker_threads";
import type { CorralError } from "../../../src/errors.ts";
import { Store } from "../../../src/store/store.ts";

const { dir, vmIds, start } = workerData as {
  dir: string;
  vmIds: string[];
  start: SharedArrayBuffer;
};

const store = await Store.open({ dir });
parentPort?.postMessage({ ready: true });
Atomics.wait(new Int32Array(start), 0, 0);
const addresses: string[] = [];
try {
  for (const vmId of vmIds) {
    for (const nic of store.nics.allocate(vmId, ["contested"])) addresses.push(nic.address);
  }
  parentPort?.postMessage({ addresses });
} catch (error) {
  const { code, message } = error as CorralError;
  parentPort?.postMessage({ failed: { code, message } });
} finally {
  store.close();
}
