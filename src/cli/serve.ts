// `corral serve`: the VM manager daemon in the foreground (SIGTERM or Ctrl-C stops it cleanly),
// and `corral serve token`: the bearer token TCP clients need.

import { once } from "node:events";
import type { Command } from "commander";
import type { DaemonConfig } from "../server/config.ts";
import { LOG_LEVELS, NETWORK_MODES, SETTING_VARIABLES } from "../server/config-settings.ts";
import { interruptSignal } from "./interrupt.ts";

interface ServeOptions {
  config?: string;
  socket?: string;
  listen?: string;
  stateDir?: string;
  templatesDir?: string;
  logLevel?: string;
  maxVms?: string;
  networks?: string;
  networkRunDir?: string;
  maxUploadBytes?: string;
  stopAll?: boolean;
  cleanupNetwork?: boolean;
}

export function registerServe(program: Command): void {
  const serve = program
    .command("serve")
    .summary("run the VM manager daemon: a REST API on a unix socket, and TCP with a token")
    .description(
      "Run the VM manager daemon in the foreground: a REST API under /v1 on a unix socket " +
        "(mode 0600, no token) and, with --listen, on TCP, where every request needs " +
        "`Authorization: Bearer <token>` (`corral serve token`). GET /openapi.json describes " +
        "the API, /docs shows it. Before it answers, it reconciles its VMs: it attaches to those " +
        "that run and marks those whose VMM died as crashed. SIGTERM or Ctrl-C stops it: " +
        "requests in flight finish, the socket is removed, and the VMs keep running (a later " +
        "corral serve attaches to them) unless --stop-all. Run as root, it gives its VMs " +
        "bridged networks (a default one, corral0; docs/networking.md): bridges, TAP devices, " +
        "dnsmasq and an nftables table of its own, all named crl-…/corral and kept when it " +
        "stops; without root (or with --networks off) VMs have only QEMU's user-mode NIC, the " +
        "network routes answer 503, and port forwards are QEMU hostfwd rules of that NIC. Settings come from --config, then CORRAL_* variables, " +
        "then flags.",
    )
    .option(
      "--config <file>",
      "YAML file of settings: stateDir, templatesDir, socket, listen, logLevel, limits.maxVms, limits.maxUploadBytes, networks.mode, networks.runDir",
    )
    .option(
      "--socket <path>",
      `unix socket to listen on (default $XDG_RUNTIME_DIR/corral/corral.sock, else /run/corral/corral.sock; ${SETTING_VARIABLES.socket})`,
    )
    .option(
      "--listen <host:port>",
      `also listen on TCP, e.g. 127.0.0.1:7777; every request there needs the token (${SETTING_VARIABLES.listen})`,
    )
    .option(
      "--state-dir <dir>",
      `the daemon's state folder: its database, token, VM and snapshot folders (default $XDG_STATE_HOME/corral, else ~/.local/state/corral; ${SETTING_VARIABLES.stateDir})`,
    )
    .option(
      "--templates-dir <dir>",
      `the folder of user templates, <name>.yaml each (default $XDG_CONFIG_HOME/corral/templates, else ~/.config/corral/templates; ${SETTING_VARIABLES.templatesDir})`,
    )
    .option(
      "--log-level <level>",
      `${LOG_LEVELS.join(", ")} (default info; ${SETTING_VARIABLES.logLevel})`,
    )
    .option(
      "--max-vms <n>",
      `the most VMs the daemon keeps (default 64; ${SETTING_VARIABLES["limits.maxVms"]})`,
    )
    .option(
      "--max-upload-bytes <n>",
      `the largest file an upload into a guest may be, in bytes (default 4294967296, 4 GiB; ${SETTING_VARIABLES["limits.maxUploadBytes"]})`,
    )
    .option(
      "--networks <mode>",
      `${NETWORK_MODES.join(" or ")}: auto (the default) makes bridged networks where the host allows them (root, ip, nft, dnsmasq); off never touches the host's network (${SETTING_VARIABLES["networks.mode"]})`,
    )
    .option(
      "--network-run-dir <dir>",
      `the folder of the networks' dnsmasq files, which others must be able to enter (default /run/corral-networks; ${SETTING_VARIABLES["networks.runDir"]})`,
    )
    .option(
      "--cleanup-network",
      "remove everything corral made on the host for networks — dnsmasq instances, crl-* bridges and TAPs, the nftables table inet corral — print it, and exit; refused while a corral serve runs on the state folder. VMs that run lose their bridged NICs until stopped and started again; the next corral serve makes the networks again from its store",
    )
    .option(
      "--stop-all",
      "when the daemon stops, stop every VM too (each guest is asked to power off, forced after 30 s) instead of leaving them running",
    )
    .addHelpText(
      "after",
      "\nErrors are JSON { code, message, details }; each code has one HTTP status (docs/errors.md).",
    )
    .action(async (options: ServeOptions) => {
      // The daemon (Fastify, TypeBox, SQLite) loads only when it is run: every other corral
      // command, `corral test` among them, starts without it.
      const { cleanupNetworks, startDaemon } = await import("../server/daemon.ts");
      const config = await loadConfig(options);
      if (options.cleanupNetwork) {
        const removed = await cleanupNetworks(config);
        if (removed.length === 0) process.stdout.write("nothing of corral's networks was here\n");
        for (const item of removed) process.stdout.write(`removed ${item}\n`);
        return;
      }
      const stopped = interruptSignal();
      const daemon = await startDaemon(config);
      if (!stopped.aborted) await once(stopped, "abort");
      await daemon.close({ stopVms: options.stopAll ?? false });
    });

  serve
    .command("token")
    .configureHelp({ showGlobalOptions: true })
    .description(
      "print the bearer token that TCP clients of corral serve send, creating it (mode 0600, " +
        "in the state folder) if there is none yet; takes serve's --config and --state-dir",
    )
    .action(async (_options: unknown, command: Command) => {
      const { loadOrCreateToken, tokenPath } = await import("../server/auth.ts");
      const config = await loadConfig(command.optsWithGlobals<ServeOptions>());
      const token = await loadOrCreateToken(config.stateDir);
      process.stdout.write(`${token}\n`);
      if (process.stderr.isTTY) process.stderr.write(`(from ${tokenPath(config.stateDir)})\n`);
    });
}

async function loadConfig(options: ServeOptions): Promise<DaemonConfig> {
  const { loadDaemonConfig } = await import("../server/config.ts");
  return loadDaemonConfig({
    configFile: options.config,
    flags: {
      stateDir: options.stateDir,
      templatesDir: options.templatesDir,
      socket: options.socket,
      listen: options.listen,
      logLevel: options.logLevel,
      "limits.maxVms": options.maxVms,
      "networks.mode": options.networks,
      "networks.runDir": options.networkRunDir,
      "limits.maxUploadBytes": options.maxUploadBytes,
    },
  });
}
