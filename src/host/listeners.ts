// Whether something on the host already listens on a port (a TCP listener or a bound UDP socket),
// asked with `ss` so that the answer is the namespace's the networks live in.

import type { HostPort } from "../network/port-forward.ts";
import { type NetScope, runScoped } from "./net-scope.ts";

const ANY = new Set(["0.0.0.0", "::", "*"]);

/**
 * The local address ("127.0.0.1:8080", "[::]:8080") of a socket that would take the packets of
 * a forward at `port`, or undefined when there is none: one on the same port and protocol whose
 * address is the same, or either is a wildcard.
 */
export async function findListener(
  port: HostPort,
  scope: NetScope = {},
): Promise<string | undefined> {
  const { stdout } = await runScoped(scope, "ss", [
    "-H",
    "-l",
    "-n",
    port.protocol === "tcp" ? "-t" : "-u",
    `sport = :${port.hostPort}`,
  ]);
  for (const line of stdout.split("\n")) {
    const local = line.trim().split(/\s+/)[3];
    if (!local) continue;
    const address = local
      .slice(0, local.lastIndexOf(":"))
      .replace(/^\[|\]$/g, "")
      .replace(/%.*$/, "");
    const plain = address.replace(/^::ffff:/, "");
    if (ANY.has(address) || ANY.has(port.hostAddress) || plain === port.hostAddress) return local;
  }
  return undefined;
}
