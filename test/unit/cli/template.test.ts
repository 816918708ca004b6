// `corral template …` as a user runs it: the built CLI against a real `corral serve` on a
// temporary socket (and on TCP with the token), human tables and --json, a bad file refused at
// its line before the daemon is asked, the daemon's errors with their code and exit status 1.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, temporaryDir } from "../../helpers/cli.ts";
import { CLEAN_ENV, startCliDaemon } from "../../helpers/cli-daemon.ts";

const SMALL = "name: small\nos: linux\nimage: debian-12\ncpus: 1\nmemoryMiB: 256\n";

describe("corral template", () => {
  it("lists, shows, adds and removes templates", async () => {
    const daemon = await startCliDaemon();
    const list = await daemon.cli(["template", "ls"]);
    expect(list).toMatchObject({ code: 0, stderr: "" });
    expect(list.stdout.split("\n")[0]).toMatch(
      /^NAME +SOURCE +OS +MACHINE +CPUS +MEMORY +DISK +IMAGE$/,
    );
    expect(list.stdout).toMatch(
      /^linux-microvm +builtin +linux +microvm +1 +256 MiB +4 GiB +debian-12$/m,
    );
    expect(list.stdout).toMatch(
      /^windows-default +builtin +windows +q35 +2 +4096 MiB +64 GiB +\(empty disk\)$/m,
    );

    const json = await daemon.cli(["template", "ls", "--json"]);
    expect(JSON.parse(json.stdout).map((t: { name: string }) => t.name)).toEqual([
      "linux-default",
      "linux-microvm",
      "windows-default",
    ]);

    const show = await daemon.cli(["template", "show", "windows-default"]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(
      /^# built-in template, from \S+\/templates\/windows-default\.yaml\n/,
    );
    expect(show.stdout).toContain("\nfirmware: uefi\n");

    // What `show` prints, renamed, is a template `add` takes.
    const file = join(temporaryDir("corral-template-cli-"), "mine.yaml");
    writeFileSync(file, show.stdout.replace("name: windows-default", "name: mine"));
    const added = await daemon.cli(["template", "add", file]);
    expect(added).toMatchObject({
      code: 0,
      stdout: `added template mine (${join(daemon.templatesDir, "mine.yaml")})\n`,
    });
    const shownJson = JSON.parse((await daemon.cli(["template", "show", "mine", "--json"])).stdout);
    expect(shownJson).toMatchObject({ name: "mine", source: "user", template: { os: "windows" } });

    expect(await daemon.cli(["template", "rm", "mine"])).toMatchObject({
      code: 0,
      stdout: `removed template mine (${join(daemon.templatesDir, "mine.yaml")})\n`,
    });
    expect(existsSync(join(daemon.templatesDir, "mine.yaml"))).toBe(false);
  });

  it("refuses a bad file at its line without asking the daemon (exit 2)", async () => {
    const daemon = await startCliDaemon();
    const file = join(temporaryDir("corral-template-cli-"), "bad.yaml");
    writeFileSync(file, "name: bad\nos: linux\ncpus: 0\nmemoryMiB: 256\nimage: debian-12\n");
    expect(await daemon.cli(["template", "add", file])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `corral: invalid template ${file}:3:1: cpus: must be >= 1, got 0\n`,
    });
    expect(existsSync(join(daemon.templatesDir, "bad.yaml"))).toBe(false);
  });

  it("prints the daemon's refusals with their code and exits 1", async () => {
    const daemon = await startCliDaemon();
    const file = join(temporaryDir("corral-template-cli-"), "small.yaml");
    writeFileSync(file, SMALL);
    expect((await daemon.cli(["template", "add", file])).code).toBe(0);
    expect(await daemon.cli(["template", "add", file])).toMatchObject({
      code: 1,
      stderr:
        'corral: a user template named "small" already exists: remove it first to replace it [CORRAL_CONFLICT]\n',
    });
    expect(await daemon.cli(["template", "rm", "linux-default"])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        /^corral: "linux-default" is a built-in template .* \[CORRAL_CONFLICT\]\n$/,
      ),
    });
    expect(await daemon.cli(["template", "show", "nope"])).toMatchObject({
      code: 1,
      stderr:
        'corral: no template named "nope" (known: linux-default, linux-microvm, small, windows-default) [CORRAL_NOT_FOUND]\n',
    });
    expect(readFileSync(join(daemon.templatesDir, "small.yaml"), "utf8")).toContain("name: small");
  });

  it("talks TCP with --url and CORRAL_TOKEN, and says how to start a daemon when none runs", async () => {
    const port = await freePort();
    const daemon = await startCliDaemon(["--listen", `127.0.0.1:${port}`]);
    const token = readFileSync(join(daemon.stateDir, "api-token"), "utf8").trim();
    const url = `http://127.0.0.1:${port}`;
    const overTcp = await runCli(["template", "show", "linux-default", "--url", url, "--json"], {
      ...CLEAN_ENV,
      CORRAL_TOKEN: token,
    });
    expect(overTcp.code).toBe(0);
    expect(JSON.parse(overTcp.stdout)).toMatchObject({ name: "linux-default" });
    expect(
      await runCli(["template", "ls"], { ...CLEAN_ENV, CORRAL_URL: url, CORRAL_TOKEN: "wrong" }),
    ).toMatchObject({
      code: 1,
      stderr:
        "corral: wrong bearer token; `corral serve token` prints the right one [CORRAL_UNAUTHORIZED]\n",
    });

    const socket = join(temporaryDir("corral-template-cli-"), "none.sock");
    expect(await runCli(["template", "ls", "--socket", socket], CLEAN_ENV)).toMatchObject({
      code: 1,
      stdout: "",
      stderr: `corral: no corral daemon at ${socket}: start one with \`corral serve\`\n`,
    });
  });

  it("has help with an example for every command", async () => {
    for (const command of ["ls", "show", "add", "rm"]) {
      const help = await runCli(["template", command, "--help"], CLEAN_ENV);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain("Example:\n  corral template");
      expect(help.stdout, command).toContain("--socket <path>");
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
