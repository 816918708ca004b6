// corral serve's bridged networks, measured inside a network namespace made for the run (the
// host's interfaces, routes and firewall are never touched): VM-to-VM throughput on one bridge
// against the same transfer over a `corral test` vde VLAN, host-to-VM through a port forward
// against QEMU's user-mode hostfwd, the time to create a network, and what a NIC and a port
// forward add to a VM's create. The work is network-child.ts's, run with `ip netns exec`.

import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { log, results } from "./measure.ts";

const CHILD = fileURLToPath(new URL("./network-child.ts", import.meta.url));

export async function benchNetwork(): Promise<void> {
  const netns = `corral-bench-${randomBytes(4).toString("hex")}`;
  spawnSync("ip", ["netns", "add", netns], { stdio: "inherit" });
  try {
    spawnSync("ip", ["netns", "exec", netns, "ip", "link", "set", "lo", "up"]);
    log(`in network namespace ${netns}...`);
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, CHILD], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    if (code !== 0) throw new Error(`the network benchmark exited with ${code}`);
    Object.assign(results, JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}"));
  } finally {
    // Whatever the child left running in the namespace (nothing, unless it failed) goes with it.
    const pids = spawnSync("ip", ["netns", "pids", netns], { encoding: "utf8" }).stdout;
    for (const pid of pids.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // already gone
      }
    }
    spawnSync("ip", ["netns", "delete", netns]);
  }
}
