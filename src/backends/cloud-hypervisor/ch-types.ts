// Request and reply bodies of Cloud Hypervisor's API, written from the schemas of its official
// spec (specs/cloud-hypervisor.yaml, OpenAPI 3.0.1): same names and fields, only those corral
// sends or reads. The contract tests validate every body the client sends against the spec.

/** `VmState`. */
export type ChVmState = "Created" | "Running" | "Shutdown" | "Paused" | "BreakPoint";

/** `PayloadConfig`: what the VM boots (a kernel, or firmware). */
export interface ChPayloadConfig {
  kernel?: string;
  initramfs?: string;
  cmdline?: string;
  firmware?: string;
}

/** `CpusConfig`. */
export interface ChCpusConfig {
  boot_vcpus: number;
  max_vcpus: number;
}

/** `MemoryConfig`; sizes in bytes. */
export interface ChMemoryConfig {
  size: number;
  /** Room for hot-added memory, in bytes. */
  hotplug_size?: number;
  hotplug_method?: string;
  shared?: boolean;
}

/** `ImageType`. */
export type ChImageType = "FixedVhd" | "Qcow2" | "Raw" | "Vhdx" | "Unknown";

/** `DiskConfig`. */
export interface ChDiskConfig {
  path?: string;
  readonly?: boolean;
  id?: string;
  image_type?: ChImageType;
  /** Let a qcow2 disk open its backing file (corral's overlays have one). */
  backing_files?: boolean;
  direct?: boolean;
  num_queues?: number;
}

/** `NetConfig`. */
export interface ChNetConfig {
  tap?: string;
  mac?: string;
  id?: string;
  mtu?: number;
  num_queues?: number;
}

/** `VsockConfig`. */
export interface ChVsockConfig {
  /** 3 or more. */
  cid: number;
  socket: string;
  id?: string;
}

/** `FsConfig` (virtio-fs through a vhost-user daemon). */
export interface ChFsConfig {
  tag: string;
  socket: string;
  num_queues: number;
  queue_size: number;
  id?: string;
}

/** `PmemConfig`. */
export interface ChPmemConfig {
  file: string;
  size?: number;
  discard_writes?: boolean;
  id?: string;
}

/** `DeviceConfig` (VFIO). */
export interface ChDeviceConfig {
  path?: string;
  id?: string;
  iommu?: boolean;
}

/** `ConsoleMode`. */
export type ChConsoleMode = "Off" | "Pty" | "Tty" | "File" | "Socket" | "Null";

/** `SerialConfig` / `ConsoleConfig`. */
export interface ChConsoleConfig {
  mode: ChConsoleMode;
  file?: string;
  socket?: string;
}

/** `BalloonConfig`; size in bytes. */
export interface ChBalloonConfig {
  size: number;
  deflate_on_oom?: boolean;
  free_page_reporting?: boolean;
}

/** `RngConfig`. */
export interface ChRngConfig {
  src: string;
}

/** `VmConfig` (PUT /vm.create). */
export interface ChVmConfig {
  payload: ChPayloadConfig;
  cpus?: ChCpusConfig;
  memory?: ChMemoryConfig;
  disks?: ChDiskConfig[];
  net?: ChNetConfig[];
  rng?: ChRngConfig;
  balloon?: ChBalloonConfig;
  fs?: ChFsConfig[];
  pmem?: ChPmemConfig[];
  serial?: ChConsoleConfig;
  console?: ChConsoleConfig;
  vsock?: ChVsockConfig;
  watchdog?: boolean;
}

/** `VmInfo` (GET /vm.info). */
export interface ChVmInfo {
  config: ChVmConfig;
  state: ChVmState;
  /** Bytes. */
  memory_actual_size?: number;
  device_tree?: Record<string, unknown>;
}

/** `VmmPingResponse` (GET /vmm.ping). */
export interface ChVmmPing {
  version: string;
  build_version?: string;
  pid?: number;
  features?: string[];
}

/** `VmResize` (PUT /vm.resize); sizes in bytes. */
export interface ChVmResize {
  desired_vcpus?: number;
  desired_ram?: number;
  desired_balloon?: number;
}

/** `VmResizeDisk` (PUT /vm.resize-disk); size in bytes. */
export interface ChVmResizeDisk {
  id: string;
  desired_size: number;
}

/** `VmRemoveDevice`. */
export interface ChVmRemoveDevice {
  id: string;
}

/** `VmSnapshotConfig` (PUT /vm.snapshot): `file://<folder>`. */
export interface ChVmSnapshotConfig {
  destination_url: string;
}

/** `RestoreConfig` (PUT /vm.restore): `file://<folder>`. */
export interface ChRestoreConfig {
  source_url: string;
  prefault?: boolean;
  memory_restore_mode?: "Copy" | "OnDemand";
  resume?: boolean;
}

/** `PciDeviceInfo`: the answer (200) to a hot-added device. */
export interface ChPciDeviceInfo {
  id: string;
  bdf: string;
}
