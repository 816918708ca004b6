// The Linux guest operations' scripts and parsers, against output as the Debian 12 tools print
// it (stat, ps, systemctl 252's JSON, journalctl -o json, df, ip -j); the scripts themselves run
// in test/integration/guest-ops.test.ts.

import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  checkExecRequest,
  linuxArgv,
  linuxCommandText,
} from "../../../../src/manager/guest/exec-request.ts";
import {
  checkWriteOptions,
  commitUploadScript,
  uploadName,
} from "../../../../src/manager/guest/file-uploads.ts";
import {
  countCpus,
  parseSystemInfo,
  systemInfoScript,
} from "../../../../src/manager/guest/linux-info.ts";
import {
  checkLogQuery,
  logsScript,
  parseHealth,
  parseJournal,
  parseProcesses,
  parseServices,
  parseShownService,
  parseStat,
  validateLinuxPath,
} from "../../../../src/manager/guest/linux-scripts.ts";

describe("paths and requests", () => {
  it("takes absolute paths only, without NUL or '..'", () => {
    expect(() => validateLinuxPath("/etc/hosts")).not.toThrow();
    for (const path of ["etc/hosts", "/etc/../root", "/a\0b", ""]) {
      expect(() => validateLinuxPath(path)).toThrow(
        expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
      );
    }
  });

  it("checks exec requests", () => {
    const ok = () => {};
    expect(() => checkExecRequest({ command: "true" }, ok)).not.toThrow();
    for (const request of [
      {},
      { command: "a", argv: ["a"] },
      { argv: [""] },
      { command: "a", env: { "1A": "x" } },
      { command: "a\0" },
      { command: "a", user: "root; id" },
      { command: "a", timeoutMs: 0 },
    ]) {
      expect(() => checkExecRequest(request, ok)).toThrow(/exec: /);
    }
  });

  it("builds bash text and argv with cwd, env and user", () => {
    expect(linuxArgv({ command: "id" })).toEqual(["bash", "-c", "id"]);
    expect(linuxArgv({ argv: ["id", "-u"], user: "nobody" })).toEqual([
      "runuser",
      "-u",
      "nobody",
      "--",
      "id",
      "-u",
    ]);
    expect(
      linuxCommandText(
        { argv: ["printf", "%s", "a b"], cwd: "/tmp", env: { A: "it's" } },
        "/tmp/in",
      ),
    ).toBe(
      [
        "exec </tmp/in && rm -f -- /tmp/in",
        "cd -- /tmp || exit 2",
        "export A='it'\\''s'",
        "exec printf %s 'a b'",
      ].join("\n"),
    );
    expect(linuxCommandText({ command: "echo $HOME", user: "nobody" })).toBe(
      "exec runuser -u nobody -- bash -c 'echo $HOME'",
    );
  });
});

describe("files", () => {
  it("reads stat's line and the sha256 after it", () => {
    const stdout = `regular file|5|81a4|0|0|1714557000\n${"ab".repeat(32)}  /etc/hostname\n`;
    expect(parseStat("/etc/hostname", stdout)).toEqual({
      path: "/etc/hostname",
      type: "file",
      sizeBytes: 5,
      mode: 0o644,
      uid: 0,
      gid: 0,
      modifiedAt: "2024-05-01T09:50:00.000Z",
      sha256: "ab".repeat(32),
    });
    expect(parseStat("/l", "symbolic link|7|a1ff|0|0|0\n")).toMatchObject({
      type: "symlink",
      mode: 0o777,
    });
    expect(parseStat("/d", "directory|4096|41ed|1|1|0\n")).toMatchObject({
      type: "directory",
      mode: 0o755,
    });
    expect(() => parseStat("/x", "garbage")).toThrow(/not what the script prints/);
  });

  it("names uploads beside their target, and checks write options", () => {
    expect(uploadName("/srv/a b/c")).toMatch(/^\/srv\/a b\/\.corral-upload-[0-9a-f-]{36}$/);
    expect(uploadName("/c\\d")).toMatch(/^\/\.corral-upload-/);
    expect(uploadName("C:\\x\\y.txt", true)).toMatch(/^C:\\x\\\.corral-upload-/);
    for (const options of [{ mode: 0o10000 }, { uid: -1 }, { gid: 1.5 }, { sha256: "abc" }]) {
      expect(() => checkWriteOptions(options)).toThrow(/write file: /);
    }
  });

  it("commits an upload with bash that parses", () => {
    const script = commitUploadScript("/a/.t", "/a/b", "ab".repeat(32), { mode: 0o600, uid: 1 });
    expect(script).toContain('chown -- 1: "$t" && chmod 600 -- "$t" && mv -f -- "$t" "$p"');
    expect(() => execFileSync("bash", ["-n", "-c", script])).not.toThrow();
  });
});

