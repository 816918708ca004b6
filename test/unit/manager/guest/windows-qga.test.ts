// The Windows guest operations against a fake qemu-ga (test/helpers/fake-qga-peer.ts) that runs
// no PowerShell: it decodes each guest-exec payload, records the script, and answers with
// output hand-written after Microsoft's documentation of the cmdlets (as the builders' own tests
// do). What is asserted: the exact scripts sent, and what the operations make of the answers.
// Not verified on a real Windows guest.

import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Deadline } from "../../../../src/deadline.ts";
import { ErrorCodes } from "../../../../src/errors.ts";
import { QgaClient } from "../../../../src/guest/qga-client.ts";
import { eventLogScript } from "../../../../src/guest/windows/event-logs.ts";
import { moveFileScript, removeScript, statScript } from "../../../../src/guest/windows/files.ts";
import {
  decodePowerShellCommand,
  POWERSHELL_ERROR_TRAP,
  POWERSHELL_PRELUDE,
} from "../../../../src/guest/windows/powershell.ts";
import { listProcessesScript } from "../../../../src/guest/windows/processes.ts";
import { runCommandScript } from "../../../../src/guest/windows/run-command.ts";
import { listServicesScript, serviceActionScript } from "../../../../src/guest/windows/services.ts";
import { systemInfoScript } from "../../../../src/guest/windows/system-info.ts";
import { WindowsQgaOps } from "../../../../src/manager/guest/windows-qga.ts";
import { type FakeQgaPeer, startFakeQgaPeer } from "../../../helpers/fake-qga-peer.ts";

interface Run {
  exitcode: number;
  stdout?: string;
  stderr?: string;
  /** Polls answered with `exited: false` before the status. */
  runningPolls?: number;
}

let peer: FakeQgaPeer | undefined;
let client: QgaClient | undefined;

afterEach(async () => {
  client?.close();
  await peer?.close();
});

const deadline = (timeout = 5000) => new Deadline("windows test", { timeout }, timeout);

/** What the fake Windows guest saw: scripts run, other programs run, files written. */
interface Guest {
  ops: WindowsQgaOps;
  scripts: string[];
  programs: { path: string; arg: string[] }[];
  files: Map<string, Buffer>;
}

/**
 * A fake Windows guest whose PowerShell answers each script with `answer(script)` (the script
 * without prelude; `trapped` false when it ran without the error trap).
 */
