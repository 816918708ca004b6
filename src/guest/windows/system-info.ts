// What a Windows guest is: OS, host name, CPUs, memory, disks, uptime, read from CIM classes
// (Get-CimInstance). A script for powershellExec() and a parser of its output. Not verified on
// a real Windows guest. Class and property names as documented at
// https://learn.microsoft.com/en-us/windows/win32/cimwin32prov/win32-operatingsystem,
// …/win32-computersystem, …/win32-processor and …/win32-logicaldisk.

import { enumName, jsonRow } from "./json-row.ts";
import { asList, parseJsonValue, parsePsDate } from "./powershell-output.ts";

/** Win32_LogicalDisk.DriveType, by value (0 to 6), as the documentation names them. */
export const DRIVE_TYPES = [
  "Unknown",
  "NoRootDirectory",
  "RemovableDisk",
  "LocalDisk",
  "NetworkDrive",
  "CompactDisc",
  "RAMDisk",
] as const;
export type DriveType = (typeof DRIVE_TYPES)[number];

export interface WindowsProcessor {
  name: string;
  cores: number;
  logicalProcessors: number;
  maxClockMHz: number | null;
}

export interface WindowsDisk {
  /** The drive letter with its colon, e.g. `C:`. */
  device: string;
  driveType: DriveType;
  /** NTFS, FAT32, CDFS…; null for an empty drive. */
  fileSystem: string | null;
  label: string | null;
  /** Null for a drive without media (an empty CD drive). */
  sizeBytes: number | null;
  freeBytes: number | null;
}

export interface WindowsSystemInfo {
  /** Win32_OperatingSystem.Caption, e.g. `Microsoft Windows 11 Pro`. */
  osName: string;
  /** e.g. `10.0.22631`. */
  osVersion: string;
  /** e.g. `22631`. */
  osBuild: string;
  /** e.g. `64-bit` (localised on some editions). */
  osArchitecture: string | null;
  hostname: string;
  /** The domain or workgroup. */
  domain: string | null;
  manufacturer: string | null;
  model: string | null;
  /** Logical processors (what the guest schedules on). */
  cpus: number;
  processors: WindowsProcessor[];
  /** Physical memory the OS can use, and how much of it is free. */
  memoryTotalBytes: number;
  memoryFreeBytes: number;
  disks: WindowsDisk[];
  /** When it booted, ISO 8601 UTC. */
  bootTime: string | null;
  uptimeS: number;
}

/** The script that prints the system's facts as one JSON object (parseSystemInfo reads it). */
export function systemInfoScript(): string {
  return [
    "$os = Get-CimInstance -ClassName Win32_OperatingSystem",
    "$info = [ordered]@{",
    "  OperatingSystem = $os | Select-Object -Property Caption, Version, BuildNumber, OSArchitecture, CSName, TotalVisibleMemorySize, FreePhysicalMemory, @{ Name = 'LastBootUpTime'; Expression = { $_.LastBootUpTime.ToUniversalTime().ToString('o') } }, @{ Name = 'UptimeSeconds'; Expression = { [math]::Floor(((Get-Date) - $_.LastBootUpTime).TotalSeconds) } }",
    "  ComputerSystem = Get-CimInstance -ClassName Win32_ComputerSystem | Select-Object -Property Name, DNSHostName, Domain, Manufacturer, Model, NumberOfProcessors, NumberOfLogicalProcessors, TotalPhysicalMemory",
    "  Processors = @(Get-CimInstance -ClassName Win32_Processor | Select-Object -Property Name, NumberOfCores, NumberOfLogicalProcessors, MaxClockSpeed)",
    "  LogicalDisks = @(Get-CimInstance -ClassName Win32_LogicalDisk | Select-Object -Property DeviceID, DriveType, FileSystem, VolumeName, Size, FreeSpace)",
    "}",
    "ConvertTo-Json -InputObject $info -Depth 4 -Compress",
  ].join("\n");
}

const KIB = 1024;

/** The facts in systemInfoScript's output. */
export function parseSystemInfo(stdout: string): WindowsSystemInfo {
  const what = "Windows system info";
  const info = jsonRow(parseJsonValue(stdout, what), what);
  const os = jsonRow(info.value("OperatingSystem"), `${what}: OperatingSystem`);
  const cs = jsonRow(info.value("ComputerSystem"), `${what}: ComputerSystem`);
  const processors = asList(info.value("Processors")).map((item) => {
    const cpu = jsonRow(item, `${what}: Processors`);
    return {
      name: (cpu.optionalString("Name") ?? "").trim(),
      cores: cpu.optionalNumber("NumberOfCores") ?? 0,
      logicalProcessors: cpu.optionalNumber("NumberOfLogicalProcessors") ?? 0,
      maxClockMHz: cpu.optionalNumber("MaxClockSpeed"),
    };
  });
  const disks = asList(info.value("LogicalDisks")).map((item) => {
    const disk = jsonRow(item, `${what}: LogicalDisks`);
    return {
      device: disk.string("DeviceID"),
      driveType: enumName(disk.value("DriveType"), DRIVE_TYPES, 0, `${what}: DriveType`),
      fileSystem: disk.optionalString("FileSystem"),
      label: disk.optionalString("VolumeName"),
      sizeBytes: disk.optionalNumber("Size"),
      freeBytes: disk.optionalNumber("FreeSpace"),
    };
  });
  return {
    osName: os.string("Caption"),
    osVersion: os.string("Version"),
    osBuild: os.string("BuildNumber"),
    osArchitecture: os.optionalString("OSArchitecture"),
    hostname: cs.optionalString("DNSHostName") ?? os.string("CSName"),
    domain: cs.optionalString("Domain"),
    manufacturer: cs.optionalString("Manufacturer"),
    model: cs.optionalString("Model"),
    cpus:
      cs.optionalNumber("NumberOfLogicalProcessors") ??
      processors.reduce((sum, cpu) => sum + cpu.logicalProcessors, 0),
    processors,
    memoryTotalBytes: os.number("TotalVisibleMemorySize") * KIB,
    memoryFreeBytes: os.number("FreePhysicalMemory") * KIB,
    disks,
    bootTime: parsePsDate(os.value("LastBootUpTime"), `${what}: LastBootUpTime`),
    uptimeS: os.number("UptimeSeconds"),
  };
}
