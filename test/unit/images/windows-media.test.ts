// corral image prepare-windows' media, made from stand-in ISOs built here with the real xorriso
// and checked with real tools: the setup ISO's file list (xorriso -find), the answer file inside
// it (a real XML parser), the disk's virtual size (qemu-img info). Windows Setup itself cannot run
// here: whether it installs from these media is not verified.

import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNATTEND_NAMESPACE } from "../../../src/images/autounattend.ts";
import { listIsoFiles, readIsoSignature } from "../../../src/images/iso-image.ts";
import { firstLogonScript } from "../../../src/images/windows-first-logon.ts";
import {
  generateAdminPassword,
  prepareWindowsMedia,
  readAdminPasswordFile,
  windowsIsoProblem,
} from "../../../src/images/windows-media.ts";
import { childElements, parseXmlStrict } from "../../helpers/xml.ts";

let dir: string;
let windowsIso: string;
let virtioWinIso: string;

/** An ISO of `files` (path → content), with `efiBoot` as a UEFI El Torito image when given. */
async function makeTestIso(name: string, files: Record<string, string>, efiBoot?: string) {
  const source = join(dir, `${name}-tree`);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(source, path)), { recursive: true });
    await writeFile(join(source, path), content);
  }
  const boot = efiBoot ? ["-eltorito-alt-boot", "-e", efiBoot, "-no-emul-boot"] : [];
  const iso = join(dir, `${name}.iso`);
  const args = ["-as", "mkisofs", "-quiet", "-o", iso, "-J", "-R", ...boot, source];
  execFileSync("xorriso", args, { stdio: "pipe" });
  return iso;
}