async function windowsGuest(
  answer: (script: string, trapped: boolean) => Run,
  other: (path: string, arg: string[]) => Run = () => ({ exitcode: 0 }),
): Promise<Guest> {
  const guest: Omit<Guest, "ops"> = { scripts: [], programs: [], files: new Map() };
  const runs = new Map<number, Run>();
  const handles = new Map<number, string>();
  let nextPid = 1000;
  let nextHandle = 1;
  peer = await startFakeQgaPeer((command, args = {}) => {
    switch (command) {
      case "guest-ping":
        return { return: {} };
      case "guest-exec": {
        const path = args.path as string;
        const arg = (args.arg as string[] | undefined) ?? [];
        const pid = nextPid++;
        if (path === "powershell.exe") {
          const text = decodePowerShellCommand(arg[5] ?? "");
          const trapped = text.startsWith(`${POWERSHELL_PRELUDE}\n${POWERSHELL_ERROR_TRAP}\n`);
          const script = text.slice(
            `${POWERSHELL_PRELUDE}\n`.length + (trapped ? POWERSHELL_ERROR_TRAP.length + 1 : 0),
          );
          guest.scripts.push(script);
          runs.set(pid, answer(script, trapped));
        } else {
          guest.programs.push({ path, arg });
          runs.set(pid, other(path, arg));
          // taskkill /PID n ends run n, as Windows would.
          const killed = path === "taskkill.exe" ? runs.get(Number(arg[1])) : undefined;
          if (killed) killed.runningPolls = 0;
        }
        return { return: { pid } };
      }
      case "guest-exec-status": {
        const run = runs.get(args.pid as number);
        if (!run) return { error: { class: "GenericError", desc: "Invalid parameter 'pid'" } };
        if (run.runningPolls && run.runningPolls > 0) {
          run.runningPolls--;
          return { return: { exited: false } };
        }
        return {
          return: {
            exited: true,
            exitcode: run.exitcode,
            "out-data": Buffer.from(run.stdout ?? "").toString("base64"),
            "err-data": Buffer.from(run.stderr ?? "").toString("base64"),
          },
        };
      }
      case "guest-file-open": {
        const handle = nextHandle++;
        handles.set(handle, args.path as string);
        guest.files.set(args.path as string, Buffer.alloc(0));
        return { return: handle };
      }
      case "guest-file-write": {
        const path = handles.get(args.handle as number) ?? "";
        const bytes = Buffer.from(args["buf-b64"] as string, "base64");
        guest.files.set(path, Buffer.concat([guest.files.get(path) ?? Buffer.alloc(0), bytes]));
        return { return: { count: bytes.length, eof: false } };
      }
      case "guest-file-read": {
        const path = handles.get(args.handle as number) ?? "";
        const bytes = guest.files.get(path) ?? Buffer.alloc(0);
        guest.files.set(path, Buffer.alloc(0));
        return {
          return: { count: bytes.length, "buf-b64": bytes.toString("base64"), eof: true },
        };
      }
      case "guest-file-close":
        return { return: {} };
      case "guest-network-get-interfaces":
        return {
          return: [
            {
              name: "Ethernet",
              "hardware-address": "52:54:00:12:34:56",
              "ip-addresses": [
                { "ip-address": "10.0.2.15", "ip-address-type": "ipv4", prefix: 24 },
              ],
            },
            {
              name: "Loopback Pseudo-Interface 1",
              "ip-addresses": [{ "ip-address": "127.0.0.1", "ip-address-type": "ipv4", prefix: 8 }],
            },
          ],
        };
      case "guest-get-users":
        return {
          return: [{ user: "corral", domain: "WIN-7Q0NLB1D3SK", "login-time": 1714557000.5 }],
        };
      default:
        return {
          error: { class: "CommandNotFound", desc: `The command ${command} has not been found` },
        };
    }
  });
  client = await QgaClient.connect(peer.open, deadline());
  return { ...guest, ops: new WindowsQgaOps(client) };
}

const json = (value: unknown) => JSON.stringify(value);
/** The prelude's error line for an ObjectNotFound error (powershell.ts's Write-CorralError). */
const notFound = (message: string) =>
  `${json({ corralError: { message, type: "System.Management.Automation.ItemNotFoundException", category: "ObjectNotFound", errorId: "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand" } })}\r\n`;

