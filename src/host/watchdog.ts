// A helper process that kills every supervised process group, and removes the state folders of
// VMs, when corral dies, even by SIGKILL. corral holds the write end of its stdin; when corral's
// process ends, the kernel closes that pipe, `read` sees EOF, and the helper cleans up what is
// still registered.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";

// A killed process can still finish a write it had begun (qemu-img creating a disk) after kill
// returns, so the folders are removed once no process of the killed groups runs any more (a zombie
// has closed its files; it may wait long for a reaper), at most 10 s later, and once more if a
// late file made the first removal fail.
const SCRIPT = `
declare -A groups dirs
while read -r op arg; do
  case $op in
    +) groups[$arg]=1 ;;
    -) unset "groups[$arg]" ;;
    +dir) dirs[$arg]=1 ;;
    -dir) unset "dirs[$arg]" ;;
  esac
done
for pgid in "\${!groups[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null; done
running() {
  local stat line rest
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    rest=\${line##*) }
    [ "\${rest%% *}" != Z ] || continue
    rest=\${rest#* }; rest=\${rest#* }
    [ -n "\${groups[\${rest%% *}]:-}" ] && return 0
  done
  return 1
}
end=$((SECONDS + 10))
while [ \${#groups[@]} -gt 0 ] && [ $SECONDS -lt $end ] && running; do sleep 0.05; done
for dir in "\${!dirs[@]}"; do
  rm -rf -- "$dir" 2>/dev/null || { sleep 0.2; rm -rf -- "$dir"; }
done
`;

let helper: ChildProcess | undefined;
const live = new Set<number>();
const dirs = new Set<string>();

function ensureHelper(): ChildProcess {
  if (helper && helper.exitCode === null && helper.signalCode === null) return helper;
  // detached: its own session, so a Ctrl-C aimed at corral's terminal does not kill the watchdog.
  const child = spawn("bash", ["-c", SCRIPT], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  child.stdin?.on("error", () => {});
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  for (const pgid of live) child.stdin?.write(`+ ${pgid}\n`);
  for (const dir of dirs) child.stdin?.write(`+dir ${dir}\n`);
  helper = child;
  return child;
}

/** Starts watching process group `pgid`: it is killed when corral exits without releasing it. */
export function watchGroup(pgid: number): void {
  live.add(pgid);
  ensureHelper().stdin?.write(`+ ${pgid}\n`);
}

/** Stops watching `pgid` (its processes have been reaped). */
export function releaseGroup(pgid: number): void {
  if (!live.delete(pgid)) return;
  helper?.stdin?.write(`- ${pgid}\n`);
}

/** Removes folder `dir` (no newline in its name) if corral exits without releasing it. */
export function watchDir(dir: string): void {
  dirs.add(dir);
  ensureHelper().stdin?.write(`+dir ${dir}\n`);
}

/**
 * Creates a new folder `<prefix><random>` (mode 0700, as mkdtemp) and returns its path. It is
 * watched before it exists, so that no SIGKILL can leave it behind.
 */
export async function createWatchedDir(prefix: string): Promise<string> {
  for (;;) {
    const dir = `${prefix}${randomBytes(3).toString("hex")}`;
    watchDir(dir);
    try {
      await mkdir(dir, { mode: 0o700 });
      return dir;
    } catch (error) {
      releaseDir(dir);
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

/** Stops watching `dir` (it was removed, or is to be kept). */
export function releaseDir(dir: string): void {
  if (!dirs.delete(dir)) return;
  helper?.stdin?.write(`-dir ${dir}\n`);
}

// A plain process.exit() skips every dispose; kill what is left synchronously on the way out.
process.on("exit", () => {
  for (const pgid of live) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});
