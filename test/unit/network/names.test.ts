import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import {
  bridgeName,
  isCorralLinkName,
  linkAlias,
  MAX_LINK_NAME,
  parseLinkAlias,
  tapName,
} from "../../../src/network/link-names.ts";
import { allocateMac, normalizeMac } from "../../../src/network/mac.ts";
import { newId } from "../../../src/store/ids.ts";

describe("link names", () => {
  it("names bridges after their network, shortening long names within 15 characters", () => {
    expect(bridgeName("corral0")).toBe("crl-br-corral0");
    expect(bridgeName("lab")).toBe("crl-br-lab");
    const long = bridgeName("a-very-long-network-name");
    expect(long).toMatch(/^crl-br-a-v-[0-9a-z]{4}$/);
    expect(long.length).toBeLessThanOrEqual(MAX_LINK_NAME);
    expect(bridgeName("a-very-long-network-name")).toBe(long);
    expect(bridgeName("a-very-long-network-other")).not.toBe(long);
  });

  it("names TAPs after the VM's id and the NIC's index", () => {
    const id = newId();
    expect(tapName(id, 0)).toBe(`crl-${id.slice(-8).toLowerCase()}-0`);
    expect(tapName(id, 15).length).toBeLessThanOrEqual(MAX_LINK_NAME);
    expect(isCorralLinkName(tapName(id, 3))).toBe(true);
    expect(isCorralLinkName("eth0")).toBe(false);
    expect(isCorralLinkName("crl-something-too-long")).toBe(false);
  });

  it("marks links with aliases that read back", () => {
    const id = newId();
    expect(parseLinkAlias(linkAlias({ kind: "bridge", network: "corral0" }))).toEqual({
      kind: "bridge",
      network: "corral0",
    });
    expect(parseLinkAlias(linkAlias({ kind: "tap", vmId: id, index: 2 }))).toEqual({
      kind: "tap",
      vmId: id,
      index: 2,
    });
    expect(parseLinkAlias(undefined)).toBeUndefined();
    expect(parseLinkAlias("corral:something-else")).toBeUndefined();
    expect(parseLinkAlias("docker bridge")).toBeUndefined();
  });
});

describe("MAC addresses", () => {
  it("draws 52:54:00 addresses, again while taken, never in the VLAN scheme's range", () => {
    const draws = [
      Buffer.from([0x12, 0x01, 0x02]),
      Buffer.from([0xab, 0xcd, 0xef]),
      Buffer.from([0x0a, 0x0b, 0x0c]),
    ];
    const mac = allocateMac(new Set(["52:54:00:ab:cd:ef"]), () => draws.shift() as Buffer);
    expect(mac).toBe("52:54:00:0a:0b:0c");
    expect(allocateMac(new Set())).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  it("gives up when nothing free turns up", () => {
    expect(() => allocateMac(new Set(["52:54:00:01:02:03"]), () => Buffer.from([1, 2, 3]))).toThrow(
      expect.objectContaining({ code: ErrorCodes.CONFLICT }),
    );
  });

  it("normalizes given MACs and refuses multicast ones", () => {
    expect(normalizeMac("52:54:00:AB:CD:EF")).toBe("52:54:00:ab:cd:ef");
    expect(() => normalizeMac("01:00:5e:00:00:01")).toThrow(/multicast/);
    expect(() => normalizeMac("52-54-00-ab-cd-ef")).toThrow(/six hex bytes/);
  });
});
