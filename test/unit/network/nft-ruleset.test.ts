import { describe, expect, it } from "vitest";
import {
  type FirewallPlan,
  forwardCounter,
  networkCounter,
  renderDeleteTable,
  renderRuleset,
} from "../../../src/network/nft-ruleset.ts";
import {
  describeHostPort,
  hostPortsCollide,
  requireHostAddress,
  requirePort,
  requireProtocol,
} from "../../../src/network/port-forward.ts";

const plan: FirewallPlan = {
  networks: [
    {
      name: "corral0",
      bridge: "crl-br-corral0",
      subnet: "10.213.0.0/24",
      nat: true,
      isolated: false,
    },
    { name: "lab-x", bridge: "crl-br-lab-x", subnet: "10.213.1.0/24", nat: false, isolated: true },
  ],
  forwards: [
    {
      id: "01J0000000000000000000000A",
      hostAddress: "0.0.0.0",
      hostPort: 8080,
      protocol: "tcp",
      guestAddress: "10.213.0.2",
      guestPort: 80,
    },
    {
      id: "01J0000000000000000000000B",
      hostAddress: "192.0.2.7",
      hostPort: 5353,
      protocol: "udp",
      guestAddress: "10.213.1.2",
      guestPort: 53,
    },
  ],
};

/** The rule lines of chain `name` in `script`. */
function chain(script: string, name: string): string[] {
  const body = script.split(`  chain ${name} {\n`)[1]?.split("\n  }")[0] ?? "";
  return body.split("\n").map((line) => line.trim());
}

describe("corral's nftables table", () => {
  const script = renderRuleset(plan);

  it("replaces only its own table, in one script", () => {
    expect(
      script.startsWith("add table inet corral\ndelete table inet corral\ntable inet corral {\n"),
    ).toBe(true);
    expect(script).not.toMatch(/flush ruleset/);
    expect(script.match(/^(add |delete )?table /gm)).toHaveLength(3);
    expect(renderDeleteTable()).toBe("add table inet corral\ndelete table inet corral\n");
  });

  it("lists the bridges in a set and declares a counter per network direction and forward", () => {
    expect(script).toContain('elements = { "crl-br-corral0", "crl-br-lab-x" }');
    for (const name of [
      networkCounter("corral0", "rx"),
      networkCounter("lab-x", "tx"),
      forwardCounter("01J0000000000000000000000A"),
    ]) {
      expect(script).toContain(`  counter ${name} {\n  }`);
    }
    expect(networkCounter("lab-x", "tx")).toBe("net_lab_x_tx");
  });

  it("DNATs each forward in prerouting and output, on every local address or the given one", () => {
    for (const hook of ["prerouting", "output"]) {
      expect(chain(script, hook)).toContain(
        "fib daddr type local tcp dport 8080 counter name fwd_01J0000000000000000000000A dnat ip to 10.213.0.2:80",
      );
      expect(chain(script, hook)).toContain(
        "ip daddr 192.0.2.7 udp dport 5353 counter name fwd_01J0000000000000000000000B dnat ip to 10.213.1.2:53",
      );
    }
    expect(chain(script, "output")[0]).toBe("type nat hook output priority -100; policy accept;");
  });

  it("masquerades NAT networks' egress, hairpin and 127.0.0.1 connections", () => {
    const rules = chain(script, "postrouting");
    expect(rules).toContain("ip saddr 10.213.0.0/24 oifname != @bridges masquerade");
    expect(rules.join("\n")).not.toContain("ip saddr 10.213.1.0/24 oifname != @bridges");
    expect(rules).toContain(
      'oifname "crl-br-lab-x" ct status dnat ip saddr { 127.0.0.0/8, 10.213.1.0/24 } masquerade',
    );
  });

  it("drops a non-NAT network's way out and an isolated network's ways to others and the host", () => {
    const forward = chain(script, "forward");
    const accepted = forward.indexOf("ct state established,related accept");
    expect(
      forward.indexOf(
        'iifname "crl-br-lab-x" oifname != @bridges drop comment "no NAT: no way out"',
      ),
    ).toBeGreaterThan(accepted);
    expect(forward).toContain('iifname "crl-br-lab-x" oifname @bridges drop comment "isolated"');
    expect(forward.join("\n")).not.toMatch(/"crl-br-corral0" oifname @bridges drop/);
    const input = chain(script, "input");
    expect(input.at(-1)).toBe('iifname "crl-br-lab-x" drop comment "isolated from the host"');
    expect(input.join("\n")).not.toContain("crl-br-corral0");
  });

  it("starts counters from given values, to keep them across a replace", () => {
    const kept = renderRuleset({
      ...plan,
      counters: new Map([[networkCounter("corral0", "tx"), { packets: 7, bytes: 900 }]]),
    });
    expect(kept).toContain("  counter net_corral0_tx {\n    packets 7 bytes 900\n  }");
    expect(kept).toContain("  counter net_corral0_rx {\n  }");
  });

  it("renders a table with empty chains when there is nothing", () => {
    const empty = renderRuleset({ networks: [], forwards: [] });
    expect(empty).toContain("  set bridges {\n    type ifname\n  }");
    expect(chain(empty, "forward")).toEqual([
      "type filter hook forward priority filter; policy accept;",
    ]);
  });
});

describe("port forward checks", () => {
  const at = (hostAddress: string, hostPort = 80, protocol: "tcp" | "udp" = "tcp") => ({
    hostAddress,
    hostPort,
    protocol,
  });

  it("sees two forwards collide on one port and protocol, through the any-address", () => {
    expect(hostPortsCollide(at("0.0.0.0"), at("10.0.0.1"))).toBe(true);
    expect(hostPortsCollide(at("10.0.0.1"), at("10.0.0.1"))).toBe(true);
    expect(hostPortsCollide(at("10.0.0.1"), at("10.0.0.2"))).toBe(false);
    expect(hostPortsCollide(at("0.0.0.0"), at("0.0.0.0", 81))).toBe(false);
    expect(hostPortsCollide(at("0.0.0.0"), at("0.0.0.0", 80, "udp"))).toBe(false);
    expect(describeHostPort(at("0.0.0.0"))).toBe("tcp 0.0.0.0:80");
  });

  it("checks ports, protocols and addresses", () => {
    expect(requirePort(65535, "host port")).toBe(65535);
    expect(() => requirePort(0, "host port")).toThrow(/host port 0 is not a port/);
    expect(() => requirePort(8.5, "guest port")).toThrow(/guest port 8.5/);
    expect(requireProtocol("udp")).toBe("udp");
    expect(() => requireProtocol("sctp")).toThrow(/one of tcp, udp/);
    expect(() => requireHostAddress("localhost")).toThrow(/host address "localhost"/);
  });
});
