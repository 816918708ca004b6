// Starting Cloud Hypervisor for a VM spec (`vm.create`, then `vm.boot`), restoring one from a
// snapshot folder (`vm.restore` into a fresh process), and attaching to a persistent one.

import { access } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Deadline } from "../../deadline.ts";
import { DetachedProcess } from "../../host/detached-process.ts";
import type { Capability, VmRecord, VmSpec } from "../backend.ts";
import type { ConsoleLog } from "../console-log.ts";
import { MicroVm } from "../micro-vm.ts";
import { linkRootDisk, microVmBoot, VSOCK_SOCKET } from "../micro-vm-spec.ts";
import { createQemuDisk } from "../qemu/qemu-disks.ts";
import { removeRunFiles } from "../vm-record.ts";
import {
  configureVmm,
  type LaunchedVmm,
  relaunched,
  removeStale,
  spawnVmm,
  waitForApi,
} from "../vmm-launch.ts";
import { ChClient } from "./ch-client.ts";
import { chConfig } from "./ch-config.ts";
import { ChControl } from "./ch-control.ts";

export const CH_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  "pause",
  "resize",
  "snapshot",
  "persistent",
  "power-button",
]);

const API_SOCKET = "cloud-hypervisor.sock";
const START_TIMEOUT_MS = 30_000;
const ROOT_DISK = "root.qcow2";

/** The Cloud Hypervisor binary: $CORRAL_CLOUD_HYPERVISOR, else `cloud-hypervisor` on PATH. */
export function cloudHypervisorBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.CORRAL_CLOUD_HYPERVISOR || "cloud-hypervisor";
}

/** Starts Cloud Hypervisor for `spec`: from the snapshot holding `stateFile` if given. */
export async function launchCloudHypervisor(
  spec: VmSpec,
  console: ConsoleLog,
  stateFile?: string,
): Promise<MicroVm> {
  const deadline = new Deadline(`${spec.name}: starting Cloud Hypervisor`, {}, START_TIMEOUT_MS);
  const boot = await microVmBoot("Cloud Hypervisor", spec);
  const rootDisk = spec.rootDisk ?? join(spec.stateDir, ROOT_DISK);
  const hasDisk = await access(rootDisk).then(
    () => true,
    () => false,
  );
  if (!hasDisk) await createQemuDisk(rootDisk, { base: { path: boot.baseDisk, format: "qcow2" } });
  await linkRootDisk(spec.stateDir, rootDisk);
  await removeStale(spec.stateDir, [API_SOCKET, VSOCK_SOCKET]);
  const args = ["--api-socket", `path=${API_SOCKET}`];
  const launched = await spawnVmm(spec, cloudHypervisorBinary(), args, console);
  const client = new ChClient({ socketPath: join(spec.stateDir, API_SOCKET), machine: spec.name });
  const api = { socket: API_SOCKET, close: () => client.close() };
  const record = await configureVmm("cloud-hypervisor", spec, launched, console, api, async () => {
    await waitForApi("Cloud Hypervisor", spec, launched, () => client.ping(deadline), deadline);
    if (stateFile) {
      await client.restore(deadline, { source_url: `file://${dirname(stateFile)}`, resume: false });
    } else {
      const config = chConfig(boot, {
        maxCpus: spec.maxCpus,
        maxMemoryMiB: spec.maxMemoryMiB,
        drives: spec.drives,
        serial: spec.ownership === "owned" ? "tty" : "file",
      });
      await client.create(deadline, config);
      await client.boot(deadline);
    }
  });
  return microVm(spec, launched, client, console, record);
}

/** The persistent VM `record` describes, if its Cloud Hypervisor still runs. */
export async function attachCloudHypervisor(
  record: VmRecord,
  console: ConsoleLog,
): Promise<MicroVm | undefined> {
  const process = DetachedProcess.find({ pid: record.pid, startTime: record.startTime });
  if (!process) return undefined;
  const client = new ChClient({
    socketPath: join(record.spec.stateDir, API_SOCKET),
    machine: record.name,
  });
  const launched = await relaunched(record, process, console);
  return microVm(record.spec, launched, client, console, record);
}

function microVm(
  spec: VmSpec,
  launched: LaunchedVmm,
  client: ChClient,
  console: ConsoleLog,
  record: VmRecord | undefined,
): MicroVm {
  return new MicroVm({
    backend: "cloud-hypervisor",
    vmm: "Cloud Hypervisor",
    name: spec.name,
    ownership: spec.ownership,
    process: launched.process,
    console,
    stderr: launched.stderr,
    consoleInput: launched.consoleInput,
    consoleFollower: launched.consoleFollower,
    vsockSocket: join(spec.stateDir, VSOCK_SOCKET),
    capabilities: CH_CAPABILITIES,
    control: new ChControl(client, spec.stateDir),
    ...(record ? { onExit: () => removeRunFiles(record) } : {}),
  });
}
