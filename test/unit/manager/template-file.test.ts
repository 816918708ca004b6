// Template files: parsed with positions, checked against TemplateSchema and the template rules,
// every problem reported as file:line:col, field and what is wrong, in the order of the lines.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { parseTemplate, readTemplateFile } from "../../../src/manager/template-file.ts";
import { limitProblems } from "../../../src/manager/template-rules.ts";
import { BUILTIN_TEMPLATES_DIR } from "../../../src/manager/templates.ts";

const FILE = "/home/u/.config/corral/templates/big.yaml";

/** The error's lines (message, then details) that parsing `text` throws. */
function problems(text: string, expectName?: string): string[] {
  try {
    parseTemplate(text, FILE, expectName === undefined ? {} : { expectName });
  } catch (error) {
    expect(error).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    return (error as Error).message.split("\n");
  }
  throw new Error("parseTemplate accepted it");
}

describe("parseTemplate", () => {
  it("returns the document of a valid file", () => {
    const text =
      "name: big\nos: linux\nimage: debian-12\ncpus: 2\nmemoryMiB: 2048\nmax: { cpus: 8 }\ndrives:\n  - { path: /srv/data.img, media: disk }\n";
    expect(parseTemplate(text, FILE)).toEqual({
      name: "big",
      os: "linux",
      image: "debian-12",
      cpus: 2,
      memoryMiB: 2048,
      max: { cpus: 8 },
      drives: [{ path: "/srv/data.img", media: "disk" }],
    });
  });

  it("names the file, line, column and field of each schema violation, with the value", () => {
    expect(
      problems(
        "name: big\nos: mac\ncpus: 0\nmemoryMiB: 512\ndrives:\n  - path: /x.iso\n    media: tape\n",
      ),
    ).toEqual([
      `invalid template ${FILE}:2:1: os: must be one of linux, windows, got "mac"`,
      `${FILE}:3:1: cpus: must be >= 1, got 0`,
      `${FILE}:7:5: drives[0].media: must be one of cdrom, disk, got "tape"`,
    ]);
  });

  it("takes only the backends corral knows, and lists them", () => {
    expect(
      parseTemplate(
        "name: big\nos: linux\nimage: debian-12\nbackend: firecracker\ncpus: 2\nmemoryMiB: 512\n",
        FILE,
      ).backend,
    ).toBe("firecracker");
    expect(
      problems("name: big\nos: linux\nimage: debian-12\nbackend: xen\ncpus: 2\nmemoryMiB: 512\n"),
    ).toEqual([
      `invalid template ${FILE}:4:1: backend: must be one of qemu, firecracker, cloud-hypervisor, got "xen"`,
    ]);
  });

  it("names unknown and missing fields, and breaks of a pattern by its description", () => {
    expect(problems("name: Big\nos: linux\ncpus: 2\nmemroyMiB: 512\n")).toEqual([
      `invalid template ${FILE}:1:1: memoryMiB: is required`,
      `${FILE}:1:1: name: must be a DNS label: lower-case letters, digits and '-', starting with a letter, got "Big"`,
      `${FILE}:4:1: memroyMiB: is not a known field (known: name, description, os, backend, machineType, firmware, image, cpus, memoryMiB, diskGiB, min, max, kernelParams, drives, networks, hypervEnlightenments, guestChannel)`,
    ]);
  });

  it("reports YAML syntax errors and duplicate keys at their line", () => {
    expect(problems("name: big\nos: linux\ncpus: 2\nmemoryMiB: 512\ncpus: 3\n")).toEqual([
      `invalid template ${FILE}:5:1: Map keys must be unique`,
    ]);
    expect(problems("name: big\nos: [linux\n")[0]).toMatch(
      new RegExp(`^invalid template ${FILE}:\\d+:\\d+: `),
    );
    expect(problems("- a\n- b\n")).toEqual([
      `invalid template ${FILE}:1:1: (the document): must be object, got ["a","b"]`,
    ]);
  });

  it("applies the template rules: uefi needs q35, defaults within min and max, absolute drives", () => {
    expect(
      problems(
        "name: big\nos: linux\nfirmware: uefi\nimage: debian-12\ncpus: 2\nmemoryMiB: 512\nmax: { cpus: 1 }\ndrives:\n  - { path: win.iso, media: cdrom }\n",
      ),
    ).toEqual([
      `invalid template ${FILE}:3:1: firmware: uefi needs machineType q35 (this template has pc)`,
      `${FILE}:5:1: cpus: 2 is above the template's maximum of 1`,
      `${FILE}:9:7: drives[0].path: must be an absolute path, got "win.iso"`,
    ]);
    expect(
      problems("name: big\nos: windows\nmachineType: microvm\ncpus: 1\nmemoryMiB: 512\n"),
    ).toEqual([
      `invalid template ${FILE}:1:1: image: is required with machineType microvm: it boots the image's kernel directly`,
      `${FILE}:1:1: diskGiB: is required when there is no image: the VM gets an empty disk of this size`,
      `${FILE}:3:1: machineType: microvm boots Linux kernels only`,
    ]);
  });

  it("requires a file in the templates folder to be named after its template", () => {
    expect(problems("name: small\nos: linux\nimage: x\ncpus: 1\nmemoryMiB: 128\n", "big")).toEqual([
      `invalid template ${FILE}:1:1: name: must be the file's name without .yaml (big), got "small"`,
    ]);
  });
});

describe("readTemplateFile", () => {
  it("is CORRAL_NOT_FOUND for a file that does not exist", async () => {
    await expect(readTemplateFile("/nonexistent/t.yaml")).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
      message: "cannot read the template /nonexistent/t.yaml: no such file",
    });
  });

  it("reads every built-in template, valid and named after its file", async () => {
    const files = readdirSync(BUILTIN_TEMPLATES_DIR).sort();
    expect(files).toEqual(["linux-default.yaml", "linux-microvm.yaml", "windows-default.yaml"]);
    const [linux, microvm, windows] = await Promise.all(
      files.map((file) =>
        readTemplateFile(join(BUILTIN_TEMPLATES_DIR, file), {
          expectName: file.replace(/\.yaml$/, ""),
        }),
      ),
    );
    expect(linux).toMatchObject({ os: "linux", machineType: "pc", image: "debian-12" });
    expect(microvm).toMatchObject({ machineType: "microvm", image: "debian-12" });
    expect(windows).toMatchObject({
      os: "windows",
      machineType: "q35",
      firmware: "uefi",
      hypervEnlightenments: true,
      min: { cpus: 2, memoryMiB: 1024 },
    });
    expect(windows?.image).toBeUndefined();
    expect(windows?.diskGiB).toBeGreaterThan(0);
  });
});

describe("limitProblems", () => {
  it("names each resource outside the template's min and max", () => {
    const limits = { min: { cpus: 2, memoryMiB: 1024 }, max: { cpus: 16 } };
    expect(limitProblems(limits, { cpus: 1, memoryMiB: 512, diskGiB: 9999 })).toEqual([
      { path: ["cpus"], message: "1 is below the template's minimum of 2" },
      { path: ["memoryMiB"], message: "512 is below the template's minimum of 1024" },
    ]);
    expect(limitProblems(limits, { cpus: 17 })).toEqual([
      { path: ["cpus"], message: "17 is above the template's maximum of 16" },
    ]);
    expect(limitProblems(limits, { cpus: 2, memoryMiB: 1024 })).toEqual([]);
  });
});
