// The Firecracker and Cloud Hypervisor backends' own code (process supervision in both
// ownership modes, configuration over the API, console, vsock transport, pause/resume,
// snapshots and restore, graceful stop) against a fake VMM process (test/fakes/
// fake-vmm-process.ts) given as CORRAL_FIRECRACKER / CORRAL_CLOUD_HYPERVISOR. This checks
// corral's side only: neither VMM has run here (no KVM).

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Backend, RunningVm, VmSpec } from "../../../src/backends/backend.ts";
import { ConsoleLog } from "../../../src/backends/console-log.ts";
import { findBackend } from "../../../src/backends/registry.ts";
import { readVmRecord } from "../../../src/backends/vm-record.ts";
import { Deadline } from "../../../src/deadline.ts";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { verifyFiles } from "../../../src/machine/snapshot-manifest.ts";
import { writeSnapshot } from "../../../src/machine/snapshots.ts";

const FAKE = new URL("../../fakes/fake-vmm-process.ts", import.meta.url).pathname;
const deadline = () => new Deadline("micro-VM test", { timeout: 10_000 }, 10_000);

let dir: string;
let imageDir: string;
const saved = { ...process.env };
const running: RunningVm[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-microvm-"));
  imageDir = join(dir, "image");
  mkdirSync(imageDir);
  for (const file of ["vmlinux", "vmlinuz", "initrd"]) writeFileSync(join(imageDir, file), file);
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(imageDir, "root.qcow2"), "16M"]);
  for (const [name, env] of [
    ["firecracker", "CORRAL_FIRECRACKER"],
    ["cloud-hypervisor", "CORRAL_CLOUD_HYPERVISOR"],
  ] as const) {
    const script = join(dir, name);
    writeFileSync(script, `#!/bin/sh\nexec '${process.execPath}' '${FAKE}' ${name} "$@"\n`);
    chmodSync(script, 0o755);
    process.env[env] = script;
  }
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((vm) => vm.stop({ force: true })));
});

afterAll(() => {
  process.env = { ...saved };
  rmSync(dir, { recursive: true, force: true });
});

