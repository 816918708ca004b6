// Windows event logs: the newest events of some logs since a time, at some levels
// (Get-WinEvent -FilterHashtable). A script for powershellExec() and a parser of its output.
// Not verified on a real Windows guest. Get-WinEvent:
// https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.diagnostics/get-winevent
// and "Creating Get-WinEvent queries with FilterHashtable"
// (https://learn.microsoft.com/en-us/powershell/scripting/samples/creating-get-winevent-queries-with-filterhashtable);
// the records are EventLogRecord (System.Diagnostics.Eventing.Reader).

import { CorralError, ErrorCodes } from "../../errors.ts";
import { jsonRow } from "./json-row.ts";
import { psQuote } from "./powershell.ts";
import { parseJsonList, parsePsDate } from "./powershell-output.ts";

/** Event levels as text; LevelDisplayName is localised, so the scripts print the number. */
export const EVENT_LEVELS = ["Critical", "Error", "Warning", "Information", "Verbose"] as const;
export type EventLevel = (typeof EVENT_LEVELS)[number];

/**
 * The level numbers that make up each level (StandardEventLevel: LogAlways 0, Critical 1,
 * Error 2, Warning 3, Informational 4, Verbose 5); Event Viewer shows LogAlways as Information.
 */
const LEVEL_NUMBERS: Record<EventLevel, readonly number[]> = {
  Critical: [1],
  Error: [2],
  Warning: [3],
  Information: [0, 4],
  Verbose: [5],
};

export interface EventLogEntry {
  logName: string;
  /** Levels above 5 are providers' own; they read `Verbose`, `levelValue` keeps the number. */
  level: EventLevel;
  levelValue: number;
  provider: string;
  /** The event id (not unique: see recordId). */
  id: number;
  /** The record's number in its log. */
  recordId: number | null;
  /** When it was logged, ISO 8601 UTC; null when the record has no time. */
  time: string | null;
  /** Its text; null when the provider's message resources are missing. */
  message: string | null;
}

export interface EventLogQuery {
  /** Logs to read (default `System` and `Application`). */
  logNames?: readonly string[];
  /** Only events logged at or after this time. */
  since?: Date;
  /** Only events at these levels (default: all). */
  levels?: readonly EventLevel[];
  /** Only events of this provider (source), e.g. `Service Control Manager`. */
  provider?: string;
  /** At most this many events, the newest (default 100, at most 10,000). */
  maxEvents?: number;
}

/** The default and largest `maxEvents`. */
export const DEFAULT_MAX_EVENTS = 100;
export const MAX_EVENTS = 10_000;

/**
 * The script that prints the newest matching events of every log named, newest first, as JSON
 * (parseEventLog reads it). No match is an empty list, not an error; a log that does not exist
 * fails the script (ObjectNotFound). Throws CORRAL_INVALID_ARGUMENT for a bad query.
 */
export function eventLogScript(query: EventLogQuery = {}): string {
  const logNames = query.logNames ?? ["System", "Application"];
  const maxEvents = query.maxEvents ?? DEFAULT_MAX_EVENTS;
  const invalid = (problem: string) =>
    new CorralError(ErrorCodes.INVALID_ARGUMENT, `event log query: ${problem}`);
  if (logNames.length === 0) throw invalid("name at least one log");
  if (!Number.isInteger(maxEvents) || maxEvents < 1 || maxEvents > MAX_EVENTS) {
    throw invalid(`maxEvents must be an integer from 1 to ${MAX_EVENTS}, not ${maxEvents}`);
  }
  const since = query.since?.getTime();
  if (since !== undefined && !Number.isFinite(since)) throw invalid("since is not a valid date");
  for (const level of query.levels ?? []) {
    if (!EVENT_LEVELS.includes(level)) {
      throw invalid(`level ${JSON.stringify(level)} is none of ${EVENT_LEVELS.join(", ")}`);
    }
  }
  const filter = [
    "LogName = $log",
    ...(since !== undefined
      ? [`StartTime = [DateTimeOffset]::FromUnixTimeMilliseconds(${since}).UtcDateTime`]
      : []),
    ...(query.levels
      ? [`Level = @(${[...new Set(query.levels.flatMap((l) => LEVEL_NUMBERS[l]))].join(", ")})`]
      : []),
    ...(query.provider !== undefined ? [`ProviderName = ${psQuote(query.provider)}`] : []),
  ];
  // One query per log, so -MaxEvents takes the newest of each; then the newest of them all.
  return [
    `$events = foreach ($log in @(${logNames.map(psQuote).join(", ")})) {`,
    "  try {",
    `    Get-WinEvent -FilterHashtable @{ ${filter.join("; ")} } -MaxEvents ${maxEvents}`,
    "  } catch {",
    "    if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { throw }",
    "  }",
    "}",
    `$rows = @($events | Sort-Object -Property TimeCreated -Descending | Select-Object -First ${maxEvents} | Select-Object -Property LogName, @{ Name = 'Level'; Expression = { [int]$_.Level } }, ProviderName, Id, RecordId, @{ Name = 'TimeCreated'; Expression = { if ($_.TimeCreated) { $_.TimeCreated.ToUniversalTime().ToString('o') } } }, Message)`,
    "ConvertTo-Json -InputObject $rows -Depth 2 -Compress",
  ].join("\n");
}

/** The events in eventLogScript's output. */
export function parseEventLog(stdout: string): EventLogEntry[] {
  const what = "Windows event log";
  return parseJsonList(stdout, what).map((item) => {
    const row = jsonRow(item, what);
    const levelValue = row.optionalNumber("Level") ?? 0;
    return {
      logName: row.string("LogName"),
      level: levelName(levelValue),
      levelValue,
      provider: row.optionalString("ProviderName") ?? "",
      id: row.number("Id"),
      recordId: row.optionalNumber("RecordId"),
      time: parsePsDate(row.value("TimeCreated"), `${what}: TimeCreated`),
      message: row.optionalString("Message"),
    };
  });
}

/** The level a number belongs to (LEVEL_NUMBERS); providers' own levels (> 5) read as Verbose. */
export function levelName(levelValue: number): EventLevel {
  for (const level of EVENT_LEVELS) {
    if (LEVEL_NUMBERS[level].includes(levelValue)) return level;
  }
  return "Verbose";
}
