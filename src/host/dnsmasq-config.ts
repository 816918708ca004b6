// What one network's dnsmasq is told: its command line, its static leases (dhcp-hostsfile) and
// its names (addn-hosts). dnsmasq re-reads both files on SIGHUP; the command line changes only
// with a restart.

import { join } from "node:path";
import { formatIpv4, formatNetmask, parseCidr } from "../network/cidr.ts";

/** A NIC dnsmasq knows: its lease and its names `<name>` and `<name>.<network>`. */
export interface DnsmasqHost {
  mac: string;
  address: string;
  /** The VM's name (a DNS label). */
  name: string;
}

export interface DnsmasqConfig {
  network: string;
  bridge: string;
  gateway: string;
  subnet: string;
  /** Its folder: files, pid, leases and log. dnsmasq's user ("nobody") must be able to read it. */
  dir: string;
  /**
   * Answer names outside the network by asking the host's resolvers (/etc/resolv.conf) — for
   * networks with NAT, whose VMs can reach the rest of the world. Else only the network's names.
   */
  forwardDns: boolean;
  /** Lease time in seconds; default 3600. */
  leaseTimeS?: number;
}

/** The files of a network's dnsmasq, in its folder. */
export function dnsmasqFiles(dir: string) {
  return {
    dhcpHosts: join(dir, "dhcp-hosts"),
    hosts: join(dir, "hosts"),
    leases: join(dir, "leases"),
    pid: join(dir, "dnsmasq.pid"),
    log: join(dir, "dnsmasq.log"),
    identity: join(dir, "dnsmasq.json"),
  };
}

/** dnsmasq's arguments: in the foreground (corral detaches it), bound to the bridge alone. */
export function dnsmasqArgs(config: DnsmasqConfig): string[] {
  const files = dnsmasqFiles(config.dir);
  const { network, prefix } = parseCidr(config.subnet);
  return [
    "--keep-in-foreground",
    // Nothing from /etc/dnsmasq.conf or /etc/hosts: this instance serves one network only.
    "--conf-file=/dev/null",
    "--no-hosts",
    `--interface=${config.bridge}`,
    "--bind-interfaces",
    "--except-interface=lo",
    `--listen-address=${config.gateway}`,
    // Static leases only: an address is a NIC's that corral allocated, never a stranger's.
    `--dhcp-range=${formatIpv4(network)},static,${formatNetmask(prefix)},${config.leaseTimeS ?? 3600}`,
    "--dhcp-authoritative",
    `--dhcp-hostsfile=${files.dhcpHosts}`,
    `--addn-hosts=${files.hosts}`,
    `--dhcp-leasefile=${files.leases}`,
    `--pid-file=${files.pid}`,
    `--log-facility=${files.log}`,
    `--domain=${config.network}`,
    `--local=/${config.network}/`,
    "--domain-needed",
    ...(config.forwardDns ? [] : ["--no-resolv"]),
  ];
}

/** The dhcp-hostsfile: one static lease per NIC, `mac,address,name`. */
export function renderDhcpHosts(hosts: readonly DnsmasqHost[]): string {
  return hosts.map((host) => `${host.mac},${host.address},${host.name}\n`).join("");
}

/** The addn-hosts file: `address name.network name` per NIC. */
export function renderHostsFile(hosts: readonly DnsmasqHost[], network: string): string {
  return hosts.map((host) => `${host.address} ${host.name}.${network} ${host.name}\n`).join("");
}
