// The public API of corral: `import { Machine } from "corral"`.

export type { WaitOptions } from "./deadline.ts";
export {
  AbortedError,
  CorralError,
  type ErrorCode,
  ErrorCodes,
  HostToolMissingError,
  GuestCommandError,
  UnsupportedError,
  MachineExitedError,
  TimeoutError,
} from "./errors.ts";
export {
  type Accelerator,
  type AcceleratorVerdict,
  resolveAccelerator,
} from "./host/accelerator.ts";
export { type BuildImageOptions, type BuildImageResult, buildImage } from "./images/build-image.ts";
export { type CachedImage, findImage, listImages } from "./images/image-cache.ts";
export type { ImageManifest } from "./images/manifest.ts";
export { QmpError } from "./backends/qemu/qmp-client.ts";
export {
  type ExecResult,
  type ExecuteOptions,
  Machine,
  type MachineOptions,
} from "./machine/machine.ts";
