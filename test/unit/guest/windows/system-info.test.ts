// Windows system info: the exact Get-CimInstance script, and its output parsed. The output is
// hand-written with the property names and units of the CIM classes' documentation:
// Win32_OperatingSystem (TotalVisibleMemorySize and FreePhysicalMemory in kilobytes),
// Win32_ComputerSystem, Win32_Processor, Win32_LogicalDisk (Size and FreeSpace in bytes,
// DriveType 3 = Local Disk, 5 = Compact Disc)
// (https://learn.microsoft.com/en-us/windows/win32/cimwin32prov/win32-logicaldisk).
// Not verified on a real Windows guest.

import { describe, expect, it } from "vitest";
import { parseSystemInfo, systemInfoScript } from "../../../../src/guest/windows/system-info.ts";
import { payloadScript } from "../../../helpers/powershell.ts";

describe("systemInfoScript", () => {
  it("reads four CIM classes into one JSON object", () => {
    expect(payloadScript(systemInfoScript())).toBe(
      [
        "$os = Get-CimInstance -ClassName Win32_OperatingSystem",
        "$info = [ordered]@{",
        "  OperatingSystem = $os | Select-Object -Property Caption, Version, BuildNumber, OSArchitecture, CSName, TotalVisibleMemorySize, FreePhysicalMemory, @{ Name = 'LastBootUpTime'; Expression = { $_.LastBootUpTime.ToUniversalTime().ToString('o') } }, @{ Name = 'UptimeSeconds'; Expression = { [math]::Floor(((Get-Date) - $_.LastBootUpTime).TotalSeconds) } }",
        "  ComputerSystem = Get-CimInstance -ClassName Win32_ComputerSystem | Select-Object -Property Name, DNSHostName, Domain, Manufacturer, Model, NumberOfProcessors, NumberOfLogicalProcessors, TotalPhysicalMemory",
        "  Processors = @(Get-CimInstance -ClassName Win32_Processor | Select-Object -Property Name, NumberOfCores, NumberOfLogicalProcessors, MaxClockSpeed)",
        "  LogicalDisks = @(Get-CimInstance -ClassName Win32_LogicalDisk | Select-Object -Property DeviceID, DriveType, FileSystem, VolumeName, Size, FreeSpace)",
        "}",
        "ConvertTo-Json -InputObject $info -Depth 4 -Compress",
      ].join("\n"),
    );
  });
});

const OUTPUT = {
  OperatingSystem: {
    Caption: "Microsoft Windows 11 Pro",
    Version: "10.0.22631",
    BuildNumber: "22631",
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
    Manufacturer: "QEMU",
    Model: "Standard PC (Q35 + ICH9, 2009)",
    NumberOfProcessors: 1,
    NumberOfLogicalProcessors: 2,
    TotalPhysicalMemory: 4294430720,
  },
  Processors: [
    {
      Name: "QEMU Virtual CPU version 2.5+",
      NumberOfCores: 2,
      NumberOfLogicalProcessors: 2,
      MaxClockSpeed: 2000,
    },
  ],
  LogicalDisks: [
    {
      DeviceID: "C:",
      DriveType: 3,
      FileSystem: "NTFS",
      VolumeName: "Windows",
      Size: 67_718_578_176,
      FreeSpace: 45_112_836_096,
    },
    {
      DeviceID: "D:",
      DriveType: 5,
      FileSystem: null,
      VolumeName: null,
      Size: null,
      FreeSpace: null,
    },
  ],
};

describe("parseSystemInfo", () => {
  it("reads OS, host, CPUs, memory in bytes, disks and uptime", () => {
    expect(parseSystemInfo(JSON.stringify(OUTPUT))).toEqual({
      osName: "Microsoft Windows 11 Pro",
      osVersion: "10.0.22631",
      osBuild: "22631",
      osArchitecture: "64-bit",
      hostname: "win-7q0nlb1d3sk",
      domain: "WORKGROUP",
      manufacturer: "QEMU",
      model: "Standard PC (Q35 + ICH9, 2009)",
      cpus: 2,
      processors: [
        {
          name: "QEMU Virtual CPU version 2.5+",
          cores: 2,
          logicalProcessors: 2,
          maxClockMHz: 2000,
        },
      ],
      memoryTotalBytes: 4193844 * 1024,
      memoryFreeBytes: 1835008 * 1024,
      disks: [
        {
          device: "C:",
          driveType: "LocalDisk",
          fileSystem: "NTFS",
          label: "Windows",
          sizeBytes: 67_718_578_176,
          freeBytes: 45_112_836_096,
        },
        {
          device: "D:",
          driveType: "CompactDisc",
          fileSystem: null,
          label: null,
          sizeBytes: null,
          freeBytes: null,
        },
      ],
      bootTime: "2024-05-01T09:30:00.500Z",
      uptimeS: 9000,
    });
  });

  it("takes a lone processor and disk printed as objects, and 5.1's /Date()/ boot time", () => {
    const single = {
      ...OUTPUT,
      OperatingSystem: { ...OUTPUT.OperatingSystem, LastBootUpTime: "/Date(1714555800500)/" },
      Processors: OUTPUT.Processors[0],
      LogicalDisks: OUTPUT.LogicalDisks[0],
      ComputerSystem: { ...OUTPUT.ComputerSystem, DNSHostName: null },
    };
    const info = parseSystemInfo(JSON.stringify(single));
    expect(info.processors).toHaveLength(1);
    expect(info.disks.map((disk) => disk.device)).toEqual(["C:"]);
    expect(info.bootTime).toBe("2024-05-01T09:30:00.500Z");
    expect(info.hostname).toBe("WIN-7Q0NLB1D3SK");
  });

  it("names the field that is missing", () => {
    const broken = { ...OUTPUT, OperatingSystem: { ...OUTPUT.OperatingSystem, Caption: 7 } };
    expect(() => parseSystemInfo(JSON.stringify(broken))).toThrow(
      expect.objectContaining({
        code: "CORRAL_GUEST_OUTPUT_INVALID",
        message: expect.stringContaining("OperatingSystem: field Caption should be a string"),
      }),
    );
  });
});
