import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { pairVmNames, readDriverConfiguration } from "../../../src/driver/nixos-interface.ts";

const dir = mkdtempSync(join(tmpdir(), "corral-nixos-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(data: unknown): string {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, typeof data === "string" ? data : JSON.stringify(data));
  return file;
}

describe("pairVmNames", () => {
  it("pairs names with start scripts in order, or leaves scripts to be named by their files", () => {
    expect(pairVmNames(["a", "b"], ["/x/s1", "/x/s2"])).toEqual([
      { name: "a", startScript: "/x/s1" },
      { name: "b", startScript: "/x/s2" },
    ]);
    expect(pairVmNames(undefined, ["/x/run-a-vm"])).toEqual(["/x/run-a-vm"]);
    expect(pairVmNames(undefined, undefined)).toBeUndefined();
  });

  it("refuses lists that are not as many", () => {
    expect(() => pairVmNames(["a"], [])).toThrow(/must be as many: 1 names, 0 start scripts/);
    expect(() => pairVmNames(["a"], undefined)).toThrow(/must be as many/);
  });
});

describe("readDriverConfiguration", () => {
  it("reads the configuration nixpkgs writes", async () => {
    const file = config({
      vms: {
        server: { name: "server", start_script: "/nix/store/abc-nixos-vm/bin/run-server-vm" },
        client: { name: "client", start_script: "/nix/store/def-nixos-vm/bin/run-client-vm" },
      },
      containers: {},
      vlans: [1, 2],
      global_timeout: 3600,
      enable_ssh_backdoor: false,
      test_script: "/nix/store/ghi-nixos-test-driver-script",
    });
    expect(await readDriverConfiguration(file)).toEqual({
      startScripts: [
        { name: "server", startScript: "/nix/store/abc-nixos-vm/bin/run-server-vm" },
        { name: "client", startScript: "/nix/store/def-nixos-vm/bin/run-client-vm" },
      ],
      vlans: [1, 2],
      globalTimeout: 3600,
      testScript: "/nix/store/ghi-nixos-test-driver-script",
    });
  });

  it("resolves relative paths against the file's folder", async () => {
    const file = config({ vms: { a: { name: "a", start_script: "bin/run-a-vm" } }, vlans: [] });
    const read = await readDriverConfiguration(file);
    expect(read.startScripts).toEqual([{ name: "a", startScript: join(dir, "bin/run-a-vm") }]);
    expect(read.testScript).toBeUndefined();
  });

  it.each([
    ["not JSON", "{", /it is not JSON/],
    ["a list", [], /must be a JSON object/],
    [
      "containers",
      { vms: {}, containers: { c: { name: "c", start_script: "/s" } } },
      /"containers" must be empty/,
    ],
    [
      "the SSH backdoor",
      { vms: {}, enable_ssh_backdoor: true },
      /"enable_ssh_backdoor" must be false/,
    ],
    ["bad VLANs", { vms: {}, vlans: ["1"] }, /"vlans" must be a list of VLAN numbers/],
    ["a bad timeout", { vms: {}, global_timeout: "1h" }, /"global_timeout" must be a number/],
    ["a VM without a start script", { vms: { a: { name: "a" } } }, /"vms.a" must be/],
  ])("refuses %s with CORRAL_INVALID_ARGUMENT", async (_, data, message) => {
    await expect(readDriverConfiguration(config(data))).rejects.toMatchObject({
      code: "CORRAL_INVALID_ARGUMENT",
      message: expect.stringMatching(message),
    });
  });

  it("says a missing file is missing", async () => {
    await expect(readDriverConfiguration(join(dir, "none.json"))).rejects.toMatchObject({
      code: "CORRAL_NOT_FOUND",
    });
  });
});
