// `corral image prepare-windows` as a user runs it (the built CLI): media from stand-in ISOs, the
// password never printed, flag conflicts and bad input as usage errors.

import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, temporaryDir } from "../../helpers/cli.ts";

function stubIsos(dir: string): { windows: string; virtio: string } {
  const files = {
    windows: { "sources/install.wim": "wim", "efi/boot.img": "\0".repeat(65_536) },
    virtio: { "guest-agent/qemu-ga-x86_64.msi": "msi", "viostor/w11/amd64/viostor.inf": "inf" },
  };
  const isos = { windows: join(dir, "windows.iso"), virtio: join(dir, "virtio-win.iso") };
  for (const name of ["windows", "virtio"] as const) {
    const tree = join(dir, name);
    for (const [path, content] of Object.entries(files[name])) {
      mkdirSync(join(tree, path, ".."), { recursive: true });
      writeFileSync(join(tree, path), content);
    }
    const boot = name === "windows" ? ["-e", "efi/boot.img", "-no-emul-boot"] : [];
    const args = ["-as", "mkisofs", "-quiet", "-o", isos[name], "-J", "-R", ...boot, tree];
    execFileSync("xorriso", args, { stdio: "pipe" });
  }
  return isos;
}

describe("corral image prepare-windows", () => {
  it("writes the media and says what to attach, without printing the password", async () => {
    const dir = temporaryDir("corral-prepare-windows-");
    const { windows, virtio } = stubIsos(dir);
    const passwordFile = join(dir, "password");
    writeFileSync(passwordFile, "Hidden-Pass-42\n");
    const out = join(dir, "media");
    const result = await runCli([
      "image",
      "prepare-windows",
      "--iso",
      windows,
      "--virtio-win",
      virtio,
      "--out",
      out,
      "--disk-gib",
      "33",
      "--admin-password-file",
      passwordFile,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`setup ISO   ${join(out, "windows-setup.iso")}`);
    expect(result.stdout).toContain("(33 GiB, blank qcow2)");
    expect(result.stdout).toContain(`{"path":"${windows}","media":"cdrom","readOnly":true}`);
    expect(result.stdout + result.stderr).not.toContain("Hidden-Pass-42");
    expect(readdirSync(out).sort()).toEqual(["windows-disk.qcow2", "windows-setup.iso"]);
  });

  it("refuses both password flags at once, and bad input with exit status 2", async () => {
    const both = await runCli([
      "image",
      "prepare-windows",
      "--iso",
      "a.iso",
      "--virtio-win",
      "b.iso",
      "--admin-password",
      "x",
      "--admin-password-file",
      "f",
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot be used with option '--admin-password-file/);
    const missing = await runCli([
      "image",
      "prepare-windows",
      "--iso",
      "/nope.iso",
      "--virtio-win",
      "/nope2.iso",
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--iso /nope.iso: no such file");
  });
});
