// Firecracker's resource-style API (specs/firecracker.yaml) over its `--api-sock`: one method per
// request corral sends. Every error answer is 400 or 500 with `{ fault_message }`; those that a
// pre-boot/post-boot rule or the VM's state caused become CORRAL_CONFLICT, the rest
// CORRAL_VMM_API_ERROR, each carrying Firecracker's own message.

import type { Deadline } from "../../deadline.ts";
import { type ErrorCode, ErrorCodes } from "../../errors.ts";
import { VmmApi, type VmmRequest } from "../vmm-api.ts";
import type {
  FcBalloon,
  FcBalloonStats,
  FcBalloonStatsUpdate,
  FcBalloonUpdate,
  FcBootSource,
  FcDrive,
  FcError,
  FcInstanceAction,
  FcInstanceInfo,
  FcLogger,
  FcMachineConfiguration,
  FcMetrics,
  FcNetworkInterface,
  FcPartialDrive,
  FcSerialDevice,
  FcSnapshotCreate,
  FcSnapshotLoad,
  FcVersion,
  FcVmState,
  FcVsock,
} from "./fc-types.ts";

/**
 * Firecracker's messages when the VM's state refuses a request (vmm/src/rpc_interface.rs:
 * `OperationNotSupportedPostBoot`/`PreBoot`, `LoadSnapshotNotAllowed`; a snapshot of a VM that
 * is not paused).
 */
const STATE_REFUSALS = [
  /not supported (after|before) starting the microVM/i,
  /snapshot not allowed after configuring/i,
  /not paused|must be paused/i,
];

/** Whether Firecracker refused `message` because of the VM's state rather than the input. */
export function fcErrorCode(_request: VmmRequest, _status: number, message: string): ErrorCode {
  return STATE_REFUSALS.some((pattern) => pattern.test(message))
    ? ErrorCodes.CONFLICT
    : ErrorCodes.VMM_API_ERROR;
}

export interface FcClientOptions {
  socketPath: string;
  machine?: string | undefined;
  /** Keep every request sent in `sent` (contract tests). */
  record?: boolean;
}

/** Firecracker's API. Each method throws VmmApiError (CONFLICT or VMM_API_ERROR). */
export class FcClient {
  readonly api: VmmApi;

  constructor(options: FcClientOptions) {
    this.api = new VmmApi({
      vmm: "Firecracker",
      socketPath: options.socketPath,
      basePath: "",
      machine: options.machine,
      record: options.record ?? false,
      classify: fcErrorCode,
      messageOf: (body, text) => (body as FcError | undefined)?.fault_message ?? text.trim(),
    });
  }

  /** GET / : the instance's state ("Not started", "Running", "Paused"). */
  describeInstance(deadline: Deadline): Promise<FcInstanceInfo> {
    return this.api.call(deadline, { method: "GET", path: "/" });
  }

  /** GET /version. */
  version(deadline: Deadline): Promise<FcVersion> {
    return this.api.call(deadline, { method: "GET", path: "/version" });
  }

  /** PUT /boot-source (pre-boot). */
  putBootSource(deadline: Deadline, body: FcBootSource): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/boot-source", body });
  }

  /** PUT /machine-config (pre-boot). */
  putMachineConfig(deadline: Deadline, body: FcMachineConfiguration): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/machine-config", body });
  }

  /** GET /machine-config. */
  machineConfig(deadline: Deadline): Promise<FcMachineConfiguration> {
    return this.api.call(deadline, { method: "GET", path: "/machine-config" });
  }

  /** PUT /drives/{drive_id} (pre-boot). */
  putDrive(deadline: Deadline, body: FcDrive): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: `/drives/${id(body.drive_id)}`, body });
  }

  /** PATCH /drives/{drive_id} (post-boot): a new backing file, after the disk grew. */
  patchDrive(deadline: Deadline, body: FcPartialDrive): Promise<void> {
    return this.api.call(deadline, { method: "PATCH", path: `/drives/${id(body.drive_id)}`, body });
  }

  /** PUT /network-interfaces/{iface_id} (pre-boot). */
  putNetworkInterface(deadline: Deadline, body: FcNetworkInterface): Promise<void> {
    const path = `/network-interfaces/${id(body.iface_id)}`;
    return this.api.call(deadline, { method: "PUT", path, body });
  }

  /** PUT /vsock (pre-boot). */
  putVsock(deadline: Deadline, body: FcVsock): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vsock", body });
  }

  /** PUT /serial (pre-boot): where the serial console's output goes. */
  putSerial(deadline: Deadline, body: FcSerialDevice): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/serial", body });
  }

  /** PUT /logger. */
  putLogger(deadline: Deadline, body: FcLogger): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/logger", body });
  }

  /** PUT /metrics. */
  putMetrics(deadline: Deadline, body: FcMetrics): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/metrics", body });
  }

  /** PUT /actions: InstanceStart boots the configured VM. */
  action(deadline: Deadline, actionType: FcInstanceAction["action_type"]): Promise<void> {
    const body: FcInstanceAction = { action_type: actionType };
    return this.api.call(deadline, { method: "PUT", path: "/actions", body });
  }

  /** PATCH /vm: pauses or resumes the vCPUs. */
  setVmState(deadline: Deadline, state: FcVmState["state"]): Promise<void> {
    const body: FcVmState = { state };
    return this.api.call(deadline, { method: "PATCH", path: "/vm", body });
  }

  /** PUT /snapshot/create (the VM paused). */
  createSnapshot(deadline: Deadline, body: FcSnapshotCreate): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/snapshot/create", body });
  }

  /** PUT /snapshot/load (a fresh process: nothing configured but logger and metrics). */
  loadSnapshot(deadline: Deadline, body: FcSnapshotLoad): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/snapshot/load", body });
  }

  /** PUT /balloon (pre-boot). */
  putBalloon(deadline: Deadline, body: FcBalloon): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/balloon", body });
  }

  /** PATCH /balloon: a new target size. */
  patchBalloon(deadline: Deadline, body: FcBalloonUpdate): Promise<void> {
    return this.api.call(deadline, { method: "PATCH", path: "/balloon", body });
  }

  /** GET /balloon. */
  balloon(deadline: Deadline): Promise<FcBalloon> {
    return this.api.call(deadline, { method: "GET", path: "/balloon" });
  }

  /** GET /balloon/statistics (needs `stats_polling_interval_s` > 0 at PUT /balloon). */
  balloonStatistics(deadline: Deadline): Promise<FcBalloonStats> {
    return this.api.call(deadline, { method: "GET", path: "/balloon/statistics" });
  }

  /** PATCH /balloon/statistics. */
  patchBalloonStatistics(deadline: Deadline, body: FcBalloonStatsUpdate): Promise<void> {
    return this.api.call(deadline, { method: "PATCH", path: "/balloon/statistics", body });
  }

  close(): void {
    this.api.close();
  }
}

function id(value: string): string {
  return encodeURIComponent(value);
}
