// The public API of corral: `import { Machine } from "corral"`.

export type { DiskFormat, Firmware, MachineType, VmmEvent } from "./backends/backend.ts";
export { QmpError } from "./backends/qemu/qmp-client.ts";
export type { WaitOptions } from "./deadline.ts";
export {
  Driver,
  type DriverContext,
  type DriverOptions,
  type PollingConditionOptions,
  type RetryOptions,
} from "./driver/driver.ts";
export { type RunTestOptions, runTest, type TestOutcome } from "./driver/run-test.ts";
export {
  type StartedMachines,
  type StartMachinesOptions,
  startMachines,
} from "./driver/start-machines.ts";
export {
  defineTest,
  type MachineSpec,
  type TestContext,
  type TestDefinition,
  type TestFunction,
} from "./driver/test-definition.ts";
export {
  AbortedError,
  CorralError,
  type ErrorCode,
  ErrorCodes,
  GuestCommandError,
  HostToolMissingError,
  MachineExitedError,
  TimeoutError,
  UnsupportedError,
} from "./errors.ts";
export { type QgaCapabilities, QgaClient } from "./guest/qga-client.ts";
export type { QgaExecRequest, QgaExecResult } from "./guest/qga-exec.ts";
export { posixExecRequest } from "./guest/qga-posix.ts";
export { QgaError } from "./guest/qga-protocol.ts";
export type { Accelerator, AcceleratorVerdict } from "./host/accelerator.ts";
export { VlanSwitch } from "./host/vlan-switch.ts";
export { type BuildImageOptions, type BuildImageResult, buildImage } from "./images/build-image.ts";
export { type CachedImage, findImage, listImages } from "./images/image-cache.ts";
export type { ImageManifest } from "./images/manifest.ts";
export type { MachineState } from "./machine/lifecycle.ts";
export {
  type CopyOptions,
  type CopyResult,
  type ExecResult,
  type ExecuteOptions,
  type ForwardPortOptions,
  Machine,
  type MachineOptions,
  type MachineSize,
  type PowerDownOptions,
  type PowerDownResult,
  type ResizeOptions,
  type SpawnedCommand,
  type SpawnOptions,
  type SpawnResult,
} from "./machine/machine.ts";
export type {
  BootDiskOptions,
  DriveOptions,
  TapAttachment,
  VlanAttachment,
} from "./machine/machine-options.ts";
export { resolveMachineAccelerator as resolveAccelerator } from "./machine/machine-plan.ts";
