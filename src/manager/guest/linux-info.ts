// What a Linux guest is, from one bash script: host name, kernel, OS release, CPUs, memory and
// uptime from /proc and /sys (read by bash itself), and with `full` the filesystems (df), the
// interfaces and addresses (`ip -j`) and the logged-in users (who). qemu-ga reports the last
// three itself, so its channel runs the short form.

import type { SystemInfo } from "./guest-ops.ts";

const SECTION = "--corral-section--";

/** The script; `full` adds filesystems, interfaces and users. */
export function systemInfoScript(full: boolean): string {
  return [
    'read -r h </proc/sys/kernel/hostname; echo "hostname=$h"',
    'read -r k </proc/sys/kernel/osrelease; echo "kernel=$k"',
    'read -r u _ </proc/uptime; echo "uptime=$u"',
    'read -r c </sys/devices/system/cpu/online; echo "cpus=$c"',
    `while read -r k v _; do case $k in MemTotal:|MemAvailable:) echo "\${k%:}=$v";; esac; done </proc/meminfo`,
    'while IFS= read -r l; do echo "os.$l"; done </etc/os-release',
    ...(full
      ? [
          `echo ${SECTION}; df -P -T -B1 -x tmpfs -x devtmpfs 2>/dev/null`,
          `echo ${SECTION}; ip -j addr show 2>/dev/null`,
          `echo ${SECTION}; who 2>/dev/null`,
        ]
      : []),
  ].join("\n");
}

/** The facts of the script's first part; the rest as the full script printed them, if it did. */
export function parseSystemInfo(stdout: string): SystemInfo {
  const [facts = "", df = "", ip = "", who = ""] = stdout.split(`${SECTION}\n`);
  const values = new Map<string, string>();
  for (const line of facts.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) values.set(line.slice(0, at), line.slice(at + 1));
  }
  const os = (key: string) => (values.get(`os.${key}`) ?? "").replace(/^"(.*)"$/, "$1");
  return {
    os: {
      family: "linux",
      name: os("NAME"),
      version: os("VERSION_ID") || os("VERSION"),
      kernel: values.get("kernel") ?? "",
    },
    hostname: values.get("hostname") ?? "",
    cpus: countCpus(values.get("cpus") ?? ""),
    memory: {
      totalBytes: Number(values.get("MemTotal") ?? 0) * 1024,
      availableBytes: Number(values.get("MemAvailable") ?? 0) * 1024,
    },
    filesystems: parseDf(df),
    interfaces: parseIpAddr(ip),
    uptimeS: Math.floor(Number(values.get("uptime") ?? 0)),
    users: [
      ...new Set(
        who
          .split("\n")
          .map((line) => line.split(/\s+/)[0] ?? "")
          .filter(Boolean),
      ),
    ],
  };
}

/** The CPUs in a list such as `0-3,6`. */
export function countCpus(list: string): number {
  let count = 0;
  for (const part of list.trim().split(",").filter(Boolean)) {
    const [first, last] = part.split("-").map(Number);
    count += last === undefined ? 1 : last - (first ?? last) + 1;
  }
  return count;
}

function parseDf(text: string): SystemInfo["filesystems"] {
  return text
    .split("\n")
    .slice(1)
    .map((line) => line.split(/\s+/))
    .filter((fields) => fields.length >= 7)
    .map(([, type = "", total = "0", used = "0", , , ...mount]) => ({
      mountpoint: mount.join(" "),
      type,
      totalBytes: Number(total),
      usedBytes: Number(used),
    }));
}

interface IpLink {
  ifname: string;
  address?: string;
  addr_info?: { local: string; prefixlen: number }[];
}

function parseIpAddr(text: string): SystemInfo["interfaces"] {
  if (text.trim() === "") return [];
  let links: IpLink[];
  try {
    links = JSON.parse(text) as IpLink[];
  } catch {
    return [];
  }
  return links.map((link) => ({
    name: link.ifname,
    mac: macOrNull(link.address),
    addresses: (link.addr_info ?? []).map((info) => `${info.local}/${info.prefixlen}`),
  }));
}

/** A MAC address, or null for none (a loopback's is all zeros). */
export function macOrNull(address: string | undefined): string | null {
  return address && !/^(00:){5}00$/.test(address) ? address : null;
}
