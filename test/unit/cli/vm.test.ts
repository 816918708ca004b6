// `corral vm …` as a user runs it, on VMs that are never started: the built CLI against a real
// `corral serve` on a temporary socket. Creating, listing (tables, --json, filters), showing,
// resizing at rest, waiting, the event stream until Ctrl-C, removing; the daemon's refusals with
// their code and exit status 1, usage errors with 2.

import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { collect, startCli } from "../../helpers/cli.ts";
import { startCliDaemon } from "../../helpers/cli-daemon.ts";

describe("corral vm (VMs at rest)", () => {
  it("creates, lists, shows, resizes, waits for and removes VMs", async () => {
    const daemon = await startCliDaemon();
    const created = await daemon.cli([
      "vm",
      "create",
      "web",
      "--no-start",
      "--label",
      "env=dev",
      "--label",
      "team=a",
      "--memory",
      "768",
    ]);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toMatch(/^created web [0-9A-Z]{26}: created\n$/);
    const other = await daemon.cli(["vm", "create", "db", "--no-start", "--json"]);
    expect(JSON.parse(other.stdout)).toMatchObject({ name: "db", state: "created" });

    const table = await daemon.cli(["vm", "ls"]);
    expect(table.stdout.split("\n")[0]).toMatch(
      /^NAME +STATE +OS +CPUS +MEMORY +DISK +TEMPLATE +LABELS +ID$/,
    );
    expect(table.stdout).toMatch(
      /^web +created +linux +1 +768 MiB +8 GiB +linux-default +env=dev,team=a +[0-9A-Z]{26}$/m,
    );
    const byLabel = await daemon.cli(["vm", "ls", "--label", "env=dev", "--json"]);
    expect(JSON.parse(byLabel.stdout).map((vm: { name: string }) => vm.name)).toEqual(["web"]);
    expect((await daemon.cli(["vm", "ls", "--state", "running"])).stdout).toBe("no VMs\n");

    const show = await daemon.cli(["vm", "show", "web"]);
    expect(show.stdout).toMatch(/^name: +web$/m);
    expect(show.stdout).toMatch(/^memory: +768 MiB \(max 4096 MiB\)$/m);
    expect(show.stdout).toMatch(/^labels: +env=dev,team=a$/m);

    expect(await daemon.cli(["vm", "resize", "web", "--cpus", "2"])).toMatchObject({
      code: 0,
      stdout: "web: created\n",
    });
    const resized = JSON.parse((await daemon.cli(["vm", "show", "web", "--json"])).stdout);
    expect(resized.spec).toMatchObject({ cpus: 2, memoryMiB: 768 });

    expect(await daemon.cli(["vm", "wait", "web", "--state", "created"])).toMatchObject({
      code: 0,
      stdout: "web: created\n",
    });
    expect(await daemon.cli(["vm", "rm", "db"])).toMatchObject({ code: 0, stdout: "removed db\n" });
    expect(await daemon.cli(["vm", "show", "db"])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^corral: .*"db".* \[CORRAL_NOT_FOUND\]\n$/),
    });
  });

  it("prints the daemon's refusals with their code (exit 1), usage errors exit 2", async () => {
    const daemon = await startCliDaemon();
    await daemon.cli(["vm", "create", "web", "--no-start"]);
    expect(await daemon.cli(["vm", "create", "web", "--no-start"])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/\[CORRAL_CONFLICT\]\n$/),
    });
    expect(await daemon.cli(["vm", "create", "Web_1", "--no-start"])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        /^corral: body\/name must match pattern .*\[CORRAL_INVALID_ARGUMENT\]\n$/,
      ),
    });
    expect(await daemon.cli(["vm", "pause", "web"])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/created.*\[CORRAL_CONFLICT\]\n$/),
    });
    expect(
      await daemon.cli(["vm", "wait", "web", "--state", "running", "--timeout", "200"]),
    ).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/\[CORRAL_TIMEOUT\]\n$/),
    });
    expect((await daemon.cli(["vm", "create", "x", "--cpus", "two"])).code).toBe(2);
    expect((await daemon.cli(["vm", "resize", "web"])).stderr).toBe(
      "corral: vm resize: give the new size with --cpus, --memory and/or --disk\n",
    );
    expect((await daemon.cli(["vm", "ls", "--label", "novalue"])).code).toBe(2);
  });

  it("without networks: VMs get none, network commands say why (503), ports are user-mode", async () => {
    const daemon = await startCliDaemon(["--networks", "off"]);
    const plain = JSON.parse(
      (await daemon.cli(["vm", "create", "web", "--no-start", "--json"])).stdout,
    );
    expect(plain).toMatchObject({ spec: { networks: [] }, nics: [] });
    expect(
      await daemon.cli(["vm", "create", "db", "--no-start", "--network", "corral0"]),
    ).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--networks off.*\[CORRAL_NETWORK_UNAVAILABLE\]\n$/),
    });
    for (const args of [
      ["network", "ls"],
      ["network", "create", "lab"],
    ]) {
      expect(await daemon.cli(args), args.join(" ")).toMatchObject({
        code: 1,
        stderr: expect.stringContaining("[CORRAL_NETWORK_UNAVAILABLE]"),
      });
    }
    const port = await freePort();
    expect(
      await daemon.cli(["vm", "port", "add", "web", String(port), "80", "--address", "127.0.0.1"]),
    ).toMatchObject({
      code: 0,
      stdout: `forwarding tcp 127.0.0.1:${port} → web 10.0.2.15:80\n`,
    });
    expect((await daemon.cli(["vm", "port", "ls", "web"])).stdout).toMatch(
      new RegExp(`tcp\\s+127\\.0\\.0\\.1:${port}\\s+10\\.0\\.2\\.15:80\\s+user\\s+-\\n`),
    );
    expect(await daemon.cli(["vm", "port", "rm", "web", String(port)])).toMatchObject({
      code: 0,
      stdout: `stopped forwarding tcp 127.0.0.1:${port} → web 10.0.2.15:80\n`,
    });
    expect((await daemon.cli(["vm", "port", "rm", "web", String(port)])).stderr).toContain(
      "[CORRAL_NOT_FOUND]",
    );
    expect((await daemon.cli(["vm", "port", "add", "web", "70000"])).code).toBe(2);
    expect((await daemon.cli(["vm", "port", "add", "web", "80", "--protocol", "sctp"])).code).toBe(
      2,
    );
    const stats = JSON.parse((await daemon.cli(["vm", "stats", "web", "--json"])).stdout);
    expect(stats.nics).toEqual([]);
  });

  it("follows the event stream until Ctrl-C, replaying with --after", async () => {
    const daemon = await startCliDaemon();
    const events = startCli(["vm", "events", "--json"], daemon.env);
    const result = collect(events);
    let seen = "";
    events.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
    });
    // The stream is open once the daemon has a subscriber; create until an event arrives.
    for (let i = 0; seen === "" && i < 100; i++) {
      await daemon.cli(["vm", "create", `vm${i}`, "--no-start"]);
    }
    expect(seen).not.toBe("");
    events.kill("SIGINT");
    await once(events, "exit");
    const { code, stdout } = await result;
    expect(code).toBe(0);
    const first = JSON.parse(stdout.split("\n")[0] ?? "");
    expect(first).toMatchObject({ id: expect.any(Number), type: expect.stringMatching(/^vm\./) });

    const replay = startCli(["vm", "events", "--after", "0", "--vm", "vm0"], daemon.env);
    const replayed = collect(replay);
    let lines = "";
    replay.stdout?.on("data", (chunk: Buffer) => {
      lines += chunk.toString();
    });
    while (!lines.includes("\n")) await new Promise((resolve) => setTimeout(resolve, 50));
    replay.kill("SIGINT");
    const human = await replayed;
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+ {2}vm\.\S+ {2}[0-9A-Z]{26} {2}\{.*\}$/m);
  });
});

/** A TCP port of 127.0.0.1 that nothing listens on (as of now). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
