import { describe, expect, it } from "vitest";
import { keptLeases } from "../../../src/host/dnsmasq.ts";
import { dnsmasqArgs, renderDhcpHosts, renderHostsFile } from "../../../src/host/dnsmasq-config.ts";

const hosts = [
  { mac: "52:54:00:aa:bb:01", address: "10.213.0.2", name: "web" },
  { mac: "52:54:00:aa:bb:02", address: "10.213.0.3", name: "db" },
];

describe("dnsmasq's configuration", () => {
  const config = {
    network: "corral0",
    bridge: "crl-br-corral0",
    gateway: "10.213.0.1",
    subnet: "10.213.0.0/24",
    dir: "/run/corral-networks/corral0",
    forwardDns: false,
  };

  it("binds one instance to its bridge, with static leases only and its own files", () => {
    const args = dnsmasqArgs(config);
    expect(args).toEqual(
      expect.arrayContaining([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-hosts",
        "--interface=crl-br-corral0",
        "--bind-interfaces",
        "--except-interface=lo",
        "--listen-address=10.213.0.1",
        "--dhcp-range=10.213.0.0,static,255.255.255.0,3600",
        "--dhcp-hostsfile=/run/corral-networks/corral0/dhcp-hosts",
        "--addn-hosts=/run/corral-networks/corral0/hosts",
        "--dhcp-leasefile=/run/corral-networks/corral0/leases",
        "--pid-file=/run/corral-networks/corral0/dnsmasq.pid",
        "--domain=corral0",
        "--local=/corral0/",
        "--no-resolv",
      ]),
    );
    expect(dnsmasqArgs({ ...config, forwardDns: true })).not.toContain("--no-resolv");
    expect(dnsmasqArgs({ ...config, leaseTimeS: 600 })).toContain(
      "--dhcp-range=10.213.0.0,static,255.255.255.0,600",
    );
  });

  it("writes a lease and two names per NIC", () => {
    expect(renderDhcpHosts(hosts)).toBe(
      "52:54:00:aa:bb:01,10.213.0.2,web\n52:54:00:aa:bb:02,10.213.0.3,db\n",
    );
    expect(renderHostsFile(hosts, "corral0")).toBe(
      "10.213.0.2 web.corral0 web\n10.213.0.3 db.corral0 db\n",
    );
  });

  it("keeps the leases of known NICs only, at their own address", () => {
    const leases = [
      "1700000000 52:54:00:aa:bb:01 10.213.0.2 web 01:52:54:00:aa:bb:01",
      "1700000000 52:54:00:aa:bb:09 10.213.0.4 gone *",
      "1700000000 52:54:00:aa:bb:02 10.213.0.9 db *",
      "",
    ].join("\n");
    expect(keptLeases(leases, hosts)).toBe(
      "1700000000 52:54:00:aa:bb:01 10.213.0.2 web 01:52:54:00:aa:bb:01\n",
    );
    expect(keptLeases("", hosts)).toBe("");
  });
});
