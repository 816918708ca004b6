import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { Machine, type MachineOptions } from "../../../src/machine/machine.ts";
import {
  MACHINE_OPTION_RULES,
  VLAN_NUMBERS_RULE,
  validateFields,
  validateMachineOptions,
} from "../../../src/machine/validate-options.ts";

/** The message validateMachineOptions throws for `options`, or undefined when they pass. */
function refusal(options: unknown): string | undefined {
  try {
    validateMachineOptions(options as MachineOptions);
    return undefined;
  } catch (error) {
    expect(error).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    return (error as Error).message;
  }
}

describe("validateMachineOptions", () => {
  it("accepts every field within its range", () => {
    expect(
      refusal({
        name: "web-1",
        image: "debian-12",
        accel: "tcg",
        stateDir: "/tmp/x",
        keepState: true,
        allowReboot: false,
        sharedDir: "/tmp/shared",
        cpus: 255,
        memoryMiB: 64,
        maxCpus: 255,
        maxMemoryMiB: 524_288,
        vlans: [{ vlan: 0, switchSocket: "/tmp/vde0.ctl" }],
        taps: [{ ifname: "crl-0123abcd-0", mac: "52:54:00:ab:cd:ef" }],
        node: 254,
        snapshot: "/tmp/snap",
        env: { QEMU_OPTS: "-m 512" },
      }),
    ).toBeUndefined();
    expect(refusal({})).toBeUndefined();
    expect(refusal({ startScript: "./run-a-vm", memoryMiB: undefined })).toBeUndefined();
  });

  it.each([
    [
      { memoryMiB: -5 },
      "new Machine: memoryMiB is -5; expected a whole number of MiB, at least 64",
    ],
    [
      { memoryMiB: "lots" },
      'new Machine: memoryMiB is "lots"; expected a whole number of MiB, at least 64',
    ],
    [{ memoryMiB: 512.5 }, "memoryMiB is 512.5; expected a whole number of MiB, at least 64"],
    [{ cpus: 0 }, "new Machine: cpus is 0; expected a whole number from 1 to 255"],
    [{ cpus: 256 }, "cpus is 256; expected a whole number from 1 to 255"],
    [{ cpus: Number.NaN }, "cpus is NaN; expected a whole number from 1 to 255"],
    [{ node: 255 }, "node is 255; expected a whole number from 1 to 254"],
    [{ maxCpus: 256 }, "maxCpus is 256; expected a whole number from 1 to 255"],
    [
      { maxMemoryMiB: 1_048_576 },
      "maxMemoryMiB is 1048576; expected a whole number of MiB from 64 to 524288",
    ],
    [
      { cpus: 4, maxCpus: 2 },
      "new Machine: maxCpus is 2, less than cpus (4); it is the most the machine may grow to",
    ],
    [
      { memoryMiB: 1024, maxMemoryMiB: 512 },
      "maxMemoryMiB is 512, less than memoryMiB (1024); it is the most the machine may grow to",
    ],
    [{ image: "" }, 'image is ""; expected a non-empty string'],
    [{ startScript: 42 }, "startScript is 42; expected a non-empty string"],
    [{ accel: "hvf" }, 'accel is "hvf"; expected "kvm" or "tcg"'],
    [{ keepState: "yes" }, 'keepState is "yes"; expected true or false'],
    [{ env: { N: 1 } }, 'env is {"N":1}; expected an object whose values are strings'],
    [{ vlans: [1] }, "vlans is [1]; expected a list of { vlan: 0–255, switchSocket"],
    [
      { vlans: [{ vlan: 256, switchSocket: "/s" }] },
      'vlans is [{"vlan":256,"switchSocket":"/s"}]; expected a list of { vlan: 0–255',
    ],
    [{ taps: [{ ifname: "tap0" }] }, 'taps is [{"ifname":"tap0"}]; expected a list of { ifname'],
    [
      { taps: [{ ifname: "a-name-far-too-long", mac: "52:54:00:ab:cd:ef" }] },
      "expected a list of { ifname: a link name (1–15",
    ],
    [{ taps: [{ ifname: "t", mac: "53:54:00:ab:cd:ef" }] }, "mac: a unicast MAC"],
    [{ taps: [{ ifname: "t,x", mac: "52:54:00:ab:cd:ef" }] }, "taps is"],
    [{ memory: 512 }, 'new Machine: unknown field "memory"; fields: name, image, startScript'],
    [
      { image: "debian-12", startScript: "./run-a-vm" },
      "new Machine: give an image or a startScript, not both",
    ],
    [null, "new Machine: the options are null; expected an object"],
  ])("refuses %j", (options, message) => {
    expect(refusal(options)).toContain(message);
  });

  it("names the machine, and gives the 63-character limit of a host name", () => {
    expect(refusal({ name: "web", cpus: 0 })).toBe(
      'machine "web": cpus is 0; expected a whole number from 1 to 255',
    );
    expect(refusal({ name: "a".repeat(63) })).toBeUndefined();
    expect(refusal({ name: "a".repeat(64) })).toMatch(
      /^new Machine: name is "a{40}…" \(64 characters\); expected a host name: .*at most 63 characters$/,
    );
    for (const name of ["1st", "web_1", "web-", "", "wéb"]) {
      expect(refusal({ name })).toMatch(/expected a host name: letters, digits and "-"/);
    }
  });

  it("is what the Machine constructor does, synchronously", () => {
    expect(() => new Machine({ memoryMiB: -5 })).toThrow(
      "new Machine: memoryMiB is -5; expected a whole number of MiB, at least 64",
    );
    expect(() => new Machine({ name: "ok", cpus: 2, memoryMiB: 512 })).not.toThrow();
  });
});

describe("validateFields", () => {
  it("checks a test's VLAN numbers with VLAN_NUMBERS_RULE", () => {
    const rules = { vlans: VLAN_NUMBERS_RULE, cpus: MACHINE_OPTION_RULES.cpus };
    expect(() => validateFields('machine "a"', { vlans: [0, 255], cpus: 1 }, rules)).not.toThrow();
    expect(() => validateFields('machine "a"', { vlans: [300] }, rules)).toThrow(
      'machine "a": vlans is [300]; expected a list of VLAN numbers, whole numbers from 0 to 255',
    );
    expect(() => validateFields('machine "a"', { vlans: 1 }, rules)).toThrow("vlans is 1;");
    expect(() => validateFields('machine "a"', 5, rules)).toThrow(
      'machine "a": the options are 5; expected an object',
    );
  });
});
