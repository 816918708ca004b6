// Where the network effects happen: the host's own network namespace (the daemon), or a named
// one (tests, which never touch the host's). Every `ip`, `nft`, `dnsmasq` and `ss` corral runs
// goes through here, prefixed with `ip netns exec <name>` when a namespace is named.

import { type RunProgramOptions, type RunProgramResult, runProgram } from "./run-program.ts";

export interface NetScope {
  /** A network namespace (`ip netns add`) to act in instead of the host's own. */
  netns?: string | undefined;
}

/** The program and arguments that run `file args…` in `scope`. */
export function scopedCommand(
  scope: NetScope,
  file: string,
  args: readonly string[],
): [string, string[]] {
  return scope.netns ? ["ip", ["netns", "exec", scope.netns, file, ...args]] : [file, [...args]];
}

/** Runs `file args…` in `scope` (runProgram: throws CORRAL_HOST_COMMAND_FAILED with its stderr). */
export function runScoped(
  scope: NetScope,
  file: string,
  args: readonly string[],
  options: RunProgramOptions = {},
): Promise<RunProgramResult> {
  const [program, programArgs] = scopedCommand(scope, file, args);
  return runProgram(program, programArgs, options);
}

/** Runs `ip -j args…` in `scope` and parses its JSON (an empty answer is an empty list). */
export async function ipJson<T>(scope: NetScope, args: readonly string[]): Promise<T[]> {
  const { stdout } = await runScoped(scope, "ip", ["-j", ...args]);
  return stdout.trim() === "" ? [] : (JSON.parse(stdout) as T[]);
}

/** Sets the sysctl `key` ("net.ipv4.ip_forward") to `value` in `scope`'s namespace. */
export async function setSysctl(scope: NetScope, key: string, value: string): Promise<void> {
  // /proc/sys/net is per namespace: written from inside it (tee is in coreutils, always there).
  await runScoped(scope, "tee", [`/proc/sys/${key.replaceAll(".", "/")}`], {
    input: `${value}\n`,
  });
}
