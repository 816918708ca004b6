// One dnsmasq per network, for DHCP (static leases) and DNS on its bridge: started detached, so
// that it outlives the daemon like the VMs do, found again through its pid and start time, told
// of new leases and names by SIGHUP. It drops root for "nobody" before reading its files, so
// they live in a folder others can reach (the network service's run folder, /run/corral-networks
// by default), not in the 0700 state folder.

import { closeSync, openSync } from "node:fs";
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CorralError, ErrorCodes } from "../errors.ts";
import { DetachedProcess, type ProcessIdentity } from "./detached-process.ts";
import {
  type DnsmasqConfig,
  type DnsmasqHost,
  dnsmasqArgs,
  dnsmasqFiles,
  renderDhcpHosts,
  renderHostsFile,
} from "./dnsmasq-config.ts";
import { type NetScope, scopedCommand } from "./net-scope.ts";
import { writeFileAtomic } from "./write-file-atomic.ts";

const READY_TIMEOUT_MS = 5000;
const READY_POLL_MS = 20;

/**
 * Writes the network's leases and names, then starts its dnsmasq, or makes the running one re-read
 * them (SIGHUP). Restarts it when its command line changed (`config` other than when it started)
 * or a host it leased an address to is gone (its lease is dropped: SIGHUP would keep it).
 * Returns its process. Throws CORRAL_HOST_COMMAND_FAILED with dnsmasq's own message when it does
 * not come up (its port 53 or 67 taken on the bridge, say).
 */
export async function ensureDnsmasq(
  config: DnsmasqConfig,
  hosts: readonly DnsmasqHost[],
  scope: NetScope = {},
): Promise<DetachedProcess> {
  await requireReachable(config.dir);
  await mkdir(config.dir, { recursive: true });
  await chmod(config.dir, 0o755);
  const files = dnsmasqFiles(config.dir);
  await writeFileAtomic(files.dhcpHosts, renderDhcpHosts(hosts));
  await writeFileAtomic(files.hosts, renderHostsFile(hosts, config.network));
  await chmod(files.dhcpHosts, 0o644);
  await chmod(files.hosts, 0o644);
  const args = dnsmasqArgs(config);
  const running = await findDnsmasq(config.dir);
  const leases = await readFile(files.leases, "utf8").catch(() => "");
  const kept = keptLeases(leases, hosts);
  if (running && running.args === JSON.stringify(args) && kept === leases) {
    running.dnsmasq.kill("SIGHUP");
    return running.dnsmasq;
  }
  await running?.dnsmasq.stop();
  // A lease outlives its host entry (and keeps its name in DNS, and its address from the next
  // NIC given it) until it expires: a NIC that went takes its lease along, with a restart.
  if (kept !== leases) await writeFileAtomic(files.leases, kept);
  return startDnsmasq(config, args, scope);
}

/** The network's dnsmasq if it runs. */
export async function findDnsmasqProcess(dir: string): Promise<DetachedProcess | undefined> {
  return (await findDnsmasq(dir))?.dnsmasq;
}

/** Stops the network's dnsmasq if it runs (SIGTERM, then SIGKILL) and removes its folder. */
export async function stopDnsmasq(dir: string): Promise<void> {
  await (await findDnsmasq(dir))?.dnsmasq.stop();
  await rm(dir, { recursive: true, force: true });
}

/** The lines of a lease file (`expiry mac address name client-id`) that belong to `hosts`. */
export function keptLeases(leases: string, hosts: readonly DnsmasqHost[]): string {
  const wanted = new Set(hosts.map((host) => `${host.mac} ${host.address}`));
  return leases
    .split("\n")
    .filter((line) => {
      const [, mac, address] = line.split(" ");
      return line !== "" && wanted.has(`${mac} ${address}`);
    })
    .map((line) => `${line}\n`)
    .join("");
}

/**
 * dnsmasq drops root for "nobody" before it reads its leases and names (at start and on SIGHUP),
 * so every folder above `dir` must let others in. Throws CORRAL_INVALID_ARGUMENT naming the one
 * that does not.
 */
async function requireReachable(dir: string): Promise<void> {
  for (let folder = dirname(dir); ; folder = dirname(folder)) {
    const info = await stat(folder).catch(() => undefined);
    if (info && (info.mode & 0o001) === 0) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `dnsmasq cannot read ${dir}: it runs as "nobody", and ${folder} (mode ${(info.mode & 0o777).toString(8)}) does not let others in; keep networks' files in a folder every parent of which has o+x, like the default /run/corral-networks`,
      );
    }
    if (folder === dirname(folder)) return;
  }
}

interface DnsmasqRecord extends ProcessIdentity {
  /** Its arguments as JSON: a change means a restart. */
  args: string;
}

async function findDnsmasq(
  dir: string,
): Promise<{ dnsmasq: DetachedProcess; args: string } | undefined> {
  let record: DnsmasqRecord;
  try {
    record = JSON.parse(await readFile(dnsmasqFiles(dir).identity, "utf8")) as DnsmasqRecord;
  } catch {
    return undefined;
  }
  const dnsmasq = DetachedProcess.find({ pid: record.pid, startTime: record.startTime });
  return dnsmasq && { dnsmasq, args: record.args };
}

async function startDnsmasq(
  config: DnsmasqConfig,
  args: string[],
  scope: NetScope,
): Promise<DetachedProcess> {
  const files = dnsmasqFiles(config.dir);
  await rm(files.pid, { force: true });
  const [file, fileArgs] = scopedCommand(scope, "dnsmasq", args);
  const log = openSync(files.log, "a");
  let dnsmasq: DetachedProcess;
  try {
    dnsmasq = await DetachedProcess.spawn(file, fileArgs, { stdio: ["ignore", log, log] });
  } finally {
    closeSync(log);
  }
  const record: DnsmasqRecord = { ...dnsmasq.identity, args: JSON.stringify(args) };
  await writeFile(files.identity, `${JSON.stringify(record)}\n`);
  // It writes its pid file once its sockets are bound; it exits when it cannot bind them.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !dnsmasq.hasExited) {
    const pid = await readFile(files.pid, "utf8").catch(() => "");
    if (Number(pid.trim()) === dnsmasq.pid) return dnsmasq;
    await sleep(READY_POLL_MS);
  }
  await dnsmasq.stop();
  const tail = (await readFile(files.log, "utf8").catch(() => "")).trim().split("\n").slice(-5);
  throw new CorralError(
    ErrorCodes.HOST_COMMAND_FAILED,
    `dnsmasq for network "${config.network}" did not start on ${config.bridge} (${config.gateway})`,
    { details: tail.filter(Boolean).map((line) => `  | ${line}`) },
  );
}
