// `corral image ls|import|rm` as a user runs it: the built CLI against a real `corral serve` on a
// temporary socket, importing real files made with qemu-img and xorriso; `image rm --cache`
// works on this host's image cache without a daemon.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, temporaryDir } from "../../helpers/cli.ts";
import { CLEAN_ENV, startCliDaemon } from "../../helpers/cli-daemon.ts";
import { makeImageFiles, sha256Of } from "../../helpers/image-files.ts";

describe("corral image (the daemon's images)", () => {
  it("imports files, lists them, removes one; the daemon's refusals come with their code", async () => {
    const daemon = await startCliDaemon();
    const files = makeImageFiles();
    const imported = await daemon.cli(["image", "import", files.qcow2, "--name", "base"]);
    expect(imported).toMatchObject({ code: 0, stderr: "" });
    expect(imported.stdout).toMatch(/^imported base [0-9A-Z]{26} \(qcow2, \d+ MiB\)\n$/);
    const iso = await daemon.cli([
      "image",
      "import",
      files.iso,
      "--sha256",
      sha256Of(files.iso),
      "--json",
    ]);
    expect(JSON.parse(iso.stdout)).toMatchObject({ name: "cd", format: "iso", kind: "imported" });

    const table = await daemon.cli(["image", "ls"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^NAME +ID +KIND +FORMAT +SIZE +CREATED$/);
    expect(table.stdout).toMatch(/^base +[0-9A-Z]{26} +imported +qcow2 /m);
    expect(table.stdout).toMatch(/^cd +[0-9A-Z]{26} +imported +iso /m);
    const json = JSON.parse((await daemon.cli(["image", "ls", "--json"])).stdout);
    expect(json.map((image: { name: string }) => image.name)).toEqual(["base", "cd"]);

    expect(
      await daemon.cli(["image", "import", files.raw, "--name", "raw", "--sha256", "0".repeat(64)]),
    ).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/sha256.*\[CORRAL_INVALID_ARGUMENT\]\n$/s),
    });

    expect(await daemon.cli(["image", "rm", "cd"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^removed cd [0-9A-Z]{26}\n$/),
    });
    expect(await daemon.cli(["image", "rm", "cd"])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/\[CORRAL_NOT_FOUND\]\n$/),
    });
  });

  it("rm --cache goes to this host's image cache, not to a daemon", async () => {
    const cache = temporaryDir("corral-image-cache-");
    const env = { ...CLEAN_ENV, XDG_CACHE_HOME: cache, CORRAL_SOCKET: join(cache, "none.sock") };
    expect(await runCli(["image", "rm", "--cache", "debian-12"], env)).toMatchObject({
      code: 2,
      stderr: 'corral: no built image matches "debian-12"; built images: (none)\n',
    });
    expect(await runCli(["image", "rm", "debian-12"], env)).toMatchObject({
      code: 1,
      stderr: `corral: no corral daemon at ${join(cache, "none.sock")}: start one with \`corral serve\`\n`,
    });
  });

  it("has help with an example for every daemon command, and keeps the cache commands", async () => {
    for (const command of ["ls", "import", "rm"]) {
      const help = await runCli(["image", command, "--help"], CLEAN_ENV);
      expect(help.stdout, command).toContain("corral image");
      expect(help.stdout, command).toContain("--socket <path>");
    }
    const group = await runCli(["image", "--help"], CLEAN_ENV);
    for (const command of ["build", "scripts", "list", "verify", "ls", "import", "rm"]) {
      expect(group.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
    }
  });
});
