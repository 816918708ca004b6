// The public API of corral: `import { Machine } from "corral"`.

export { Machine, type MachineOptions, type ExecuteOptions, type ExecResult } from "./machine/machine.ts";
export type { WaitOptions } from "./deadline.ts";
export {
  CorralError,
  TimeoutError,
  AbortedError,
  MachineExitedError,
  HostToolMissingError,
  ErrorCodes,
  type ErrorCode,
} from "./errors.ts";
export { resolveAccelerator, type Accelerator, type AcceleratorVerdict } from "./host/accelerator.ts";
export { buildImage, type BuildImageOptions, type BuildImageResult } from "./images/build-image.ts";
export { findImage, listImages, type CachedImage } from "./images/image-cache.ts";
export type { ImageManifest } from "./images/manifest.ts";
