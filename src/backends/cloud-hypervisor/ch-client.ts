// Cloud Hypervisor's RPC-style API (specs/cloud-hypervisor.yaml) over its `--api-socket`: one
// method per action. Its error answers carry the VMM's message as the body; 404 (no VM created,
// or no such device), 405 (not allowed in the VM's state), 409 (exists already) and 429 (a vCPU
// removal pending) become CORRAL_CONFLICT, the rest CORRAL_VMM_API_ERROR.

import type { Deadline } from "../../deadline.ts";
import { type ErrorCode, ErrorCodes } from "../../errors.ts";
import { VmmApi, type VmmRequest } from "../vmm-api.ts";
import type {
  ChDeviceConfig,
  ChDiskConfig,
  ChFsConfig,
  ChNetConfig,
  ChPciDeviceInfo,
  ChPmemConfig,
  ChRestoreConfig,
  ChVmConfig,
  ChVmInfo,
  ChVmmPing,
  ChVmRemoveDevice,
  ChVmResize,
  ChVmResizeDisk,
  ChVmSnapshotConfig,
  ChVsockConfig,
} from "./ch-types.ts";

/** The base path of every request (`servers[0].url`). */
export const CH_BASE_PATH = "/api/v1";

const STATE_STATUSES = new Set([404, 405, 409, 429]);

/** CONFLICT when the VM's state refused the request, else VMM_API_ERROR. */
export function chErrorCode(_request: VmmRequest, status: number): ErrorCode {
  return STATE_STATUSES.has(status) ? ErrorCodes.CONFLICT : ErrorCodes.VMM_API_ERROR;
}

/** Cloud Hypervisor's message: a JSON array of causes, a JSON string, or plain text. */
function messageOf(body: unknown, text: string): string {
  if (Array.isArray(body)) return body.map(String).join(": ");
  if (typeof body === "string") return body.trim();
  return text.trim();
}

export interface ChClientOptions {
  socketPath: string;
  machine?: string | undefined;
  /** Keep every request sent in `sent` (contract tests). */
  record?: boolean;
}

/** The devices `/vm.add-<kind>` hot-adds, and their bodies. */
export interface ChAddable {
  disk: ChDiskConfig;
  net: ChNetConfig;
  vsock: ChVsockConfig;
  fs: ChFsConfig;
  pmem: ChPmemConfig;
  device: ChDeviceConfig;
}

/** Cloud Hypervisor's API. Each method throws VmmApiError (CONFLICT or VMM_API_ERROR). */
export class ChClient {
  readonly api: VmmApi;

  constructor(options: ChClientOptions) {
    this.api = new VmmApi({
      vmm: "Cloud Hypervisor",
      socketPath: options.socketPath,
      basePath: CH_BASE_PATH,
      machine: options.machine,
      record: options.record ?? false,
      classify: chErrorCode,
      messageOf,
    });
  }

  /** GET /vmm.ping: the VMM's version; answers before any VM exists. */
  ping(deadline: Deadline): Promise<ChVmmPing> {
    return this.api.call(deadline, { method: "GET", path: "/vmm.ping" });
  }

  /** GET /vm.info: the VM's config and state; CONFLICT before vm.create. */
  info(deadline: Deadline): Promise<ChVmInfo> {
    return this.api.call(deadline, { method: "GET", path: "/vm.info" });
  }

  /** PUT /vm.create: the VM exists, not booted. */
  create(deadline: Deadline, config: ChVmConfig): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vm.create", body: config });
  }

  boot(deadline: Deadline): Promise<void> {
    return this.#action(deadline, "boot");
  }

  /** PUT /vm.shutdown: the VM stops; the VMM process stays. */
  shutdown(deadline: Deadline): Promise<void> {
    return this.#action(deadline, "shutdown");
  }

  reboot(deadline: Deadline): Promise<void> {
    return this.#action(deadline, "reboot");
  }

  pause(deadline: Deadline): Promise<void> {
    return this.#action(deadline, "pause");
  }

  resume(deadline: Deadline): Promise<void> {
    return this.#action(deadline, "resume");
  }

  /** PUT /vm.power-button: the ACPI power button. */
  powerButton(deadline: Deadline): Promise<void> {
    return this.#action(deadline, "power-button");
  }

  /** PUT /vm.delete: the VM is gone; a new vm.create may follow. */
  delete(deadline: Deadline): Promise<void> {
    return this.#action(deadline, "delete");
  }

  /** PUT /vmm.shutdown: the VMM process exits. */
  shutdownVmm(deadline: Deadline): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vmm.shutdown" });
  }

  /** PUT /vm.resize: vCPUs, memory (bytes), balloon (bytes). */
  resize(deadline: Deadline, body: ChVmResize): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vm.resize", body });
  }

  /** PUT /vm.resize-disk: grows the disk `id` to `desired_size` bytes. */
  resizeDisk(deadline: Deadline, body: ChVmResizeDisk): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vm.resize-disk", body });
  }

  /** PUT /vm.add-<kind>: the device's PCI address when hot-added, undefined when cold-added. */
  add<K extends keyof ChAddable>(
    deadline: Deadline,
    kind: K,
    body: ChAddable[K],
  ): Promise<ChPciDeviceInfo | undefined> {
    return this.api.call(deadline, { method: "PUT", path: `/vm.add-${kind}`, body });
  }

  /** PUT /vm.remove-device. */
  removeDevice(deadline: Deadline, body: ChVmRemoveDevice): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vm.remove-device", body });
  }

  /** PUT /vm.snapshot into a folder (`file://…`); the VM must be paused. */
  snapshot(deadline: Deadline, body: ChVmSnapshotConfig): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vm.snapshot", body });
  }

  /** PUT /vm.restore from a snapshot folder; only before vm.create. */
  restore(deadline: Deadline, body: ChRestoreConfig): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: "/vm.restore", body });
  }

  close(): void {
    this.api.close();
  }

  #action(deadline: Deadline, action: string): Promise<void> {
    return this.api.call(deadline, { method: "PUT", path: `/vm.${action}` });
  }
}