describe("processes, services, journal, health", () => {
  it("reads ps's columns", () => {
    const stdout = [
      "      1 root                              1.2 11200 /sbin/init",
      "      2 root                              0.0     0 [kthreadd]",
      "    412 systemd-timesync                  0.0  6012 /lib/systemd/systemd-timesyncd",
      "    999 root                              0.0   900 sleep 601",
    ].join("\n");
    expect(parseProcesses(stdout)).toEqual([
      { pid: 1, user: "root", cpuPercent: 1.2, rssBytes: 11200 * 1024, command: "/sbin/init" },
      { pid: 2, user: "root", cpuPercent: 0, rssBytes: 0, command: "[kthreadd]" },
      {
        pid: 412,
        user: "systemd-timesync",
        cpuPercent: 0,
        rssBytes: 6012 * 1024,
        command: "/lib/systemd/systemd-timesyncd",
      },
      { pid: 999, user: "root", cpuPercent: 0, rssBytes: 900 * 1024, command: "sleep 601" },
    ]);
  });

  it("merges loaded units with unit files, skipping references to missing units and templates", () => {
    const units = [
      {
        unit: "backdoor.service",
        load: "loaded",
        active: "active",
        sub: "running",
        job: "",
        description: "corral backdoor",
      },
      {
        unit: "display-manager.service",
        load: "not-found",
        active: "inactive",
        sub: "dead",
        job: "",
        description: "display-manager.service",
      },
    ];
    const files = [
      { unit_file: "backdoor.service", state: "enabled", preset: "enabled" },
      { unit_file: "ssh.service", state: "disabled", preset: "enabled" },
      { unit_file: "getty@.service", state: "masked", preset: "enabled" },
    ];
    expect(
      parseServices(
        `${JSON.stringify(units)}\n\n--corral-unit-files--\n${JSON.stringify(files)}\n`,
      ),
    ).toEqual([
      {
        name: "backdoor.service",
        description: "corral backdoor",
        state: "active",
        startup: "enabled",
      },
      { name: "ssh.service", description: "", state: "inactive", startup: "disabled" },
    ]);
    expect(
      parseShownService(
        "Id=x.service\nDescription=X\nLoadState=loaded\nActiveState=active\nUnitFileState=\n",
      ),
    ).toEqual({
      name: "x.service",
      description: "X",
      state: "active",
      startup: "",
    });
    expect(parseShownService("Id=y.service\nLoadState=not-found\n")).toBeUndefined();
  });

  it("asks journalctl for the query, and reads its JSON lines", () => {
    expect(
      logsScript({
        since: new Date(1714557000123),
        unit: "ssh",
        priority: 3,
        identifier: "corral-test",
        limit: 5,
      }),
    ).toBe(
      "journalctl -o json --no-pager -q -n 5 --since @1714557000.123 -p 3 -u ssh -t corral-test",
    );
    for (const query of [
      { limit: 0 },
      { priority: 8 },
      { unit: "a b" },
      { identifier: "a b" },
      { since: new Date(Number.NaN) },
    ]) {
      expect(() => checkLogQuery(query)).toThrow(/log query|unit name/);
    }
    const lines = [
      JSON.stringify({
        __REALTIME_TIMESTAMP: "1714557000123456",
        PRIORITY: "5",
        SYSLOG_IDENTIFIER: "corral-test",
        MESSAGE: "hello",
        _SYSTEMD_UNIT: "backdoor.service",
      }),
      JSON.stringify({
        __REALTIME_TIMESTAMP: "1714557001000000",
        PRIORITY: "6",
        _COMM: "x",
        MESSAGE: [104, 105, 255],
      }),
    ].join("\n");
    expect(parseJournal(lines)).toEqual([
      {
        time: "2024-05-01T09:50:00.123Z",
        priority: 5,
        source: "corral-test",
        message: "hello",
        unit: "backdoor.service",
      },
      { time: "2024-05-01T09:50:01.000Z", priority: 6, source: "x", message: "hi\ufffd" },
    ]);
  });

  it("reads health", () => {
    expect(parseHealth("degraded\nload=0.52\nmem=512000\ndisk=1604018176\n")).toEqual({
      systemState: "degraded",
      load1: 0.52,
      memoryAvailableBytes: 512000 * 1024,
      diskFreeBytes: 1604018176,
    });
    expect(parseHealth("load=0.1\nmem=1\ndisk=2\n").systemState).toBe("unknown");
  });
});

describe("system info", () => {
  it("counts CPU lists", () => {
    expect(countCpus("0-3,6\n")).toBe(5);
    expect(countCpus("0")).toBe(1);
  });

  it("reads the facts, df, ip -j and who", () => {
    const stdout = [
      "hostname=corral",
      "kernel=6.1.0-57-cloud-amd64",
      "uptime=83.51",
      "cpus=0-1",
      "MemTotal=1004512",
      "MemAvailable=800000",
      'os.PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
      'os.NAME="Debian GNU/Linux"',
      'os.VERSION_ID="12"',
      "--corral-section--",
      "Filesystem     Type   1-blocks      Used  Available Capacity Mounted on",
      "/dev/vda       ext4 2040373248 312205312 1604018176      17% /",
      "--corral-section--",
      JSON.stringify([
        {
          ifname: "lo",
          address: "00:00:00:00:00:00",
          addr_info: [{ local: "127.0.0.1", prefixlen: 8 }],
        },
        {
          ifname: "eth0",
          address: "52:54:00:12:34:56",
          addr_info: [{ local: "10.0.2.15", prefixlen: 24 }],
        },
      ]),
      "--corral-section--",
      "root     pts/0        2024-05-01 09:50",
      "",
    ].join("\n");
    expect(parseSystemInfo(stdout)).toEqual({
      os: {
        family: "linux",
        name: "Debian GNU/Linux",
        version: "12",
        kernel: "6.1.0-57-cloud-amd64",
      },
      hostname: "corral",
      cpus: 2,
      memory: { totalBytes: 1004512 * 1024, availableBytes: 800000 * 1024 },
      filesystems: [
        { mountpoint: "/", type: "ext4", totalBytes: 2040373248, usedBytes: 312205312 },
      ],
      interfaces: [
        { name: "lo", mac: null, addresses: ["127.0.0.1/8"] },
        { name: "eth0", mac: "52:54:00:12:34:56", addresses: ["10.0.2.15/24"] },
      ],
      uptimeS: 83,
      users: ["root"],
    });
  });

  it("is bash that parses", () => {
    for (const full of [true, false]) {
      expect(() => execFileSync("bash", ["-n", "-c", systemInfoScript(full)])).not.toThrow();
    }
  });
});