function spec(name: string, overrides: Partial<VmSpec> = {}): VmSpec {
  const stateDir = join(dir, `${name}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(stateDir);
  return {
    name,
    stateDir,
    ownership: "owned",
    boot: {
      kind: "image",
      imageId: "fake-image",
      recipeHash: "fake",
      dir: imageDir,
      startScript: join(imageDir, "run-vm"),
      kernel: join(imageDir, "vmlinuz"),
      direct: {
        initrd: join(imageDir, "initrd"),
        rootDisk: join(imageDir, "root.qcow2"),
        kernelParams: "console=ttyS0 root=/dev/vda rw",
        memoryMiB: 256,
        cpus: 1,
      },
    },
    accelerator: "kvm",
    nics: [],
    kernelParams: [],
    allowReboot: false,
    env: {},
    ...overrides,
  };
}

async function started(backend: Backend, vmSpec: VmSpec, stateFile?: string) {
  const console = new ConsoleLog();
  const vm = stateFile
    ? await backend.restore(vmSpec, console, { state: stateFile })
    : await backend.start(vmSpec, console);
  running.push(vm);
  return { vm, console };
}

for (const name of ["firecracker", "cloud-hypervisor"]) {
  const backend = findBackend(name);

  describe(`${name} backend against a fake VMM process`, () => {
    it("boots owned: console, vsock ports, pause and resume, then a graceful stop", async () => {
      const { vm, console } = await started(backend, spec("owned"));
      expect(vm.backend).toBe(name);
      await expect.poll(() => console.lines).toContain("fake guest: booted");
      const shell = await vm.transport.open("shell", deadline());
      shell.write("ping");
      const [echo] = (await new Promise((resolve) => shell.once("data", (c) => resolve([c])))) as [
        Buffer,
      ];
      expect(echo.toString()).toBe("ping");
      shell.destroy();
      expect(await vm.isPaused(deadline())).toBe(false);
      await vm.pause(deadline());
      expect(await vm.isPaused(deadline())).toBe(true);
      await vm.resume(deadline());
      expect(await vm.isPaused(deadline())).toBe(false);
      const exit = await vm.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(console.lines).toContain("fake guest: powering off");
    });

    it("saves a snapshot and restores it into a new state folder, paused", async () => {
      const { vm } = await started(backend, spec("snap"));
      const snapshot = join(dir, `${name}-snapshot`);
      mkdirSync(snapshot);
      const ability = vm.ability("snapshot");
      expect(ability).toBeDefined();
      const savedState = await ability?.saveState(deadline(), snapshot, join(dir, "next.qcow2"));
      expect(savedState).toBeDefined();
      if (!savedState) return;
      expect(existsSync(join(snapshot, savedState.state))).toBe(true);
      expect(existsSync(join(snapshot, savedState.disk))).toBe(true);
      expect(await vm.isPaused(deadline())).toBe(true);
      await vm.stop({ force: true });

      const restoredSpec = spec("restored");
      const overlay = join(restoredSpec.stateDir, "disk.qcow2");
      await backend.createOverlay(join(snapshot, savedState.disk), overlay);
      const { vm: restored, console } = await started(
        backend,
        { ...restoredSpec, rootDisk: overlay },
        join(snapshot, savedState.state),
      );
      expect(await restored.isPaused(deadline())).toBe(true);
      await restored.resume(deadline());
      expect(await restored.isPaused(deadline())).toBe(false);
      await expect.poll(() => console.lines).toContain("fake guest: booted");
    });

    it("puts every file of the saved state under the manifest's checksums", async () => {
      const { vm } = await started(backend, spec("manifest"));
      const target = join(dir, `${name}-manifest-snapshot`);
      const manifest = await writeSnapshot(vm, deadline(), target, join(dir, "next2.qcow2"), {
        machine: "manifest",
        identity: {
          source: { kind: "image", imageId: "fake-image", recipeHash: "0" },
          backend: name,
          vmmVersion: "fake",
          config: {
            accelerator: "kvm",
            cpus: null,
            memoryMiB: null,
            vlans: [],
            node: 1,
            allowReboot: false,
          },
        },
      });
      // Everything the VMM wrote is checksummed: Firecracker's memory file, Cloud Hypervisor's
      // config.json and memory ranges, beside the state and the disk.
      const written = readdirSync(target).filter((file) => file !== "manifest.json");
      expect(Object.keys(manifest.files).sort()).toEqual(written.sort());
      expect(written).toEqual(
        expect.arrayContaining(
          name === "firecracker" ? ["memory"] : ["config.json", "memory-ranges"],
        ),
      );
      await verifyFiles(target, manifest);
      for (const file of written.filter((f) => f !== manifest.state && f !== manifest.disk)) {
        const original = readFileSync(join(target, file));
        writeFileSync(join(target, file), Buffer.concat([original, Buffer.from("!")]));
        await expect(verifyFiles(target, manifest), file).rejects.toThrow(/fails its checksum/);
        writeFileSync(join(target, file), original);
      }
      // Put back, they are hashed again (a new modification time) and pass.
      await verifyFiles(target, manifest);
    });

    it("runs persistent: recorded, attached from another console, detached, stopped", async () => {
      const vmSpec = spec("persistent", { ownership: "persistent" });
      const { vm } = await started(backend, vmSpec);
      const record = await readVmRecord(vmSpec.stateDir);
      expect(record).toMatchObject({ backend: name, name: "persistent" });
      // A persistent VMM's console goes to console.log, which the launching process follows;
      // an attaching process replays what is there, then follows it live.
      const consoleLog = join(vmSpec.stateDir, "console.log");
      await expect.poll(() => readFileSync(consoleLog, "utf8")).toContain("fake guest: booted");
      await expect.poll(() => vm.console.lines).toContain("fake guest: booted");
      await vm.detach();
      const again = await backend.attach(record, new ConsoleLog());
      expect(again).toBeDefined();
      if (!again) return;
      running.push(again);
      expect(await again.isPaused(deadline())).toBe(false);
      expect(again.console.lines.filter((line) => line === "fake guest: booted")).toHaveLength(1);
      // The guest's last words, written after the attach, reach the attached console.
      await again.stop();
      expect(again.console.lines).toContain("fake guest: powering off");
      expect(vm.console.lines).not.toContain("fake guest: powering off");
      await expect
        .poll(() => existsSync(join(vmSpec.stateDir, "vm.json")), { timeout: 5000 })
        .toBe(false);
      expect(await backend.attach(record, new ConsoleLog())).toBeUndefined();
    });

    it("a VMM that exits at once is MACHINE_START_FAILED, nothing left running", async () => {
      const env = name === "firecracker" ? "CORRAL_FIRECRACKER" : "CORRAL_CLOUD_HYPERVISOR";
      const good = process.env[env];
      process.env[env] = "/bin/false";
      try {
        const error = await backend.start(spec("broken"), new ConsoleLog()).then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(CorralError);
        expect((error as CorralError).code).toBe(ErrorCodes.MACHINE_START_FAILED);
        expect((error as CorralError).message).toMatch(/exited \(code 1.*before its API answered/);
      } finally {
        process.env[env] = good;
      }
    });
  });
}
