// Windows processes: list them (Get-Process) and end one by pid (Stop-Process). Scripts for
// powershellExec() and a parser of the listing. Not verified on a real Windows guest.
// Get-Process: https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.management/get-process
// (its objects are System.Diagnostics.Process; CPU is PowerShell's TotalProcessorTime in seconds).

import { CorralError, ErrorCodes } from "../../errors.ts";
import { jsonRow } from "./json-row.ts";
import { parseJsonList } from "./powershell-output.ts";

export interface WindowsProcess {
  pid: number;
  /** The process name without `.exe`, as Get-Process gives it. */
  name: string;
  /** `DOMAIN\user`; null when Windows did not say (the agent not elevated, or a system process). */
  user: string | null;
  /** Processor time used so far, in seconds; null when the process may not be opened. */
  cpuS: number | null;
  /**
   * Processor time over the time since it started, in percent of one CPU (as ps's %CPU); null
   * when the process may not be opened.
   */
  cpuPercent: number | null;
  workingSetBytes: number;
  /** The executable's path; null when the process may not be opened. */
  path: string | null;
}

/**
 * The script that lists every process as JSON (parseProcesses reads it). Owners come from
 * Get-Process -IncludeUserName, which needs an elevated caller (qemu-ga runs as LocalSystem);
 * without that the list comes without them.
 */
export function listProcessesScript(): string {
  return [
    "try { $processes = Get-Process -IncludeUserName } catch { $processes = Get-Process }",
    // TotalProcessorTime and MainModule throw for processes the caller may not open.
    "$rows = @($processes | Select-Object -Property Id, ProcessName, UserName, @{ Name = 'CPU'; Expression = { try { $_.TotalProcessorTime.TotalSeconds } catch { $null } } }, @{ Name = 'CpuPercent'; Expression = { try { [math]::Round($_.TotalProcessorTime.TotalSeconds * 100 / [math]::Max(0.001, ((Get-Date) - $_.StartTime).TotalSeconds), 1) } catch { $null } } }, WorkingSet64, @{ Name = 'Path'; Expression = { try { $_.MainModule.FileName } catch { $null } } })",
    "ConvertTo-Json -InputObject $rows -Depth 2 -Compress",
  ].join("\n");
}

/** The processes in listProcessesScript's output. */
export function parseProcesses(stdout: string): WindowsProcess[] {
  const what = "Windows processes";
  return parseJsonList(stdout, what).map((item) => {
    const row = jsonRow(item, what);
    return {
      pid: row.number("Id"),
      name: row.string("ProcessName"),
      user: row.optionalString("UserName"),
      cpuS: row.optionalNumber("CPU"),
      cpuPercent: row.optionalNumber("CpuPercent"),
      workingSetBytes: row.optionalNumber("WorkingSet64") ?? 0,
      path: row.optionalString("Path"),
    };
  });
}

/**
 * Signals a Windows process can be sent. Windows has no signals: both end the process at once
 * (Stop-Process -Force, i.e. TerminateProcess); TERM is not a request the program can handle.
 */
export const WINDOWS_KILL_SIGNALS = ["KILL", "TERM"] as const;

/**
 * The script that ends process `pid` (Stop-Process -Id … -Force). `signal` is a POSIX name
 * (`KILL`, `SIGTERM`) or number; only KILL and TERM have a meaning on Windows, and both end the
 * process without warning it. Throws CORRAL_INVALID_ARGUMENT for another signal or a pid that is
 * not a positive integer. No such process fails the script with an ObjectNotFound error.
 */
export function killProcessScript(pid: number, signal: string | number = "TERM"): string {
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `${pid} is not a process id`);
  }
  const name = signalName(signal);
  if (!(WINDOWS_KILL_SIGNALS as readonly string[]).includes(name)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `signal ${signal} has no meaning on Windows, which has no signals; KILL and TERM end the process (both at once, with TerminateProcess)`,
    );
  }
  return `Stop-Process -Id ${pid} -Force`;
}

const SIGNAL_NUMBERS: Record<number, string> = { 1: "HUP", 2: "INT", 9: "KILL", 15: "TERM" };

function signalName(signal: string | number): string {
  if (typeof signal === "number") return SIGNAL_NUMBERS[signal] ?? String(signal);
  return signal.toUpperCase().replace(/^SIG/, "");
}
