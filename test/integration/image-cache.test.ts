// The image cache through the CLI: cached builds, corruption found by verify and repaired by
// build, and an interrupted build that leaves nothing half-written.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findImage } from "../../src/images/image-cache.ts";
import { collect, processesMentioning, runCli, startCli, temporaryDir } from "../helpers/cli.ts";

/** A private cache holding a copy of the built default image. */
async function cacheWithCopyOfDefaultImage(): Promise<{ cacheHome: string; entry: string }> {
  const image = await findImage("debian-12");
  const cacheHome = temporaryDir("corral-test-cache-");
  const entry = join(cacheHome, "corral/images", image.manifest.id);
  spawnSync("mkdir", ["-p", join(cacheHome, "corral/images")]);
  const copy = spawnSync("cp", ["-a", "--reflink=auto", image.dir, entry]);
  expect(copy.status).toBe(0);
  return { cacheHome, entry };
}

describe("corral image", () => {
  it("reuses a verified build", async () => {
    const result = await runCli(["image", "build"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^debian-12-[0-9a-f]{12} \S+ \(cached, verified in [\d.]+ s\)\n$/,
    );
  });

  it("lists the built image and verifies it", async () => {
    const list = await runCli(["image", "list", "--json"]);
    const images = JSON.parse(list.stdout) as {
      manifest: { id: string; recipe: string };
      isCurrent: boolean;
    }[];
    expect(images.some((image) => image.manifest.recipe === "debian-12" && image.isCurrent)).toBe(
      true,
    );
    const verify = await runCli(["image", "verify", "debian-12"]);
    expect(verify.stdout).toMatch(/^debian-12-[0-9a-f]{12}: ok\n$/);
    expect(verify.code).toBe(0);
  });

  it("detects a corrupted artifact with verify and rebuilds it with build", async () => {
    const { cacheHome, entry } = await cacheWithCopyOfDefaultImage();
    const env = { XDG_CACHE_HOME: cacheHome };
    const initrd = join(entry, "initrd");
    const bytes = readFileSync(initrd);
    bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
    writeFileSync(initrd, bytes);

    const verify = await runCli(["image", "verify"], env);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/: initrd: sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}\n/);
    expect(verify.stdout).toContain("CORRUPT; `corral image build debian-12` rebuilds it");

    const build = await runCli(["image", "build"], env);
    expect(build.code).toBe(0);
    expect(build.stderr).toContain("rebuilt because: initrd: sha256");
    expect(build.stdout).toContain("built in");
    const again = await runCli(["image", "verify"], env);
    expect(again.stdout).toMatch(/: ok\n$/);
    expect(
      readdirSync(join(cacheHome, "corral/images")).filter((name) => name.startsWith(".")),
    ).toEqual([]);
  });

  it("on Ctrl-C during a build stops mmdebstrap and leaves no partial entry", async () => {
    const cacheHome = temporaryDir("corral-test-cache-");
    const child = startCli(["image", "build"], { XDG_CACHE_HOME: cacheHome });
    const done = collect(child);
    await new Promise<void>((resolve) => {
      child.stderr?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("extracting archives")) resolve();
      });
    });
    expect(processesMentioning(cacheHome).length).toBeGreaterThan(0);
    child.kill("SIGINT");
    const result = await done;
    expect(result.code).toBe(130);
    expect(processesMentioning(cacheHome)).toEqual([]);
    expect(readFileSync("/proc/self/mounts", "utf8")).not.toContain(cacheHome);
    const imagesDir = join(cacheHome, "corral/images");
    expect(existsSync(imagesDir) ? readdirSync(imagesDir) : []).toEqual([]);
  });

  it.each([
    ["300", 'expected a VLAN number from 0 to 255, got "300"'],
    ["x", 'expected a VLAN number from 0 to 255, got "x"'],
  ])("scripts --vlans %s is refused with exit 2, saying why", async (vlan, message) => {
    const out = temporaryDir("corral-test-scripts-");
    const result = await runCli(["image", "scripts", "a", "--out", out, "--vlans", "1", vlan]);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(2);
    expect(readdirSync(out)).toEqual([]);
  });

  it("rejects an unknown recipe, listing the known ones", async () => {
    const result = await runCli(["image", "build", "arch-linux"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'corral: unknown image recipe "arch-linux"; known recipes: debian-12, debian-12-cloud, debian-12-full\n',
    );
  });
});
