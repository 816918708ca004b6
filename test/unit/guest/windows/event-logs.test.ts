// Windows event logs: the exact Get-WinEvent scripts, and their output parsed. Outputs are
// hand-written in the shape of EventLogRecord (LogName, Level, ProviderName, Id, RecordId,
// TimeCreated, Message), with events Microsoft documents: Service Control Manager 7036,
// EventLog 6008, Kernel-Power 41. Level numbers from "Creating Get-WinEvent queries with
// FilterHashtable" (https://learn.microsoft.com/en-us/powershell/scripting/samples/creating-get-winevent-queries-with-filterhashtable).
// Not verified on a real Windows guest.

import { describe, expect, it } from "vitest";
import {
  eventLogScript,
  levelName,
  parseEventLog,
} from "../../../../src/guest/windows/event-logs.ts";
import { payloadScript } from "../../../helpers/powershell.ts";

const SELECT =
  "Select-Object -Property LogName, @{ Name = 'Level'; Expression = { [int]$_.Level } }, ProviderName, Id, RecordId, @{ Name = 'TimeCreated'; Expression = { if ($_.TimeCreated) { $_.TimeCreated.ToUniversalTime().ToString('o') } } }, Message";

function script(logs: string, filter: string, maxEvents: number): string {
  return [
    `$events = foreach ($log in @(${logs})) {`,
    "  try {",
    `    Get-WinEvent -FilterHashtable @{ ${filter} } -MaxEvents ${maxEvents}`,
    "  } catch {",
    "    if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { throw }",
    "  }",
    "}",
    `$rows = @($events | Sort-Object -Property TimeCreated -Descending | Select-Object -First ${maxEvents} | ${SELECT})`,
    "ConvertTo-Json -InputObject $rows -Depth 2 -Compress",
  ].join("\n");
}

describe("eventLogScript", () => {
  it("reads System and Application, the newest 100, by default", () => {
    expect(payloadScript(eventLogScript())).toBe(
      script("'System', 'Application'", "LogName = $log", 100),
    );
  });

  it("filters by start time (UTC ms), level numbers and provider", () => {
    const query = {
      logNames: ["System"],
      since: new Date("2024-05-01T12:00:00.000Z"),
      levels: ["Critical", "Error", "Information"] as const,
      provider: "Service Control Manager",
      maxEvents: 20,
    };
    expect(payloadScript(eventLogScript(query))).toBe(
      script(
        "'System'",
        "LogName = $log; StartTime = [DateTimeOffset]::FromUnixTimeMilliseconds(1714564800000).UtcDateTime; Level = @(1, 2, 0, 4); ProviderName = 'Service Control Manager'",
        20,
      ),
    );
  });

  it("quotes log names literally", () => {
    expect(
      payloadScript(
        eventLogScript({ logNames: ["Microsoft-Windows-PowerShell/Operational", "it's"] }),
      ),
    ).toBe(script("'Microsoft-Windows-PowerShell/Operational', 'it''s'", "LogName = $log", 100));
  });

  it("refuses a bad query", () => {
    for (const query of [
      { logNames: [] },
      { maxEvents: 0 },
      { maxEvents: 10_001 },
      { maxEvents: 1.5 },
      { since: new Date("not a date") },
      { levels: ["Debug" as "Verbose"] },
    ]) {
      expect(() => eventLogScript(query), JSON.stringify(query)).toThrow(
        expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
      );
    }
  });
});

describe("parseEventLog", () => {
  it("reads events with levels as text and times as ISO 8601 UTC", () => {
    const stdout = JSON.stringify([
      {
        LogName: "System",
        Level: 4,
        ProviderName: "Service Control Manager",
        Id: 7036,
        RecordId: 48213,
        TimeCreated: "2024-05-01T12:00:03.4567891Z",
        Message: "The Windows Update service entered the stopped state.",
      },
      {
        LogName: "System",
        Level: 2,
        ProviderName: "EventLog",
        Id: 6008,
        RecordId: 48001,
        TimeCreated: "2024-05-01T11:58:00.0000000Z",
        Message: "The previous system shutdown at 11:50:12 on 01/05/2024 was unexpected.",
      },
      {
        LogName: "System",
        Level: 1,
        ProviderName: "Microsoft-Windows-Kernel-Power",
        Id: 41,
        RecordId: 48000,
        TimeCreated: "\\/Date(1714564620000)\\/",
        Message: null,
      },
      // Windows PowerShell 5.1 writes a DateTime as "\/Date(ms)\/": undo JSON.stringify's "\\/".
    ]).replaceAll("\\\\/", "\\/");
    expect(parseEventLog(stdout)).toEqual([
      {
        logName: "System",
        level: "Information",
        levelValue: 4,
        provider: "Service Control Manager",
        id: 7036,
        recordId: 48213,
        time: "2024-05-01T12:00:03.456Z",
        message: "The Windows Update service entered the stopped state.",
      },
      {
        logName: "System",
        level: "Error",
        levelValue: 2,
        provider: "EventLog",
        id: 6008,
        recordId: 48001,
        time: "2024-05-01T11:58:00.000Z",
        message: "The previous system shutdown at 11:50:12 on 01/05/2024 was unexpected.",
      },
      {
        logName: "System",
        level: "Critical",
        levelValue: 1,
        provider: "Microsoft-Windows-Kernel-Power",
        id: 41,
        recordId: 48000,
        time: "2024-05-01T11:57:00.000Z",
        message: null,
      },
    ]);
  });

  it("reads one event printed alone, and no events", () => {
    const one =
      '{"LogName":"Application","Level":3,"ProviderName":"Microsoft-Windows-WMI","Id":63,"RecordId":7,"TimeCreated":"2024-05-01T12:00:00.0000000Z","Message":"A provider has been registered."}';
    expect(parseEventLog(one)).toMatchObject([
      { level: "Warning", id: 63, logName: "Application" },
    ]);
    expect(parseEventLog("")).toEqual([]);
  });

  it("names LogAlways (0) Information, as Event Viewer does, and providers' own levels Verbose", () => {
    expect([0, 1, 2, 3, 4, 5, 16].map(levelName)).toEqual([
      "Information",
      "Critical",
      "Error",
      "Warning",
      "Information",
      "Verbose",
      "Verbose",
    ]);
  });
});
