// Starting Firecracker for a VM spec (configure over the API, then InstanceStart), restoring one
// from a snapshot (`PUT /snapshot/load` into a fresh process), and attaching to a persistent one.

import { access } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Deadline } from "../../deadline.ts";
import { DetachedProcess } from "../../host/detached-process.ts";
import type { Capability, VmRecord, VmSpec } from "../backend.ts";
import type { ConsoleLog } from "../console-log.ts";
import { MicroVm } from "../micro-vm.ts";
import { linkRootDisk, microVmBoot, VSOCK_SOCKET } from "../micro-vm-spec.ts";
import { removeRunFiles } from "../vm-record.ts";
import {
  configureVmm,
  type LaunchedVmm,
  relaunched,
  removeStale,
  spawnVmm,
  waitForApi,
} from "../vmm-launch.ts";
import { FcClient } from "./fc-client.ts";
import { fcConfig } from "./fc-config.ts";
import { FC_MEMORY_FILE, FcControl } from "./fc-control.ts";
import { createFcDisk, firecrackerBinary } from "./fc-disks.ts";

export const FC_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  "pause",
  "snapshot",
  "persistent",
]);

const API_SOCKET = "firecracker.sock";
const START_TIMEOUT_MS = 30_000;
const ROOT_DISK = "root.raw";

/** Starts Firecracker for `spec`: from the snapshot whose state file is `stateFile` if given. */
export async function launchFirecracker(
  spec: VmSpec,
  console: ConsoleLog,
  stateFile?: string,
): Promise<MicroVm> {
  const deadline = new Deadline(`${spec.name}: starting Firecracker`, {}, START_TIMEOUT_MS);
  const boot = await microVmBoot("Firecracker", spec);
  const rootDisk = spec.rootDisk ?? join(spec.stateDir, ROOT_DISK);
  const hasDisk = await access(rootDisk).then(
    () => true,
    () => false,
  );
  if (!hasDisk) await createFcDisk(rootDisk, { base: { path: boot.baseDisk, format: "qcow2" } });
  await linkRootDisk(spec.stateDir, rootDisk);
  await removeStale(spec.stateDir, [API_SOCKET, VSOCK_SOCKET]);
  const args = ["--api-sock", API_SOCKET, "--id", spec.name.replace(/[^A-Za-z0-9-]/g, "-")];
  const launched = await spawnVmm(spec, firecrackerBinary(), args, console);
  const client = new FcClient({ socketPath: join(spec.stateDir, API_SOCKET), machine: spec.name });
  const api = { socket: API_SOCKET, close: () => client.close() };
  const record = await configureVmm("firecracker", spec, launched, console, api, async () => {
    await waitForApi(
      "Firecracker",
      spec,
      launched,
      () => client.describeInstance(deadline),
      deadline,
    );
    if (stateFile) {
      await client.loadSnapshot(deadline, {
        snapshot_path: stateFile,
        mem_backend: {
          backend_type: "File",
          backend_path: join(dirname(stateFile), FC_MEMORY_FILE),
        },
        resume_vm: false,
        network_overrides: boot.nics.map((nic, index) => ({
          iface_id: `eth${index}`,
          host_dev_name: nic.ifname,
        })),
      });
    } else {
      const config = fcConfig(
        boot,
        (spec.drives ?? []).map((drive) => ({ path: drive.path, readOnly: drive.readOnly })),
      );
      await client.putBootSource(deadline, config.bootSource);
      await client.putMachineConfig(deadline, config.machineConfig);
      for (const drive of config.drives) await client.putDrive(deadline, drive);
      for (const nic of config.nics) await client.putNetworkInterface(deadline, nic);
      await client.putVsock(deadline, config.vsock);
      await client.putBalloon(deadline, config.balloon);
      await client.action(deadline, "InstanceStart");
    }
  });
  return microVm(spec.name, spec, launched, client, console, record);
}

/** The persistent VM `record` describes, if its Firecracker still runs. */
export async function attachFirecracker(
  record: VmRecord,
  console: ConsoleLog,
): Promise<MicroVm | undefined> {
  const process = DetachedProcess.find({ pid: record.pid, startTime: record.startTime });
  if (!process) return undefined;
  const client = new FcClient({
    socketPath: join(record.spec.stateDir, API_SOCKET),
    machine: record.name,
  });
  const launched = await relaunched(record, process, console);
  return microVm(record.name, record.spec, launched, client, console, record);
}

function microVm(
  name: string,
  spec: VmSpec,
  launched: LaunchedVmm,
  client: FcClient,
  console: ConsoleLog,
  record?: VmRecord,
): MicroVm {
  return new MicroVm({
    backend: "firecracker",
    vmm: "Firecracker",
    name,
    ownership: spec.ownership,
    process: launched.process,
    console,
    stderr: launched.stderr,
    consoleInput: launched.consoleInput,
    consoleFollower: launched.consoleFollower,
    vsockSocket: join(spec.stateDir, VSOCK_SOCKET),
    capabilities: FC_CAPABILITIES,
    control: new FcControl(client, spec.stateDir),
    ...(record ? { onExit: () => removeRunFiles(record) } : {}),
  });
}
