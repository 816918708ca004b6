// The package's entry, `import … from "corral"`: checks the Node.js version, then loads the API
// of index.ts. A static re-export would link every module before this check could run (and on
// Node.js < 24 linking fails with an error that does not say why), so the API is imported
// dynamically and re-exported name by name; types come from index.d.ts. A unit test keeps the
// names here and in index.ts the same.

import * as errors from "./errors.ts";
import { unsupportedNodeMessage } from "./node-version.ts";

const unsupported = unsupportedNodeMessage(process.versions.node, process.execPath);
if (unsupported !== undefined) {
  throw new errors.CorralError(errors.ErrorCodes.HOST_TOOL_MISSING, unsupported);
}

export const {
  AbortedError,
  CorralError,
  Driver,
  ErrorCodes,
  GuestCommandError,
  HostToolMissingError,
  Machine,
  MachineExitedError,
  QgaClient,
  QgaError,
  QmpError,
  TimeoutError,
  UnsupportedError,
  VlanSwitch,
  buildImage,
  defineTest,
  findImage,
  listImages,
  posixExecRequest,
  resolveAccelerator,
  runTest,
  startMachines,
} = await import("./index.ts");