describe("exec", () => {
  it("runs argv or a command through PowerShell with cwd and env, without the error trap", async () => {
    const guest = await windowsGuest(() => ({ exitcode: 3, stdout: "out\r\n", stderr: "err\r\n" }));
    const outcome = await guest.ops.exec(
      { argv: ["cmd.exe", "/c", "echo out"], cwd: "C:\\Users", env: { CORRAL_A: "b" } },
      deadline(),
    );
    expect(outcome).toEqual({
      exitCode: 3,
      stdout: Buffer.from("out\r\n"),
      stderr: Buffer.from("err\r\n"),
      isTimedOut: false,
      isStdoutTruncated: false,
      isStderrTruncated: false,
    });
    await guest.ops.exec({ command: "Get-Date", stdin: Buffer.from("in") }, deadline());
    expect(guest.scripts).toEqual([
      runCommandScript({
        argv: ["cmd.exe", "/c", "echo out"],
        cwd: "C:\\Users",
        env: { CORRAL_A: "b" },
      }),
      runCommandScript({ script: "Get-Date" }),
    ]);
  });

  it("refuses what Windows lacks: another user, a relative or POSIX folder", async () => {
    const guest = await windowsGuest(() => ({ exitcode: 0 }));
    await expect(
      guest.ops.exec({ command: "x", user: "corral" }, deadline()),
    ).rejects.toMatchObject({
      code: ErrorCodes.UNSUPPORTED,
    });
    await expect(guest.ops.exec({ command: "x", cwd: "/tmp" }, deadline())).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await expect(
      guest.ops.execStream({ command: "x" }, { onStdout() {}, onStderr() {} }, deadline()),
    ).rejects.toMatchObject({ code: ErrorCodes.UNSUPPORTED });
    expect(guest.scripts).toEqual([]);
  });

  it("ends the process tree with taskkill at the timeout and says so", async () => {
    const guest = await windowsGuest(() => ({
      exitcode: 1,
      stdout: "started\r\n",
      runningPolls: Number.POSITIVE_INFINITY,
    }));
    const started = performance.now();
    const outcome = await guest.ops.exec({ command: "Start-Sleep 60", timeoutMs: 300 }, deadline());
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(guest.programs).toEqual([{ path: "taskkill.exe", arg: ["/PID", "1000", "/T", "/F"] }]);
    expect(outcome).toMatchObject({
      exitCode: 124,
      isTimedOut: true,
      stdout: Buffer.from("started\r\n"),
    });
  });
});

describe("files", () => {
  it("writes beside the target, checks Get-FileHash, then moves it into place", async () => {
    const data = Buffer.from("hello windows");
    const hash = createHash("sha256").update(data).digest("hex");
    const guest = await windowsGuest(() => ({ exitcode: 0 }));
    async function* chunks() {
      yield data;
    }
    expect(
      await guest.ops.writeFile("C:\\data\\a.txt", chunks(), { sha256: hash }, deadline()),
    ).toEqual({
      sizeBytes: data.length,
      sha256: hash,
    });
    const [temporary] = [...guest.files.keys()];
    expect(temporary).toMatch(/^C:\\data\\\.corral-upload-[0-9a-f-]{36}$/);
    expect(guest.files.get(temporary as string)).toEqual(data);
    expect(guest.scripts).toEqual([
      [
        `$hash = (Get-FileHash -LiteralPath '${temporary}' -Algorithm SHA256).Hash.ToLowerInvariant()`,
        `if ($hash -ne '${hash}') { Remove-Item -LiteralPath '${temporary}' -Force; [Console]::Out.WriteLine($hash); exit 47 }`,
        moveFileScript(temporary as string, "C:\\data\\a.txt"),
      ].join("\n"),
    ]);
  });

  it("removes the upload when the bytes that landed differ, and refuses POSIX modes", async () => {
    const guest = await windowsGuest((script) =>
      script.startsWith("$hash")
        ? { exitcode: 47, stdout: `${"ab".repeat(32)}\r\n` }
        : { exitcode: 0 },
    );
    async function* chunks() {
      yield Buffer.from("x");
    }
    await expect(guest.ops.writeFile("C:\\a.txt", chunks(), {}, deadline())).rejects.toMatchObject({
      code: ErrorCodes.GUEST_CHANNEL_BROKEN,
      message: expect.stringContaining("abababab"),
    });
    const [temporary] = [...guest.files.keys()];
    expect(guest.scripts.at(-1)).toBe(removeScript(temporary as string));
    await expect(
      guest.ops.writeFile("C:\\a.txt", chunks(), { mode: 0o644 }, deadline()),
    ).rejects.toMatchObject({
      code: ErrorCodes.UNSUPPORTED,
    });
  });

  it("stats a file, and says 404 for one that is not there", async () => {
    const guest = await windowsGuest((script) =>
      script.includes("C:\\none")
        ? {
            exitcode: 1,
            stderr: notFound("Cannot find path 'C:\\none' because it does not exist."),
          }
        : {
            exitcode: 0,
            stdout: json({
              FullName: "C:\\Windows\\win.ini",
              PSIsContainer: false,
              Length: 92,
              Mode: "-a----",
              Attributes: "Archive",
              LastWriteTimeUtc: "2024-05-01T09:30:00.0000000Z",
            }),
          },
    );
    expect(await guest.ops.stat("C:\\Windows\\win.ini", deadline())).toEqual({
      path: "C:\\Windows\\win.ini",
      type: "file",
      sizeBytes: 92,
      mode: 0,
      uid: 0,
      gid: 0,
      modifiedAt: "2024-05-01T09:30:00.000Z",
      attributes: "Archive",
    });
    expect(guest.scripts).toEqual([statScript("C:\\Windows\\win.ini")]);
    await expect(guest.ops.stat("C:\\none", deadline())).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
  });
});

