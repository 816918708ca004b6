// Windows services: list them (Get-Service), start, stop or restart one by name. Scripts for
// powershellExec() and parsers of their output. Not verified on a real Windows guest.
// Property names and enum values: ServiceController (System.ServiceProcess),
// https://learn.microsoft.com/en-us/dotnet/api/system.serviceprocess.servicecontroller

import { CorralError, ErrorCodes } from "../../errors.ts";
import { enumName, jsonRow } from "./json-row.ts";
import { psQuote } from "./powershell.ts";
import { parseJsonList } from "./powershell-output.ts";

/** ServiceControllerStatus, by value (learn.microsoft.com/…/system.serviceprocess.servicecontrollerstatus). */
export const SERVICE_STATUSES = [
  "Stopped",
  "StartPending",
  "StopPending",
  "Running",
  "ContinuePending",
  "PausePending",
  "Paused",
] as const;
export type ServiceStatus = (typeof SERVICE_STATUSES)[number];

/** ServiceStartMode, by value (learn.microsoft.com/…/system.serviceprocess.servicestartmode). */
export const SERVICE_START_TYPES = ["Boot", "System", "Automatic", "Manual", "Disabled"] as const;
export type ServiceStartType = (typeof SERVICE_START_TYPES)[number];

export interface WindowsService {
  /** The service's key name, e.g. `Spooler`. */
  name: string;
  /** Its display name, e.g. `Print Spooler` (localised). */
  displayName: string;
  status: ServiceStatus;
  /** How it starts; `Automatic` includes delayed automatic starts. */
  startType: ServiceStartType;
}

export type ServiceAction = "start" | "stop" | "restart";

export interface ServiceActionOptions {
  /**
   * Stop (or restart) the services that depend on it too (the cmdlets' -Force); without it,
   * stopping a service others depend on fails. Default false.
   */
  force?: boolean;
}

// Get-Service prints the enums as numbers through ConvertTo-Json: "$(…)" makes them their names.
const SELECT_SERVICE =
  "Select-Object -Property Name, DisplayName, @{ Name = 'Status'; Expression = { \"$($_.Status)\" } }, @{ Name = 'StartType'; Expression = { \"$($_.StartType)\" } }";

/** The script that lists every service as JSON (parseServices reads it). */
export function listServicesScript(): string {
  return [
    `$services = @(Get-Service | ${SELECT_SERVICE})`,
    "ConvertTo-Json -InputObject $services -Depth 2 -Compress",
  ].join("\n");
}

/**
 * The script that starts, stops or restarts the service `name` and prints it afterwards as
 * JSON (parseServices reads it). Throws CORRAL_INVALID_ARGUMENT for a name that is not a
 * service name (validateServiceName).
 */
export function serviceActionScript(
  name: string,
  action: ServiceAction,
  options: ServiceActionOptions = {},
): string {
  validateServiceName(name);
  const cmdlet = { start: "Start-Service", stop: "Stop-Service", restart: "Restart-Service" }[
    action
  ];
  const force = options.force && action !== "start" ? " -Force" : "";
  return [
    `${cmdlet} -Name ${psQuote(name)}${force}`,
    `$services = @(Get-Service -Name ${psQuote(name)} | ${SELECT_SERVICE})`,
    "ConvertTo-Json -InputObject $services -Depth 2 -Compress",
  ].join("\n");
}

/**
 * Throws CORRAL_INVALID_ARGUMENT unless `name` can be a Windows service name: 1–256 characters,
 * no slash or backslash (the Service Control Manager refuses them), no control characters, and
 * no wildcard (`* ? [ ]`: the service cmdlets' -Name would match other services with them).
 */
export function validateServiceName(name: string): void {
  if (/^[^\\/*?[\]\p{Cc}]{1,256}$/u.test(name)) return;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `${JSON.stringify(name)} is not a Windows service name: 1 to 256 characters, without / \\ * ? [ ] or control characters`,
  );
}

/** The services in listServicesScript's or serviceActionScript's output. */
export function parseServices(stdout: string): WindowsService[] {
  const what = "Windows services";
  return parseJsonList(stdout, what).map((item) => {
    const row = jsonRow(item, what);
    return {
      name: row.string("Name"),
      displayName: row.optionalString("DisplayName") ?? row.string("Name"),
      status: enumName(row.value("Status"), SERVICE_STATUSES, 1, `${what}: Status`),
      startType: enumName(row.value("StartType"), SERVICE_START_TYPES, 0, `${what}: StartType`),
    };
  });
}
