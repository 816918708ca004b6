// Request and reply bodies of Firecracker's API, written from the definitions of its official
// spec (specs/firecracker.yaml, Swagger 2.0, 1.17.0-dev): same names, same fields, only those
// corral sends or reads. The contract tests validate every body the client sends against it.

/** `definitions.TokenBucket`. */
export interface FcTokenBucket {
  size: number;
  refill_time: number;
  one_time_burst?: number;
}

/** `definitions.RateLimiter`. */
export interface FcRateLimiter {
  bandwidth?: FcTokenBucket;
  ops?: FcTokenBucket;
}

/** `definitions.BootSource` (PUT /boot-source, pre-boot only). */
export interface FcBootSource {
  kernel_image_path: string;
  initrd_path?: string;
  boot_args?: string;
}

/** `definitions.MachineConfiguration` (PUT /machine-config, pre-boot only). */
export interface FcMachineConfiguration {
  /** 1 to 32; 1 or even with SMT. */
  vcpu_count: number;
  mem_size_mib: number;
  smt?: boolean;
  track_dirty_pages?: boolean;
  huge_pages?: "None" | "Transparent" | "2M";
}

/** `definitions.Drive` (PUT /drives/{drive_id}, pre-boot only), as a virtio-block drive. */
export interface FcDrive {
  drive_id: string;
  is_root_device: boolean;
  path_on_host: string;
  is_read_only: boolean;
  partuuid?: string;
  cache_type?: "Unsafe" | "Writeback";
  io_engine?: "Sync" | "Async";
  rate_limiter?: FcRateLimiter;
}

/** `definitions.PartialDrive` (PATCH /drives/{drive_id}, post-boot only). */
export interface FcPartialDrive {
  drive_id: string;
  path_on_host?: string;
  rate_limiter?: FcRateLimiter;
}

/** `definitions.NetworkInterface` (PUT /network-interfaces/{iface_id}, pre-boot only). */
export interface FcNetworkInterface {
  iface_id: string;
  host_dev_name: string;
  guest_mac?: string;
  mtu?: number;
  rx_rate_limiter?: FcRateLimiter;
  tx_rate_limiter?: FcRateLimiter;
}

/** `definitions.Vsock` (PUT /vsock, pre-boot only). */
export interface FcVsock {
  /** 3 or more. */
  guest_cid: number;
  uds_path: string;
}

/** `definitions.InstanceActionInfo` (PUT /actions). */
export interface FcInstanceAction {
  action_type: "FlushMetrics" | "InstanceStart" | "SendCtrlAltDel";
}

/** `definitions.Vm` (PATCH /vm). */
export interface FcVmState {
  state: "Paused" | "Resumed";
}

/** `definitions.SnapshotCreateParams` (PUT /snapshot/create, post-boot, paused). */
export interface FcSnapshotCreate {
  snapshot_path: string;
  mem_file_path: string;
  snapshot_type?: "Full" | "Diff";
}

/** `definitions.MemoryBackend`. */
export interface FcMemoryBackend {
  backend_type: "File" | "Uffd";
  backend_path: string;
}

/** `definitions.SnapshotLoadParams` (PUT /snapshot/load, on a fresh process only). */
export interface FcSnapshotLoad {
  snapshot_path: string;
  mem_backend?: FcMemoryBackend;
  track_dirty_pages?: boolean;
  resume_vm?: boolean;
  network_overrides?: { iface_id: string; host_dev_name: string }[];
  vsock_override?: { uds_path: string };
  clock_realtime?: boolean;
}

/** `definitions.Balloon` (PUT /balloon, pre-boot only). */
export interface FcBalloon {
  amount_mib: number;
  deflate_on_oom: boolean;
  stats_polling_interval_s?: number;
  free_page_hinting?: boolean;
  free_page_reporting?: boolean;
}

/** `definitions.BalloonUpdate` (PATCH /balloon, before or after boot). */
export interface FcBalloonUpdate {
  amount_mib: number;
}

/** `definitions.BalloonStatsUpdate` (PATCH /balloon/statistics). */
export interface FcBalloonStatsUpdate {
  stats_polling_interval_s: number;
}

/** `definitions.BalloonStats` (GET /balloon/statistics); byte counters left out. */
export interface FcBalloonStats {
  target_pages: number;
  actual_pages: number;
  target_mib: number;
  actual_mib: number;
  free_memory?: number;
  total_memory?: number;
  available_memory?: number;
}

/** `definitions.Logger` (PUT /logger). */
export interface FcLogger {
  log_path?: string;
  level?: "Error" | "Warning" | "Info" | "Debug" | "Trace" | "Off";
  show_level?: boolean;
  show_log_origin?: boolean;
  module?: string;
}

/** `definitions.Metrics` (PUT /metrics). */
export interface FcMetrics {
  metrics_path: string;
  emit_id?: boolean;
}

/** `definitions.SerialDevice` (PUT /serial, pre-boot only). */
export interface FcSerialDevice {
  serial_out_path?: string;
  rate_limiter?: FcTokenBucket;
}

/** `definitions.InstanceInfo` (GET /). */
export interface FcInstanceInfo {
  app_name: string;
  id: string;
  state: "Not started" | "Running" | "Paused";
  vmm_version: string;
}

/** `definitions.FirecrackerVersion` (GET /version). */
export interface FcVersion {
  firecracker_version: string;
}

/** `definitions.Error`: the body of every error answer. */
export interface FcError {
  fault_message?: string;
}