describe("system", () => {
  const SYSTEM_INFO = {
    OperatingSystem: {
      Caption: "Microsoft Windows Server 2022 Standard",
      Version: "10.0.20348",
      BuildNumber: "20348",
      OSArchitecture: "64-bit",
      CSName: "WIN-7Q0NLB1D3SK",
      TotalVisibleMemorySize: 4193844,
      FreePhysicalMemory: 1835008,
      LastBootUpTime: "2024-05-01T09:30:00.5000000Z",
      UptimeSeconds: 9000,
    },
    ComputerSystem: {
      Name: "WIN-7Q0NLB1D3SK",
      DNSHostName: "win-7q0nlb1d3sk",
      Domain: "WORKGROUP",
      NumberOfLogicalProcessors: 2,
    },
    Processors: [{ Name: "QEMU Virtual CPU", NumberOfCores: 2, NumberOfLogicalProcessors: 2 }],
    LogicalDisks: [
      {
        DeviceID: "C:",
        DriveType: 3,
        FileSystem: "NTFS",
        Size: 64_000_000_000,
        FreeSpace: 40_000_000_000,
      },
      { DeviceID: "D:", DriveType: 5, FileSystem: null, Size: null, FreeSpace: null },
    ],
  };

  it("tells what the guest is from CIM and the agent", async () => {
    const guest = await windowsGuest(() => ({ exitcode: 0, stdout: json(SYSTEM_INFO) }));
    expect(await guest.ops.systemInfo(deadline())).toEqual({
      os: {
        family: "windows",
        name: "Microsoft Windows Server 2022 Standard",
        version: "10.0.20348",
        kernel: "20348",
      },
      hostname: "win-7q0nlb1d3sk",
      cpus: 2,
      memory: { totalBytes: 4193844 * 1024, availableBytes: 1835008 * 1024 },
      filesystems: [
        { mountpoint: "C:", type: "NTFS", totalBytes: 64_000_000_000, usedBytes: 24_000_000_000 },
      ],
      interfaces: [
        { name: "Ethernet", mac: "52:54:00:12:34:56", addresses: ["10.0.2.15/24"] },
        { name: "Loopback Pseudo-Interface 1", mac: null, addresses: ["127.0.0.1/8"] },
      ],
      uptimeS: 9000,
      users: ["WIN-7Q0NLB1D3SK\\corral"],
    });
    expect(guest.scripts).toEqual([systemInfoScript()]);
    const health = await guest.ops.health(deadline());
    expect(health).toMatchObject({
      systemState: "running",
      load1: null,
      memoryAvailableBytes: 1835008 * 1024,
      diskFreeBytes: 40_000_000_000,
    });
  });

  it("lists processes and services, and acts on a service", async () => {
    const guest = await windowsGuest((script) => {
      if (script === listProcessesScript()) {
        return {
          exitcode: 0,
          stdout: json([
            {
              Id: 4,
              ProcessName: "System",
              UserName: null,
              CPU: null,
              CpuPercent: null,
              WorkingSet64: 139264,
              Path: null,
            },
            {
              Id: 720,
              ProcessName: "qemu-ga",
              UserName: "NT AUTHORITY\\SYSTEM",
              CPU: 0.25,
              CpuPercent: 0.1,
              WorkingSet64: 9_000_000,
              Path: "C:\\Program Files\\Qemu-ga\\qemu-ga.exe",
            },
          ]),
        };
      }
      if (script.startsWith("Start-Service -Name 'corral-none'")) {
        return {
          exitcode: 1,
          stderr: `${json({ corralError: { message: "Cannot find any service with service name 'corral-none'.", type: "Microsoft.PowerShell.Commands.ServiceCommandException", category: "ObjectNotFound", errorId: "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.StartServiceCommand" } })}\r\n`,
        };
      }
      const spooler = {
        Name: "Spooler",
        DisplayName: "Print Spooler",
        Status: "Running",
        StartType: "Automatic",
      };
      return { exitcode: 0, stdout: json(script === listServicesScript() ? [spooler] : spooler) };
    });
    expect(await guest.ops.processes(deadline())).toEqual([
      { pid: 4, user: "", command: "System", cpuPercent: 0, rssBytes: 139264 },
      {
        pid: 720,
        user: "NT AUTHORITY\\SYSTEM",
        command: "C:\\Program Files\\Qemu-ga\\qemu-ga.exe",
        cpuPercent: 0.1,
        rssBytes: 9_000_000,
      },
    ]);
    const spooler = {
      name: "Spooler",
      description: "Print Spooler",
      state: "Running",
      startup: "Automatic",
    };
    expect(await guest.ops.services(deadline())).toEqual([spooler]);
    expect(await guest.ops.serviceAction("Spooler", "restart", deadline())).toEqual(spooler);
    await expect(guest.ops.serviceAction("corral-none", "start", deadline())).rejects.toMatchObject(
      {
        code: ErrorCodes.NOT_FOUND,
      },
    );
    expect(guest.scripts).toEqual([
      listProcessesScript(),
      listServicesScript(),
      serviceActionScript("Spooler", "restart"),
      serviceActionScript("corral-none", "start"),
    ]);
  });

  it("reads event logs as log entries, oldest first, with levels on the syslog scale", async () => {
    const guest = await windowsGuest(() => ({
      exitcode: 0,
      stdout: json([
        {
          LogName: "System",
          Level: 2,
          ProviderName: "Service Control Manager",
          Id: 7000,
          RecordId: 12,
          TimeCreated: "2024-05-01T09:31:00.0000000Z",
          Message: "The service failed to start.",
        },
        {
          LogName: "System",
          Level: 1,
          ProviderName: "Microsoft-Windows-Kernel-Power",
          Id: 41,
          RecordId: 11,
          TimeCreated: "2024-05-01T09:30:00.0000000Z",
          Message: "The system has rebooted.",
        },
      ]),
    }));
    const since = new Date("2024-05-01T09:00:00Z");
    expect(
      await guest.ops.logs(
        { unit: "System", since, priority: 3, identifier: "Service Control Manager", limit: 20 },
        deadline(),
      ),
    ).toEqual([
      {
        time: "2024-05-01T09:30:00.000Z",
        priority: 2,
        source: "Microsoft-Windows-Kernel-Power",
        message: "The system has rebooted.",
        logName: "System",
        eventId: 41,
      },
      {
        time: "2024-05-01T09:31:00.000Z",
        priority: 3,
        source: "Service Control Manager",
        message: "The service failed to start.",
        logName: "System",
        eventId: 7000,
      },
    ]);
    expect(guest.scripts).toEqual([
      eventLogScript({
        logNames: ["System"],
        since,
        levels: ["Critical", "Error"],
        provider: "Service Control Manager",
        maxEvents: 20,
      }),
    ]);
  });
});
