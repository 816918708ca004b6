// Daemon settings: defaults, a YAML file, CORRAL_* variables, flags, in rising priority; every
// bad or unknown setting named with where it came from.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { loadDaemonConfig } from "../../../src/server/config.ts";
import { temporaryDir } from "../../helpers/cli.ts";

function settingsFile(text: string): string {
  const file = join(temporaryDir("corral-config-"), "corral.yaml");
  writeFileSync(file, text);
  return file;
}

describe("loadDaemonConfig", () => {
  it("defaults to the XDG folders, else /run and ~/.local/state", async () => {
    const env = {
      XDG_RUNTIME_DIR: "/run/user/1000",
      XDG_STATE_HOME: "/home/u/.state",
      XDG_CONFIG_HOME: "/home/u/.conf",
    };
    expect(await loadDaemonConfig({ env })).toEqual({
      stateDir: "/home/u/.state/corral",
      templatesDir: "/home/u/.conf/corral/templates",
      socket: "/run/user/1000/corral/corral.sock",
      listen: undefined,
      logLevel: "info",
      limits: { maxVms: 64, maxUploadBytes: 4 * 2 ** 30 },
      networks: { mode: "auto", runDir: "/run/corral-networks" },
    });
    const bare = await loadDaemonConfig({ env: { HOME: "/home/u" } });
    expect(bare.socket).toBe("/run/corral/corral.sock");
    expect(bare.stateDir).toMatch(/\/\.local\/state\/corral$/);
    expect(bare.templatesDir).toMatch(/\/\.config\/corral\/templates$/);
  });

  it("reads a YAML file, its relative paths relative to the file's folder", async () => {
    const file = settingsFile(
      "# corral serve settings\nstateDir: state\ntemplatesDir: tpl\nsocket: /tmp/c.sock\nlisten: '[::1]:7777'\nlogLevel: warn\nlimits:\n  maxVms: 5\n  maxUploadBytes: 1048576\nnetworks:\n  mode: 'off'\n  runDir: run\n",
    );
    expect(await loadDaemonConfig({ configFile: file, env: {} })).toEqual({
      stateDir: join(file, "..", "state"),
      templatesDir: join(file, "..", "tpl"),
      socket: "/tmp/c.sock",
      listen: { host: "::1", port: 7777 },
      logLevel: "warn",
      limits: { maxVms: 5, maxUploadBytes: 1048576 },
      networks: { mode: "off", runDir: join(file, "..", "run") },
    });
  });

  it("lets CORRAL_* variables override the file, and flags override both", async () => {
    const file = settingsFile("socket: /tmp/file.sock\nlogLevel: warn\nlimits: { maxVms: 5 }\n");
    const env = {
      CORRAL_SOCKET: "/tmp/env.sock",
      CORRAL_MAX_VMS: "7",
      CORRAL_MAX_UPLOAD_BYTES: "4096",
      CORRAL_LOG_LEVEL: "",
    };
    const fromEnv = await loadDaemonConfig({ configFile: file, env });
    expect(fromEnv).toMatchObject({
      socket: "/tmp/env.sock",
      logLevel: "warn",
      limits: { maxVms: 7, maxUploadBytes: 4096 },
    });
    const fromFlags = await loadDaemonConfig({
      configFile: file,
      env,
      flags: {
        socket: "/tmp/flag.sock",
        listen: "127.0.0.1:0",
        "limits.maxVms": "9",
        "networks.runDir": "/tmp/nets",
        "limits.maxUploadBytes": "8192",
      },
    });
    expect(fromFlags).toMatchObject({
      socket: "/tmp/flag.sock",
      listen: { host: "127.0.0.1", port: 0 },
      limits: { maxVms: 9, maxUploadBytes: 8192 },
      networks: { mode: "auto", runDir: "/tmp/nets" },
    });
    expect(
      (await loadDaemonConfig({ env: { CORRAL_NETWORKS: "off" }, flags: {} })).networks.mode,
    ).toBe("off");
    await expect(
      loadDaemonConfig({ env: {}, flags: { "networks.mode": "bridged" } }),
    ).rejects.toMatchObject({
      message: 'daemon settings: --networks: must be one of auto, off, got "bridged"',
    });
  });

  it("refuses an unknown key, naming the file, the line and the key", async () => {
    const file = settingsFile("socket: /tmp/c.sock\nlimits:\n  maxVMs: 3\nlogLevle: debug\n");
    await expect(loadDaemonConfig({ configFile: file, env: {} })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: [
        `daemon settings: ${file}:4:1: logLevle: unknown setting (known here: stateDir, templatesDir, socket, listen, logLevel, limits, networks)`,
        `${file}:3:3: limits.maxVMs: unknown setting (known here: maxVms, maxUploadBytes)`,
      ].join("\n"),
    });
  });

  it("refuses a bad value, naming the file, the line, the key, the rule and the value", async () => {
    const cases: [string, string][] = [
      [
        "logLevel: loud\n",
        '1:1: logLevel: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      ],
      ["\nlimits:\n  maxVms: 0\n", "3:3: limits.maxVms: must be >= 1, got 0"],
      ["limits:\n  maxVms: many\n", '2:3: limits.maxVms: must be integer, got "many"'],
      ["limits:\n  maxUploadBytes: 0\n", "2:3: limits.maxUploadBytes: must be >= 1, got 0"],
      ["listen: 7777\n", "1:1: listen: must be string, got 7777"],
      [
        "listen: localhost:99999\n",
        '1:1: listen: must be a TCP address host:port (127.0.0.1:7777, [::1]:7777; port 0 picks one), got "localhost:99999"',
      ],
      ["socket: ''\n", '1:1: socket: must not be empty, got ""'],
      ["limits: 5\n", "1:1: limits: must be object, got 5"],
    ];
    for (const [text, problem] of cases) {
      const file = settingsFile(text);
      await expect(loadDaemonConfig({ configFile: file, env: {} }), text).rejects.toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `daemon settings: ${file}:${problem}`,
      });
    }
  });

  it("reports YAML syntax errors with their line, and refuses a file that is not a mapping", async () => {
    const broken = settingsFile("socket: /tmp/c.sock\nsocket: /tmp/d.sock\n");
    await expect(loadDaemonConfig({ configFile: broken, env: {} })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `daemon settings: ${broken}:2:1: Map keys must be unique`,
    });
    const list = settingsFile("- socket\n");
    await expect(loadDaemonConfig({ configFile: list, env: {} })).rejects.toMatchObject({
      message: `daemon settings: ${list}:1:1: expected a mapping of settings (key: value lines)`,
    });
    expect(await loadDaemonConfig({ configFile: settingsFile(""), env: {} })).toMatchObject({
      logLevel: "info",
    });
  });

  it("names the variable or the flag of a bad value", async () => {
    await expect(loadDaemonConfig({ env: { CORRAL_MAX_VMS: "abc" } })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'daemon settings: environment variable CORRAL_MAX_VMS: must be integer, got "abc"',
    });
    await expect(loadDaemonConfig({ env: {}, flags: { listen: "nohost" } })).rejects.toMatchObject({
      message: expect.stringMatching(/^daemon settings: --listen: must be a TCP address host:port/),
    });
    await expect(
      loadDaemonConfig({ env: {}, flags: { logLevel: "loud", "limits.maxVms": "0" } }),
    ).rejects.toMatchObject({
      message:
        'daemon settings: --log-level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n--max-vms: must be >= 1, got 0',
    });
  });

  it("says when the file does not exist", async () => {
    const file = join(temporaryDir("corral-config-"), "missing.yaml");
    await expect(loadDaemonConfig({ configFile: file, env: {} })).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
      message: `cannot read the config file ${file}: no such file`,
    });
  });
});
