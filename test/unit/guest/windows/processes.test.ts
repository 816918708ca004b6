// Windows processes: the exact Get-Process and Stop-Process scripts, the signal mapping, and
// the listing parsed. The output is hand-written with Get-Process's property names (Id,
// ProcessName, UserName with -IncludeUserName, CPU in seconds, WorkingSet64 in bytes)
// (https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.management/get-process).
// Not verified on a real Windows guest.

import { describe, expect, it } from "vitest";
import {
  killProcessScript,
  listProcessesScript,
  parseProcesses,
} from "../../../../src/guest/windows/processes.ts";
import { payloadScript } from "../../../helpers/powershell.ts";

describe("listProcessesScript", () => {
  it("asks for owners when it may, and tolerates processes it may not open", () => {
    expect(payloadScript(listProcessesScript())).toBe(
      [
        "try { $processes = Get-Process -IncludeUserName } catch { $processes = Get-Process }",
        "$rows = @($processes | Select-Object -Property Id, ProcessName, UserName, @{ Name = 'CPU'; Expression = { try { $_.TotalProcessorTime.TotalSeconds } catch { $null } } }, @{ Name = 'CpuPercent'; Expression = { try { [math]::Round($_.TotalProcessorTime.TotalSeconds * 100 / [math]::Max(0.001, ((Get-Date) - $_.StartTime).TotalSeconds), 1) } catch { $null } } }, WorkingSet64, @{ Name = 'Path'; Expression = { try { $_.MainModule.FileName } catch { $null } } })",
        "ConvertTo-Json -InputObject $rows -Depth 2 -Compress",
      ].join("\n"),
    );
  });
});

describe("parseProcesses", () => {
  it("reads pid, name, user, CPU seconds, working set and path", () => {
    const stdout = JSON.stringify([
      { Id: 0, ProcessName: "Idle", UserName: null, CPU: null, WorkingSet64: 8192, Path: null },
      {
        Id: 4,
        ProcessName: "System",
        UserName: "NT AUTHORITY\\SYSTEM",
        CPU: null,
        WorkingSet64: 139264,
        Path: null,
      },
      {
        Id: 5412,
        ProcessName: "explorer",
        UserName: "WIN-7Q0NLB1D3SK\\corral",
        CPU: 12.859375,
        CpuPercent: 0.4,
        WorkingSet64: 105_467_904,
        Path: "C:\\Windows\\explorer.exe",
      },
    ]);
    expect(parseProcesses(stdout)).toEqual([
      {
        pid: 0,
        name: "Idle",
        user: null,
        cpuS: null,
        cpuPercent: null,
        workingSetBytes: 8192,
        path: null,
      },
      {
        pid: 4,
        name: "System",
        user: "NT AUTHORITY\\SYSTEM",
        cpuS: null,
        cpuPercent: null,
        workingSetBytes: 139264,
        path: null,
      },
      {
        pid: 5412,
        name: "explorer",
        user: "WIN-7Q0NLB1D3SK\\corral",
        cpuS: 12.859375,
        cpuPercent: 0.4,
        workingSetBytes: 105_467_904,
        path: "C:\\Windows\\explorer.exe",
      },
    ]);
  });

  it("reads a listing without owners (no -IncludeUserName) and a lone process", () => {
    expect(
      parseProcesses('{"Id":720,"ProcessName":"qemu-ga","CPU":0.25,"WorkingSet64":9000000}'),
    ).toEqual([
      {
        pid: 720,
        name: "qemu-ga",
        user: null,
        cpuS: 0.25,
        cpuPercent: null,
        workingSetBytes: 9000000,
        path: null,
      },
    ]);
  });
});

describe("killProcessScript", () => {
  it("ends the process with Stop-Process -Force for KILL and TERM, by name or number", () => {
    for (const signal of ["KILL", "TERM", "SIGKILL", "sigterm", 9, 15]) {
      expect(payloadScript(killProcessScript(5412, signal))).toBe("Stop-Process -Id 5412 -Force");
    }
    expect(payloadScript(killProcessScript(5412))).toBe("Stop-Process -Id 5412 -Force");
  });

  it("refuses signals that mean nothing on Windows, and saying so", () => {
    for (const signal of ["HUP", "SIGINT", "STOP", "USR1", 2, 19]) {
      expect(() => killProcessScript(5412, signal)).toThrow(
        expect.objectContaining({
          code: "CORRAL_INVALID_ARGUMENT",
          message: expect.stringContaining("has no meaning on Windows"),
        }),
      );
    }
  });

  it("refuses what is not a pid", () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) {
      expect(() => killProcessScript(pid)).toThrow(/is not a process id/);
    }
  });
});
