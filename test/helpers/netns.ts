// Network namespaces for the networking tests: every bridge, TAP, nftables table and dnsmasq a
// test makes lives in namespaces it created, so the host's own interfaces, routes and firewall
// are never touched. Disposing one kills what runs in it and deletes it.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { runProgram } from "../../src/host/run-program.ts";

/** Whether this process can make namespaces (root with CAP_NET_ADMIN and CAP_SYS_ADMIN). */
export function canMakeNamespaces(): boolean {
  return process.getuid?.() === 0 && spawnSync("ip", ["netns", "list"]).status === 0;
}

export class Netns implements AsyncDisposable {
  readonly name: string;
  readonly #children: ChildProcess[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  /** A new namespace `corral-test-<random>` with its loopback up. */
  static async create(): Promise<Netns> {
    const name = `corral-test-${randomBytes(4).toString("hex")}`;
    await runProgram("ip", ["netns", "add", name]);
    const netns = new Netns(name);
    await netns.run("ip", ["link", "set", "lo", "up"]);
    return netns;
  }

  /** Runs `file args…` in the namespace to completion; throws when it exits non-zero. */
  async run(file: string, args: readonly string[], input?: string): Promise<string> {
    const { stdout } = await runProgram("ip", ["netns", "exec", this.name, file, ...args], {
      input,
    });
    return stdout;
  }

  /** Runs `file args…` in the namespace and returns how it ended, without throwing. */
  tryRun(file: string, args: readonly string[]): { status: number | null; output: string } {
    const result = spawnSync("ip", ["netns", "exec", this.name, file, ...args], {
      encoding: "utf8",
      timeout: 20_000,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  /** Starts `file args…` in the namespace in the background; it is killed on dispose. */
  spawn(file: string, args: readonly string[]): ChildProcess {
    const child = spawn("ip", ["netns", "exec", this.name, file, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#children.push(child);
    return child;
  }

  /** Kills everything that still runs in the namespace, then deletes it. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const child of this.#children) child.kill("SIGKILL");
    const pids = spawnSync("ip", ["netns", "pids", this.name], { encoding: "utf8" });
    for (const pid of pids.stdout.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // already gone
      }
    }
    spawnSync("ip", ["netns", "delete", this.name]);
  }
}

/**
 * A veth pair: `nameA` in `a`, `nameB` in `b` (made from inside `a`, so the host never holds it),
 * with the given addresses ("10.0.0.1/24") and MACs, both up.
 */
export async function connect(
  a: Netns,
  b: Netns,
  ends: { nameA: string; nameB: string; addressA?: string; addressB?: string; macB?: string },
): Promise<void> {
  await a.run("ip", [
    "link",
    "add",
    ends.nameA,
    "type",
    "veth",
    "peer",
    "name",
    ends.nameB,
    ...(ends.macB ? ["address", ends.macB] : []),
    "netns",
    b.name,
  ]);
  if (ends.addressA) await a.run("ip", ["address", "add", ends.addressA, "dev", ends.nameA]);
  if (ends.addressB) await b.run("ip", ["address", "add", ends.addressB, "dev", ends.nameB]);
  await a.run("ip", ["link", "set", ends.nameA, "up"]);
  await b.run("ip", ["link", "set", ends.nameB, "up"]);
}

/** Names of the namespaces that exist now. */
export function namespaces(): string[] {
  const result = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  return result.stdout
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter(Boolean);
}
