// The bash scripts behind the Linux guest operations, one per operation (each fork costs ~100 ms
// under TCG), and parsers of what they print. Both Linux channels run them: the backdoor shell
// as commands, qemu-ga through guest-exec of /bin/bash. Statuses 44 and 45 are the scripts' own
// (no user command runs in them): not found, and a folder that is not empty.

import { CorralError, ErrorCodes } from "../../errors.ts";
import { shellQuote } from "../../guest/shell-quote.ts";
import type { FileStat, GuestProcess, GuestService, LogEntry, LogQuery } from "./guest-ops.ts";

export const EXIT_NOT_FOUND = 44;
export const EXIT_NOT_EMPTY = 45;
export const DEFAULT_LOG_LIMIT = 100;
export const MAX_LOG_LIMIT = 10_000;

/** Throws CORRAL_INVALID_ARGUMENT unless `path` is absolute, without NUL or a `..` component. */
export function validateLinuxPath(path: string): void {
  const problem = path.includes("\0")
    ? "holds a NUL character"
    : !path.startsWith("/")
      ? "is not absolute"
      : path.split("/").includes("..")
        ? "has a '..' component"
        : undefined;
  if (problem) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${JSON.stringify(path)} ${problem}; give an absolute path in the guest`,
    );
  }
}

/**
 * Prints `type|size|mode hex|uid|gid|mtime s` of `path` (of what a symlink points to, with
 * `follow`), then with `sha256` the file's sha256.
 */
export function statScript(
  path: string,
  options: { sha256?: boolean; follow?: boolean } = {},
): string {
  return [
    `p=${shellQuote(path)}`,
    `[ -e "$p" ] || [ -L "$p" ] || exit ${EXIT_NOT_FOUND}`,
    `stat ${options.follow ? "-L " : ""}-c '%F|%s|%f|%u|%g|%Y' -- "$p" || exit`,
    ...(options.sha256 ? ['if [ -f "$p" ]; then sha256sum -- "$p" || exit; fi'] : []),
  ].join("\n");
}

/** The FileStat (and sha256, if printed) in statScript's output. */
export function parseStat(path: string, stdout: string): FileStat & { sha256?: string } {
  const [line = "", hashLine] = stdout.split("\n");
  const [kind = "", size, mode, uid, gid, mtime] = line.split("|");
  const numbers = [size, uid, gid, mtime].map(Number);
  const modeBits = Number.parseInt(mode ?? "", 16);
  if (numbers.some((n) => !Number.isFinite(n)) || !Number.isFinite(modeBits)) {
    throw outputError("stat", stdout);
  }
  const [sizeBytes = 0, uidN = 0, gidN = 0, mtimeS = 0] = numbers;
  const sha256 = hashLine?.split(" ")[0];
  return {
    path,
    type: kind.includes("regular")
      ? "file"
      : kind === "directory"
        ? "directory"
        : kind === "symbolic link"
          ? "symlink"
          : "other",
    sizeBytes,
    mode: modeBits & 0o7777,
    uid: uidN,
    gid: gidN,
    modifiedAt: new Date(mtimeS * 1000).toISOString(),
    ...(sha256 && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {}),
  };
}

/** Removes `path`: a file or symlink; a folder only when empty, or with `recursive`. */
export function removeScript(path: string, recursive: boolean): string {
  return [
    `p=${shellQuote(path)}`,
    `[ -e "$p" ] || [ -L "$p" ] || exit ${EXIT_NOT_FOUND}`,
    recursive
      ? 'rm -rf -- "$p"'
      : `if [ -d "$p" ] && [ ! -L "$p" ]; then rmdir -- "$p" 2>/dev/null || exit ${EXIT_NOT_EMPTY}; else rm -f -- "$p"; fi`,
  ].join("\n");
}

/** Sends `signal` to process `pid`. */
export function killScript(pid: number, signal: string): string {
  return `kill -0 ${pid} 2>/dev/null || exit ${EXIT_NOT_FOUND}\nkill -s ${signal} -- ${pid}`;
}

/** Lists processes: pid, user, %CPU, RSS (KiB), command line. */
export const PROCESSES_SCRIPT = "ps -eo pid=,user:32=,pcpu=,rss=,args=";

export function parseProcesses(stdout: string): GuestProcess[] {
  return stdout
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\S+)\s+([\d.]+)\s+(\d+)\s?(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({
      pid: Number(match[1]),
      user: match[2] ?? "",
      cpuPercent: Number(match[3]),
      rssBytes: Number(match[4]) * 1024,
      command: match[5] ?? "",
    }));
}

const UNITS_SEPARATOR = "--corral-unit-files--";

/** Every service unit: systemd's loaded ones with their state, and the unit files' startup. */
export const SERVICES_SCRIPT = [
  "systemctl list-units --type=service --all --output=json --no-pager || exit",
  `echo; echo ${UNITS_SEPARATOR}`,
  "systemctl list-unit-files --type=service --output=json --no-pager",
].join("\n");

export function parseServices(stdout: string): GuestService[] {
  const [unitsText = "", filesText = ""] = stdout.split(UNITS_SEPARATOR);
  const units = parseJsonArray(unitsText, "systemctl list-units") as {
    unit: string;
    load: string;
    active: string;
    description: string;
  }[];
  const files = parseJsonArray(filesText, "systemctl list-unit-files") as {
    unit_file: string;
    state: string;
  }[];
  const startup = new Map(files.map((file) => [file.unit_file, file.state]));
  const services = new Map<string, GuestService>();
  for (const unit of units) {
    if (unit.load === "not-found") continue;
    services.set(unit.unit, {
      name: unit.unit,
      description: unit.description,
      state: unit.active,
      startup: startup.get(unit.unit) ?? "",
    });
  }
  for (const [name, state] of startup) {
    if (services.has(name) || name.endsWith("@.service")) continue;
    services.set(name, { name, description: "", state: "inactive", startup: state });
  }
  return [...services.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Throws CORRAL_INVALID_ARGUMENT unless `name` can be a systemd unit name. */
export function validateUnitName(name: string): void {
  if (/^[A-Za-z0-9:_.@\\-]{1,256}$/.test(name) && !name.startsWith("-")) return;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `${JSON.stringify(name)} is not a systemd unit name: letters, digits and : _ . @ \\ -, at most 256`,
  );
}

/** Starts, stops or restarts `name`, then shows it (status of the action kept). */
export function serviceActionScript(name: string, action: "start" | "stop" | "restart"): string {
  validateUnitName(name);
  return [
    `n=${shellQuote(name)}`,
    `systemctl ${action} -- "$n"; s=$?`,
    'systemctl show --no-pager -p Id,Description,LoadState,ActiveState,UnitFileState -- "$n"',
    'exit "$s"',
  ].join("\n");
}

/** The unit in serviceActionScript's output; undefined when systemd does not know it. */
export function parseShownService(stdout: string): GuestService | undefined {
  const fields = new Map(
    stdout
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  if (fields.get("LoadState") === "not-found" || !fields.get("Id")) return undefined;
  return {
    name: fields.get("Id") ?? "",
    description: fields.get("Description") ?? "",
    state: fields.get("ActiveState") ?? "",
    startup: fields.get("UnitFileState") ?? "",
  };
}

/** journalctl's JSON lines for `query` (see LogQuery). */
export function logsScript(query: LogQuery): string {
  const limit = checkLogQuery(query);
  const since = query.since?.getTime();
  const args = [
    "-o json --no-pager -q",
    `-n ${limit}`,
    ...(since !== undefined ? [`--since @${(since / 1000).toFixed(3)}`] : []),
    ...(query.priority !== undefined ? [`-p ${query.priority}`] : []),
    ...(query.unit !== undefined ? [`-u ${shellQuote(query.unit)}`] : []),
    ...(query.identifier !== undefined ? [`-t ${shellQuote(query.identifier)}`] : []),
  ];
  return `journalctl ${args.join(" ")}`;
}

/** The limit of a valid query; throws CORRAL_INVALID_ARGUMENT for a bad one. */
export function checkLogQuery(query: LogQuery): number {
  const invalid = (problem: string) =>
    new CorralError(ErrorCodes.INVALID_ARGUMENT, `log query: ${problem}`);
  const limit = query.limit ?? DEFAULT_LOG_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LOG_LIMIT) {
    throw invalid(`limit must be a whole number from 1 to ${MAX_LOG_LIMIT}, not ${limit}`);
  }
  const { priority, since } = query;
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > 7)) {
    throw invalid(`priority must be 0 (emerg) to 7 (debug), not ${priority}`);
  }
  if (since !== undefined && !Number.isFinite(since.getTime())) {
    throw invalid("since is not a valid date");
  }
  if (query.unit !== undefined) validateUnitName(query.unit);
  if (query.identifier !== undefined && !/^[^\s\0]{1,256}$/.test(query.identifier)) {
    throw invalid(
      `identifier ${JSON.stringify(query.identifier)} must be 1 to 256 characters without spaces`,
    );
  }
  return limit;
}

export function parseJournal(stdout: string): LogEntry[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      const text = (key: string) => journalText(record[key]);
      const unit = text("_SYSTEMD_UNIT") ?? text("UNIT");
      return {
        time: new Date(Number(text("__REALTIME_TIMESTAMP") ?? 0) / 1000).toISOString(),
        priority: Number(text("PRIORITY") ?? 6),
        source: text("SYSLOG_IDENTIFIER") ?? text("_COMM") ?? "",
        message: text("MESSAGE") ?? "",
        ...(unit ? { unit } : {}),
      };
    });
}

/** A journal field: a string, or bytes (an array of numbers) when it is not valid UTF-8. */
function journalText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return Buffer.from(value as number[]).toString("utf8");
  return undefined;
}

/** systemd's state, the 1-minute load, available memory (KiB) and free bytes on `/`. */
export const HEALTH_SCRIPT = [
  "systemctl is-system-running 2>/dev/null || :",
  'read -r l _ </proc/loadavg; echo "load=$l"',
  'while read -r k v _; do [ "$k" = MemAvailable: ] && echo "mem=$v"; done </proc/meminfo',
  'echo "disk=$(df -B1 --output=avail / | tail -n 1)"',
].join("\n");

export function parseHealth(stdout: string) {
  const lines = stdout.split("\n");
  const value = (key: string) =>
    lines.find((line) => line.startsWith(`${key}=`))?.slice(key.length + 1);
  const state = lines[0]?.includes("=") ? "unknown" : lines[0]?.trim() || "unknown";
  const load = Number(value("load"));
  return {
    systemState: state,
    load1: Number.isFinite(load) ? load : null,
    memoryAvailableBytes: Number(value("mem") ?? 0) * 1024,
    diskFreeBytes: Number(value("disk")?.trim() ?? 0),
  };
}

function parseJsonArray(text: string, what: string): unknown[] {
  try {
    const value = JSON.parse(text.trim() || "[]") as unknown;
    if (Array.isArray(value)) return value;
  } catch {}
  throw outputError(what, text);
}

export function outputError(what: string, output: string): CorralError {
  const shown = output.length > 200 ? `${output.slice(0, 200)}…` : output;
  return new CorralError(
    ErrorCodes.GUEST_OUTPUT_INVALID,
    `${what}: the guest's output is not what the script prints`,
    { details: [`output: ${JSON.stringify(shown)}`] },
  );
}
