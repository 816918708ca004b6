// Newer nixpkgs drivers' interface, as their Nix-built wrappers call it: --vm-names with
// --vm-start-scripts, their vmNames / vmStartScripts fallbacks, and --config with the JSON driver
// configuration (its format as nixos/lib/testing/driver.nix writes it). The machines are created,
// not booted: the test only lists them.

import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isolatedRuntimeDir, runCli, temporaryDir } from "../helpers/cli.ts";

const LISTS = "test/fixtures/driver/lists-machines.ts";

/** Executable start scripts that are never run (the test starts no machine). */
function startScripts(dir: string, ...names: string[]): string[] {
  return names.map((name) => {
    const path = join(dir, name);
    writeFileSync(path, "#!/bin/sh\nexit 1\n");
    chmodSync(path, 0o755);
    return path;
  });
}

describe("corral test with the newer nixpkgs driver interface", () => {
  it("names machines by --vm-names, paired with --vm-start-scripts in order", async () => {
    const dir = temporaryDir("corral-nixos-");
    const [a, b] = startScripts(dir, "run-alpha-vm", "start-b");
    const result = await runCli(
      [
        ...["test", LISTS, "--vm-names", "web", "db", "--vm-start-scripts", a ?? "", b ?? ""],
        ...["--vlans", "1", "--output-dir", join(dir, "out")],
      ],
      { XDG_RUNTIME_DIR: isolatedRuntimeDir() },
    );
    expect(result.stderr).toContain("machines: web,db; vlans: 1");
    expect(result.code).toBe(0);
  });

  it("takes vmNames and vmStartScripts from the environment", async () => {
    const dir = temporaryDir("corral-nixos-");
    const scripts = startScripts(dir, "s1", "s2");
    const result = await runCli(["test", LISTS, "--output-dir", join(dir, "out")], {
      XDG_RUNTIME_DIR: isolatedRuntimeDir(),
      vmNames: "one two",
      vmStartScripts: scripts.join(" "),
      vlans: "2 3",
    });
    expect(result.stderr).toContain("machines: one,two; vlans: 2,3");
    expect(result.code).toBe(0);
  });

  it("refuses names and start scripts that are not as many", async () => {
    const dir = temporaryDir("corral-nixos-");
    const [a] = startScripts(dir, "s1");
    const result = await runCli([
      "test",
      LISTS,
      "--vm-names",
      "x",
      "y",
      "--vm-start-scripts",
      a ?? "",
    ]);
    expect(result.stderr).toContain(
      "--vm-names and --vm-start-scripts must be as many: 2 names, 1 start scripts",
    );
    expect(result.code).toBe(2);
  });

  it("reads --config: machines, VLANs, global timeout and test script", async () => {
    const dir = temporaryDir("corral-nixos-");
    const [vm] = startScripts(dir, "run-server-vm");
    const config = join(dir, "driver-configuration.json");
    // As nixos/lib/testing/driver.nix writes it (lib.getExe of each node's system.build.vm).
    writeFileSync(
      config,
      JSON.stringify({
        vms: { server: { name: "server", start_script: vm } },
        containers: {},
        vlans: [1, 4],
        global_timeout: 3600,
        enable_ssh_backdoor: false,
        test_script: join(process.cwd(), LISTS),
      }),
    );
    const runtimeDir = isolatedRuntimeDir();
    const result = await runCli(["test", "--config", config, "--output-dir", join(dir, "out")], {
      XDG_RUNTIME_DIR: runtimeDir,
    });
    expect(result.stderr).toContain("machines: server; vlans: 1,4");
    expect(result.code).toBe(0);
    writeFileSync(config, JSON.stringify({ vms: {}, containers: { c: {} }, vlans: [] }));
    const refused = await runCli(["test", LISTS, "--config", config]);
    expect(refused.stderr).toContain('"containers" must be empty');
    expect(refused.code).toBe(2);
  });
});

describe("NixOS verbs", () => {
  it("gives the only machine as `machine`, waits for QMP events, fires commands with checkReturn: false, has nc -z and -U", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const result = await runCli(
      ["test", "test/fixtures/driver/nixos-verbs.ts", "--output-dir", temporaryDir("corral-out-")],
      { XDG_RUNTIME_DIR: runtimeDir },
    );
    expect(result.stderr).toContain("test passed");
    expect(result.code).toBe(0);
  });
});
