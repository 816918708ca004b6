// The script a Windows guest would run for a builder's output: wrapped by powershellExec, then
// decoded back from the exact guest-exec payload, so tests assert what goes over the wire.

import {
  decodePowerShellCommand,
  POWERSHELL_ERROR_TRAP,
  POWERSHELL_PRELUDE,
  powershellExec,
} from "../../src/guest/windows/powershell.ts";

/** `script` as decoded from powershellExec(script)'s -EncodedCommand, after prelude and trap. */
export function payloadScript(script: string): string {
  const args = powershellExec(script);
  if (args.path !== "powershell.exe" || args.arg[4] !== "-EncodedCommand") {
    throw new Error(`not a PowerShell payload: ${JSON.stringify(args)}`);
  }
  const text = decodePowerShellCommand(args.arg[5] as string);
  const prefix = `${POWERSHELL_PRELUDE}\n${POWERSHELL_ERROR_TRAP}\n`;
  if (!text.startsWith(prefix)) throw new Error("the payload does not start with the prelude");
  return text.slice(prefix.length);
}
