import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import {
  aptInstallCommand,
  checkRequirements,
  NETWORK_REQUIREMENTS,
  requireHostTools,
} from "../../../src/host/requirements.ts";

const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

describe("host requirements", () => {
  it("finds what the host has", () => {
    const statuses = checkRequirements(["mkfs.ext4", "cpio"]);
    expect(statuses.map((s) => [s.id, s.isPresent])).toEqual([
      ["cpio", true],
      ["mkfs.ext4", true],
    ]);
  });

  it("marks what only the manager's networks need as optional", () => {
    const statuses = checkRequirements([...NETWORK_REQUIREMENTS, "qemu-img"]);
    expect(statuses.map((s) => [s.id, s.debianPackage, s.isOptional])).toEqual([
      ["qemu-img", "qemu-utils", false],
      ["ip", "iproute2", true],
      ["nft", "nftables", true],
      ["dnsmasq", "dnsmasq-base", true],
    ]);
  });

  it("lists tesseract, for OCR of the screen, as optional", () => {
    const [status] = checkRequirements(["tesseract"]);
    expect(status).toMatchObject({ debianPackage: "tesseract-ocr", isOptional: true });
    expect(status?.purpose).toMatch(/getScreenText/);
  });

  it("turns missing tools into one apt-get line without duplicates", () => {
    const missing = checkRequirements(["qemu-img", "qemu-system-x86_64"]).map((s) => ({
      ...s,
      isPresent: false,
    }));
    expect(aptInstallCommand([...missing, ...missing])).toBe(
      "apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils",
    );
  });

  it("throws the doctor's message, with the fix, when a tool is missing", () => {
    process.env.PATH = "/nonexistent";
    expect(() => requireHostTools(["qemu-system-x86_64"], "corral run")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.HOST_TOOL_MISSING,
        message: expect.stringContaining(
          "apt-get install -y --no-install-recommends qemu-system-x86",
        ),
      }),
    );
  });
});
