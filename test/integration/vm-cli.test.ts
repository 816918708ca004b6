// `corral vm …` on a real VM, as a user runs it: the built CLI against `corral serve` in a
// temporary folder. create (it boots) → pause → resume → stats → snapshot → clone (left at rest)
// → restore → stop → rm, with `corral vm events` following it all; nothing left afterwards.

import { describe, expect, it } from "vitest";
import { collect, startCli } from "../helpers/cli.ts";
import { startCliDaemon } from "../helpers/cli-daemon.ts";
import { qemuPidsUnder } from "../helpers/manager.ts";

describe("corral vm on a real VM", () => {
  it("drives one VM through its lifecycle and a snapshot, the events stream seeing it", async () => {
    const daemon = await startCliDaemon();
    const cli = async (...args: string[]) => {
      const result = await daemon.cli(args);
      expect(result.stderr, args.join(" ")).toBe("");
      expect(result.code, args.join(" ")).toBe(0);
      return result.stdout;
    };
    const events = startCli(["vm", "events", "--json"], daemon.env);
    const followed = collect(events);
    // The stream is open once its first byte is in: the daemon writes a comment at once, which
    // the CLI does not print; give it a moment to connect before anything happens.
    await new Promise((resolve) => setTimeout(resolve, 1500));

    expect(await cli("vm", "create", "web", "--label", "env=test")).toMatch(
      /^created web [0-9A-Z]{26}: running\n$/,
    );
    expect(await cli("vm", "pause", "web")).toBe("web: paused\n");
    expect(await cli("vm", "resume", "web")).toBe("web: running\n");
    const stats = JSON.parse(await cli("vm", "stats", "web", "--json"));
    expect(stats).toMatchObject({ state: "running", vmm: { pid: expect.any(Number) } });
    expect(await cli("vm", "stats", "web")).toMatch(/^vmm pid: +\d+$/m);

    const snapshot = JSON.parse(await cli("vm", "snapshot", "web", "--name", "s1", "--json"));
    expect(snapshot).toMatchObject({ name: "s1", vmName: "web" });
    expect(await cli("vm", "snapshots", "--vm", "web")).toMatch(
      new RegExp(`^${snapshot.id} +s1 +web +linux `, "m"),
    );
    expect(await cli("vm", "clone", snapshot.id, "web-2", "--no-start")).toMatch(
      /^created web-2 [0-9A-Z]{26}: created\n$/,
    );
    expect(await cli("vm", "restore", snapshot.id)).toBe(
      `web: running (restored from ${snapshot.id})\n`,
    );
    expect(await cli("vm", "stop", "web", "--force")).toBe("web: stopped\n");
    expect(await cli("vm", "rm", "web-2")).toBe("removed web-2\n");
    expect(await cli("vm", "rm", "web")).toBe("removed web\n");
    expect(await cli("vm", "snapshots", "rm", snapshot.id)).toBe(
      `removed snapshot ${snapshot.id}\n`,
    );
    expect(await cli("vm", "ls")).toBe("no VMs\n");

    events.kill("SIGINT");
    const { code, stdout } = await followed;
    expect(code).toBe(0);
    const seen = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string; data: { to?: string } });
    const states = seen.filter((e) => e.type === "vm.state").map((e) => e.data.to);
    expect(states).toEqual(expect.arrayContaining(["running", "paused", "stopped"]));
    expect(seen.map((e) => e.type)).toEqual(expect.arrayContaining(["vm.deleted"]));
    expect(qemuPidsUnder(daemon.stateDir)).toEqual([]);
  });
});
