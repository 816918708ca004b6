// What every command that talks to `corral serve` shares: the --socket / --url options, a client
// for the call, and printing the answer as JSON or as a table.

import type { Command } from "commander";
import { ApiClient, apiTarget } from "./api-client.ts";
import { formatTable } from "./table.ts";

/** The options that choose the daemon, and --json. */
export interface ApiFlags {
  socket?: string;
  url?: string;
  json?: boolean;
}

/**
 * Adds --socket and --url to `command` (and --json when `hasJson`), with a note on the
 * environment variables that set them.
 */
export function withApiOptions(command: Command, { hasJson = false } = {}): Command {
  command
    .option(
      "--socket <path>",
      "the daemon's unix socket (default $CORRAL_SOCKET, else $XDG_RUNTIME_DIR/corral/corral.sock, else /run/corral/corral.sock)",
    )
    .option(
      "--url <url>",
      "the daemon's TCP address, e.g. http://127.0.0.1:7777 (default $CORRAL_URL); the token comes from $CORRAL_TOKEN",
    );
  if (hasJson) command.option("--json", "print the API's JSON answer");
  return command;
}

/** Runs `work` with a client of the daemon that `flags` (or the environment) point at. */
export async function callApi<T>(
  flags: ApiFlags,
  work: (api: ApiClient) => Promise<T>,
): Promise<T> {
  await using api = new ApiClient(apiTarget(flags));
  return await work(api);
}

/** Prints `value` as indented JSON. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints a table, or `empty` when there are no rows. */
export function printTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  empty: string,
): void {
  process.stdout.write(rows.length === 0 ? `${empty}\n` : `${formatTable(header, rows)}\n`);
}

/** Prints `label: value` lines, the labels aligned; undefined values are left out. */
export function printFields(fields: readonly (readonly [string, string | undefined])[]): void {
  const shown = fields.filter((field): field is [string, string] => field[1] !== undefined);
  const width = Math.max(...shown.map(([label]) => label.length));
  for (const [label, value] of shown) {
    process.stdout.write(`${`${label}:`.padEnd(width + 2)}${value}\n`);
  }
}

/** A query string (`?a=1&b=2`) of the values that are set; arrays repeat their key. */
export function query(
  values: Record<string, string | number | boolean | string[] | undefined>,
): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/** A path segment for an id or a name, escaped. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** Bytes as MiB or GiB, for tables. */
export function formatSize(bytes: number): string {
  return bytes >= 2 ** 30
    ? `${(bytes / 2 ** 30).toFixed(1)} GiB`
    : `${Math.round(bytes / 2 ** 20)} MiB`;
}
