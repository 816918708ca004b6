// The public API of corral: `import { Machine } from "corral"`.

export { QmpError } from "./backends/qemu/qmp-client.ts";
export type { WaitOptions } from "./deadline.ts";
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
export {
  type Accelerator,
  type AcceleratorVerdict,
  resolveAccelerator,
} from "./host/accelerator.ts";
export { type BuildImageOptions, type BuildImageResult, buildImage } from "./images/build-image.ts";
export { type CachedImage, findImage, listImages } from "./images/image-cache.ts";
export type { ImageManifest } from "./images/manifest.ts";
export {
  type ExecResult,
  type ExecuteOptions,
  Machine,
  type MachineOptions,
} from "./machine/machine.ts";