const EFI_IMAGE = "\0".repeat(64 * 1024);
const VIRTIO_FILES = {
  "guest-agent/qemu-ga-x86_64.msi": "msi",
  "virtio-win-gt-x64.msi": "msi",
  "viostor/w11/amd64/viostor.inf": "inf",
  "viostor/w10/amd64/viostor.inf": "inf",
  "viostor/2k19/amd64/viostor.inf": "inf",
  "vioscsi/2k22/amd64/vioscsi.inf": "inf",
  "NetKVM/w11/amd64/netkvm.inf": "inf",
  "vioserial/w11/amd64/vioser.inf": "inf",
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-windows-media-"));
  windowsIso = await makeTestIso(
    "windows",
    { "sources/install.wim": "wim", "efi/microsoft/boot/efisys.bin": EFI_IMAGE },
    "efi/microsoft/boot/efisys.bin",
  );
  virtioWinIso = await makeTestIso("virtio-win", VIRTIO_FILES);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("prepareWindowsMedia", () => {
  it("writes a setup ISO with the answer file and first-logon script, and a blank disk", async () => {
    const outDir = join(dir, "out");
    const media = await prepareWindowsMedia({
      windowsIso,
      virtioWinIso,
      outDir,
      diskGiB: 40,
      adminPassword: "Correct-Horse-1",
    });
    expect(media).toEqual({
      setupIso: join(outDir, "windows-setup.iso"),
      disk: join(outDir, "windows-disk.qcow2"),
      diskGiB: 40,
      windowsIso,
      virtioWinIso,
      adminUser: "corral",
      passwordFile: undefined,
      driverFolders: [
        "viostor\\w11\\amd64",
        "viostor\\w10\\amd64",
        "vioscsi\\2k22\\amd64",
        "NetKVM\\w11\\amd64",
        "vioserial\\w11\\amd64",
      ],
    });
    // Only the two media: no staging folder, no partial files.
    expect((await readdir(outDir)).sort()).toEqual(["windows-disk.qcow2", "windows-setup.iso"]);

    expect(await listIsoFiles(media.setupIso)).toEqual([
      "/autounattend.xml",
      "/corral/first-logon.ps1",
    ]);
    expect(
      execFileSync("xorriso", ["-indev", media.setupIso, "-pvd_info"], {
        stdio: "pipe",
      }).toString(),
    ).toMatch(/Volume Id\s+: CORRAL_SETUP/);
    expect((await stat(media.setupIso)).mode & 0o777).toBe(0o600);

    const extracted = join(dir, "extracted");
    execFileSync(
      "xorriso",
      ["-osirrox", "on", "-indev", media.setupIso, "-extract", "/", extracted],
      {
        stdio: "pipe",
      },
    );
    const xml = await readFile(join(extracted, "autounattend.xml"), "utf8");
    const root = parseXmlStrict(xml);
    expect(root.localName).toBe("unattend");
    expect(root.namespaceURI).toBe(UNATTEND_NAMESPACE);
    expect(xml).not.toContain("Correct-Horse-1");
    const paths = Array.from(root.getElementsByTagNameNS(UNATTEND_NAMESPACE, "Path")).map(
      (element) => element.textContent,
    );
    expect(paths).toContain("E:\\vioscsi\\2k22\\amd64");
    expect(paths).not.toContain("E:\\viostor\\2k19\\amd64");
    expect(childElements(root, UNATTEND_NAMESPACE, "settings")).toHaveLength(3);
    expect(await readFile(join(extracted, "corral", "first-logon.ps1"), "utf8")).toBe(
      firstLogonScript(),
    );

    const info = JSON.parse(
      execFileSync("qemu-img", ["info", "--output=json", media.disk]).toString(),
    ) as { format: string; "virtual-size": number };
    expect(info).toMatchObject({ format: "qcow2", "virtual-size": 40 * 2 ** 30 });
  });

  it("generates a password into a 0600 file when none is given, and refuses to overwrite media", async () => {
    const outDir = join(dir, "generated");
    const media = await prepareWindowsMedia({ windowsIso, virtioWinIso, outDir });
    expect(media.passwordFile).toBe(join(outDir, "admin-password.txt"));
    expect((await stat(media.passwordFile as string)).mode & 0o777).toBe(0o600);
    const password = await readAdminPasswordFile(media.passwordFile as string);
    expect(password).toMatch(/^[A-Za-z0-9_.+=-]{16}$/);
    const info = JSON.parse(
      execFileSync("qemu-img", ["info", "--output=json", media.disk]).toString(),
    );
    expect(info["virtual-size"]).toBe(64 * 2 ** 30);

    await expect(prepareWindowsMedia({ windowsIso, virtioWinIso, outDir })).rejects.toMatchObject({
      code: "CORRAL_CONFLICT",
      message: expect.stringContaining("--force replaces it"),
    });
    await prepareWindowsMedia({
      windowsIso,
      virtioWinIso,
      outDir,
      adminPassword: "x",
      force: true,
    });
    // Media for a password given replaced them: the old password's file went with them.
    expect((await readdir(outDir)).sort()).toEqual(["windows-disk.qcow2", "windows-setup.iso"]);
  });

  it("refuses inputs that are not the ISOs it needs, and writes nothing then", async () => {
    const plain = join(dir, "plain.iso");
    await writeFile(plain, "not an ISO");
    const noBoot = await makeTestIso("no-boot", { "sources/install.wim": "wim" });
    const noAgent = await makeTestIso("no-agent", { "viostor/w11/amd64/viostor.inf": "inf" });
    const noStorage = await makeTestIso("no-storage", {
      "guest-agent/qemu-ga-x86_64.msi": "msi",
      "NetKVM/w11/amd64/netkvm.inf": "inf",
    });
    const outDir = join(dir, "never");
    for (const [options, code, pattern] of [
      [{ windowsIso: join(dir, "missing.iso") }, "CORRAL_NOT_FOUND", /--iso .*: no such file/],
      [{ windowsIso: dir }, "CORRAL_INVALID_ARGUMENT", /is not a file/],
      [{ windowsIso: plain }, "CORRAL_INVALID_ARGUMENT", /is not an ISO image/],
      [{ windowsIso: virtioWinIso }, "CORRAL_INVALID_ARGUMENT", /not Windows installation media/],
      [{ windowsIso: noBoot }, "CORRAL_INVALID_ARGUMENT", /no UEFI boot image/],
      [{ virtioWinIso: windowsIso }, "CORRAL_INVALID_ARGUMENT", /not a virtio-win ISO/],
      [{ virtioWinIso: noAgent }, "CORRAL_INVALID_ARGUMENT", /qemu-ga-x86_64\.msi/],
      [{ virtioWinIso: noStorage }, "CORRAL_INVALID_ARGUMENT", /no viostor or vioscsi/],
      [{ diskGiB: 31 }, "CORRAL_INVALID_ARGUMENT", /--disk-gib must be/],
      [{ adminUser: "Guest" }, "CORRAL_INVALID_ARGUMENT", /admin user/],
    ] as const) {
      const request = { windowsIso, virtioWinIso, outDir, adminPassword: "pw" };
      await expect(
        prepareWindowsMedia({ ...request, ...options }),
        JSON.stringify(options),
      ).rejects.toMatchObject({ code, message: expect.stringMatching(pattern) });
    }
    await expect(stat(outDir)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("windowsIsoProblem", () => {
  it("takes a UDF image without a listed install image (Microsoft's media), if it boots with UEFI", () => {
    expect(
      windowsIsoProblem({ files: ["/README.TXT"], hasUdf: true, bootPlatforms: ["BIOS", "UEFI"] }),
    ).toBeUndefined();
    expect(
      windowsIsoProblem({ files: ["/README.TXT"], hasUdf: false, bootPlatforms: ["UEFI"] }),
    ).toMatch(/not Windows installation media/);
    expect(
      windowsIsoProblem({
        files: ["/sources/install.esd"],
        hasUdf: false,
        bootPlatforms: ["BIOS"],
      }),
    ).toMatch(/no UEFI boot image/);
  });
});

describe("readIsoSignature", () => {
  it("finds ISO 9660's CD001 and UDF's NSR02 where ECMA-119 and ECMA-167 put them", async () => {
    const file = join(dir, "bridge.img");
    const image = Buffer.alloc(24 * 2048);
    for (const [sector, id] of [
      [16, "CD001"],
      [17, "BEA01"],
      [18, "NSR02"],
      [19, "TEA01"],
    ] as const) {
      image.write(id, sector * 2048 + 1, "latin1");
    }
    await writeFile(file, image);
    expect(await readIsoSignature(file)).toEqual({ isIso: true, hasUdf: true });
    expect(await readIsoSignature(windowsIso)).toEqual({ isIso: true, hasUdf: false });
    await writeFile(file, "short");
    expect(await readIsoSignature(file)).toEqual({ isIso: false, hasUdf: false });
  });
});

describe("generateAdminPassword", () => {
  it("has upper and lower case letters, a digit and a symbol, 16 characters", () => {
    for (let i = 0; i < 50; i++) {
      const password = generateAdminPassword();
      expect(password).toHaveLength(16);
      for (const set of [/[A-Z]/, /[a-z]/, /[0-9]/, /[-_.+=]/]) expect(password).toMatch(set);
    }
  });
});

describe("readAdminPasswordFile", () => {
  it("reads the first line, without its line end, and refuses an empty one", async () => {
    const file = join(dir, "pw.txt");
    await writeFile(file, "s3cret pass\r\nsecond line\n");
    expect(await readAdminPasswordFile(file)).toBe("s3cret pass");
    await writeFile(file, "\nx");
    await expect(readAdminPasswordFile(file)).rejects.toMatchObject({
      code: "CORRAL_INVALID_ARGUMENT",
    });
    await expect(readAdminPasswordFile(join(dir, "nope"))).rejects.toMatchObject({
      code: "CORRAL_NOT_FOUND",
    });
  });
});

describe("firstLogonScript", () => {
  it("is ASCII with CRLF line ends, installs qemu-ga and sets its service to start automatically", () => {
    const script = firstLogonScript();
    expect(script).toMatch(/^[\x20-\x7e\r\n]+$/);
    expect(script.replaceAll("\r\n", "")).not.toMatch(/[\r\n]/);
    expect(script).toContain("guest-agent\\qemu-ga-x86_64.msi");
    expect(script).toContain("Set-Service -Name 'QEMU-GA' -StartupType Automatic\r\n");
    expect(script).toContain("Start-Service -Name 'QEMU-GA'\r\n");
    expect(script).toContain("'/qn', '/norestart'");
  });
});
