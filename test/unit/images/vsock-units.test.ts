// The debian-12 image's vsock units and the host's port numbers agree: the guest listens on the
// vsock ports GUEST_VSOCK_PORTS names, and the relay serves them under the port names the shell
// prelude looks for. systemd-analyze (Debian 12's, as in the guest) checks the units' syntax.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GUEST_VSOCK_PORTS } from "../../../src/guest/hybrid-vsock.ts";
import { STDERR_PORT, STDOUT_PORT, XFER_PORT } from "../../../src/guest/shell-framing.ts";

const overlay = join(import.meta.dirname, "../../../recipes/debian-12/overlay");
const units = join(overlay, "etc/systemd/system");
const settings = (unit: string, key: string) =>
  readFileSync(join(units, unit), "utf8")
    .split("\n")
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));

describe("the image's vsock units", () => {
  it("listen on the vsock ports the host dials, in the order the relay names them", () => {
    expect(settings("corral-vsock-shell.socket", "ListenStream")).toEqual([
      `vsock::${GUEST_VSOCK_PORTS.shell}`,
    ]);
    const { stdout, stderr, xfer } = GUEST_VSOCK_PORTS;
    const listen = settings("corral-vsock-ports.socket", "ListenStream");
    expect(listen.filter((address) => address.startsWith("vsock:"))).toEqual(
      [stdout, stderr, xfer].map((port) => `vsock::${port}`),
    );
    // Then as many loopback ports, the relay's side for the shell.
    expect(listen.slice(3)).toHaveLength(3);
    expect(listen.slice(3).every((address) => address.startsWith("127.0.0.1:"))).toBe(true);
    expect(settings("corral-vsock-ports.service", "ExecStart")).toEqual([
      `/usr/local/lib/corral/vsock-ports ${STDOUT_PORT} ${STDERR_PORT} ${XFER_PORT}`,
    ]);
  });

  it("stay out of VMs with hvc0 (QEMU's) and are pulled in only by a vsock device", () => {
    // The ports service stops backdoor.service: it must not start where hvc0 exists either.
    for (const socket of [
      "corral-vsock-shell.socket",
      "corral-vsock-ports.socket",
      "corral-vsock-ports.service",
    ]) {
      expect(settings(socket, "ConditionPathExists")).toEqual(["!/dev/hvc0"]);
      expect(readFileSync(join(units, socket), "utf8")).not.toContain("[Install]");
    }
    // It stops the hvc0 shell only once its condition held: a Conflicts= would stop it anyway.
    const ports = readFileSync(join(units, "corral-vsock-ports.service"), "utf8");
    expect(ports).not.toMatch(/^Conflicts=.*backdoor/m);
    expect(settings("corral-vsock-ports.service", "ExecStartPre")).toEqual([
      "-/bin/systemctl --no-block stop backdoor.service",
    ]);
    const rule = readFileSync(join(overlay, "etc/udev/rules.d/83-corral-vsock.rules"), "utf8");
    expect(rule).toContain('KERNEL=="vsock"');
    expect(rule).toContain("corral-vsock-shell.socket corral-vsock-ports.service");
  });

  const analyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
  it.skipIf(!analyze)("pass systemd-analyze verify", () => {
    const result = spawnSync(
      "systemd-analyze",
      [
        "verify",
        "--man=no",
        `--root=${overlay}`,
        ...[
          "corral-vsock-shell.socket",
          "corral-vsock-shell@.service",
          "corral-vsock-ports.socket",
          "corral-vsock-ports.service",
        ].map((unit) => join(units, unit)),
      ],
      { encoding: "utf8" },
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});
