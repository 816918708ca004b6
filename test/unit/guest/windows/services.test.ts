// Windows services: the exact scripts, and their output parsed. The outputs are hand-written in
// the shape ConvertTo-Json gives Get-Service's ServiceController objects, with names and states
// from Get-Service's documentation examples
// (https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.management/get-service);
// enum values from ServiceControllerStatus and ServiceStartMode. Not verified on a real Windows guest.

import { describe, expect, it } from "vitest";
import { powershellExec, scriptOf } from "../../../../src/guest/windows/powershell.ts";
import {
  listServicesScript,
  parseServices,
  serviceActionScript,
  validateServiceName,
} from "../../../../src/guest/windows/services.ts";
import { payloadScript } from "../../../helpers/powershell.ts";

const SELECT =
  "Select-Object -Property Name, DisplayName, @{ Name = 'Status'; Expression = { \"$($_.Status)\" } }, @{ Name = 'StartType'; Expression = { \"$($_.StartType)\" } }";

describe("service scripts", () => {
  it("lists every service with its enums as names, always as a JSON list", () => {
    expect(scriptOf(powershellExec(listServicesScript()))).toBe(
      `$services = @(Get-Service | ${SELECT})\nConvertTo-Json -InputObject $services -Depth 2 -Compress`,
    );
  });

  it("starts, stops and restarts one service by its literal name, then prints it", () => {
    const tail = `\nConvertTo-Json -InputObject $services -Depth 2 -Compress`;
    expect(payloadScript(serviceActionScript("Spooler", "start"))).toBe(
      `Start-Service -Name 'Spooler'\n$services = @(Get-Service -Name 'Spooler' | ${SELECT})${tail}`,
    );
    expect(payloadScript(serviceActionScript("MSSQL$SQLEXPRESS", "stop"))).toBe(
      `Stop-Service -Name 'MSSQL$SQLEXPRESS'\n$services = @(Get-Service -Name 'MSSQL$SQLEXPRESS' | ${SELECT})${tail}`,
    );
    expect(payloadScript(serviceActionScript("LanmanServer", "restart", { force: true }))).toBe(
      `Restart-Service -Name 'LanmanServer' -Force\n$services = @(Get-Service -Name 'LanmanServer' | ${SELECT})${tail}`,
    );
    expect(payloadScript(serviceActionScript("Spooler", "start", { force: true }))).toMatch(
      /^Start-Service -Name 'Spooler'\n/,
    );
  });

  it("refuses names that are not service names, wildcards above all", () => {
    for (const name of ["", "*", "Win?", "[ab]", "a\\b", "a/b", "a\nb", "x".repeat(257)]) {
      expect(() => validateServiceName(name), JSON.stringify(name)).toThrow(
        expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
      );
      expect(() => serviceActionScript(name, "stop")).toThrow(/is not a Windows service name/);
    }
    for (const name of ["wuauserv", "MSSQL$SQLEXPRESS", "Some Service", "it's", "x".repeat(256)]) {
      expect(() => validateServiceName(name)).not.toThrow();
    }
  });
});

describe("parseServices", () => {
  it("reads a list into camelCase fields with the enums as text", () => {
    const stdout =
      '[{"Name":"AppIDSvc","DisplayName":"Application Identity","Status":"Stopped","StartType":"Manual"},' +
      '{"Name":"Appinfo","DisplayName":"Application Information","Status":"Running","StartType":"Manual"},' +
      '{"Name":"Spooler","DisplayName":"Print Spooler","Status":"StartPending","StartType":"Automatic"},' +
      '{"Name":"RemoteRegistry","DisplayName":"Remote Registry","Status":"Stopped","StartType":"Disabled"}]\r\n';
    expect(parseServices(stdout)).toEqual([
      {
        name: "AppIDSvc",
        displayName: "Application Identity",
        status: "Stopped",
        startType: "Manual",
      },
      {
        name: "Appinfo",
        displayName: "Application Information",
        status: "Running",
        startType: "Manual",
      },
      {
        name: "Spooler",
        displayName: "Print Spooler",
        status: "StartPending",
        startType: "Automatic",
      },
      {
        name: "RemoteRegistry",
        displayName: "Remote Registry",
        status: "Stopped",
        startType: "Disabled",
      },
    ]);
  });

  it("reads one service printed as a lone object, and enums printed as numbers", () => {
    // ConvertTo-Json's default for enums: ServiceControllerStatus.Running = 4,
    // ServiceStartMode.Automatic = 2.
    expect(
      parseServices('{"Name":"Spooler","DisplayName":"Print Spooler","Status":4,"StartType":2}'),
    ).toEqual([
      { name: "Spooler", displayName: "Print Spooler", status: "Running", startType: "Automatic" },
    ]);
    expect(parseServices("")).toEqual([]);
  });

  it("refuses a status it does not know, naming the field", () => {
    expect(() =>
      parseServices('[{"Name":"x","DisplayName":"x","Status":"Sleeping","StartType":"Manual"}]'),
    ).toThrow(
      expect.objectContaining({
        code: "CORRAL_GUEST_OUTPUT_INVALID",
        message: expect.stringContaining("Status"),
      }),
    );
    expect(() => parseServices('[{"DisplayName":"x"}]')).toThrow(/field Name should be a string/);
  });
});
