// corral's nftables table on the host: replaced whole in one `nft -f` transaction, its named
// counters read back, deleted on cleanup. Only `table inet corral` is ever named; nothing here
// lists, flushes or edits another table.

import { renderDeleteTable, TABLE_FAMILY, TABLE_NAME } from "../network/nft-ruleset.ts";
import { type NetScope, runScoped } from "./net-scope.ts";

/** A named counter's totals. */
export interface Counter {
  packets: number;
  bytes: number;
}

interface NftJson {
  nftables: {
    table?: { family: string; name: string };
    counter?: { name: string; table: string; family: string; packets: number; bytes: number };
  }[];
}

/**
 * Applies an `nft -f` script (renderRuleset's): all of it or, when nft refuses any of it, none.
 * Throws CORRAL_HOST_COMMAND_FAILED with nft's message.
 */
export async function applyRuleset(script: string, scope: NetScope = {}): Promise<void> {
  await runScoped(scope, "nft", ["-f", "-"], { input: script });
}

/** Deletes corral's table if it is there. */
export async function deleteCorralTable(scope: NetScope = {}): Promise<void> {
  await applyRuleset(renderDeleteTable(), scope);
}

/** Whether corral's table is there. */
export async function hasCorralTable(scope: NetScope = {}): Promise<boolean> {
  const { stdout } = await runScoped(scope, "nft", ["-j", "list", "tables", TABLE_FAMILY]);
  return (JSON.parse(stdout) as NftJson).nftables.some(
    (item) => item.table?.name === TABLE_NAME && item.table.family === TABLE_FAMILY,
  );
}

/** The named counters of corral's table, by name; empty when there is no table. */
export async function readCounters(scope: NetScope = {}): Promise<Map<string, Counter>> {
  const counters = new Map<string, Counter>();
  if (!(await hasCorralTable(scope))) return counters;
  const { stdout } = await runScoped(scope, "nft", [
    "-j",
    "list",
    "counters",
    "table",
    TABLE_FAMILY,
    TABLE_NAME,
  ]);
  for (const item of (JSON.parse(stdout) as NftJson).nftables) {
    if (item.counter?.table !== TABLE_NAME || item.counter.family !== TABLE_FAMILY) continue;
    counters.set(item.counter.name, { packets: item.counter.packets, bytes: item.counter.bytes });
  }
  return counters;
}
