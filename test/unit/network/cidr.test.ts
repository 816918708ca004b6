import { describe, expect, it } from "vitest";
import {
  cidrsOverlap,
  formatCidr,
  formatIpv4,
  formatNetmask,
  lastAddress,
  parseCidr,
  parseIpv4,
  tryParseIpv4,
} from "../../../src/network/cidr.ts";

describe("IPv4 addresses and blocks", () => {
  it("parses and prints addresses", () => {
    expect(parseIpv4("10.213.0.1")).toBe(0x0ad50001);
    expect(formatIpv4(0xffffffff)).toBe("255.255.255.255");
    expect(formatIpv4(parseIpv4("192.168.1.254"))).toBe("192.168.1.254");
  });

  it("refuses what is not a plain dotted quad", () => {
    for (const text of ["10.0.0", "10.0.0.256", "010.0.0.1", "a.b.c.d", "10.0.0.1 ", "::1"]) {
      expect(tryParseIpv4(text), text).toBeUndefined();
    }
    expect(() => parseIpv4("10.0.0.300", "gateway")).toThrow(/gateway "10.0.0.300" is not an IPv4/);
  });

  it("parses blocks and says which block was meant when host bits are set", () => {
    const cidr = parseCidr("10.213.4.0/22");
    expect(formatCidr(cidr)).toBe("10.213.4.0/22");
    expect(formatIpv4(lastAddress(cidr))).toBe("10.213.7.255");
    expect(formatNetmask(22)).toBe("255.255.252.0");
    expect(() => parseCidr("10.213.0.1/24")).toThrow(/did you mean 10.213.0.0\/24/);
    expect(() => parseCidr("10.213.0.0/33")).toThrow(/not an IPv4 CIDR block/);
    expect(() => parseCidr("10.213.0.0")).toThrow(/not an IPv4 CIDR block/);
    expect(formatCidr(parseCidr("0.0.0.0/0"))).toBe("0.0.0.0/0");
  });

  it("tells overlap", () => {
    const a = parseCidr("10.213.0.0/16");
    const b = parseCidr("10.213.7.0/24");
    const c = parseCidr("10.214.0.0/24");
    expect(cidrsOverlap(a, b)).toBe(true);
    expect(cidrsOverlap(b, a)).toBe(true);
    expect(cidrsOverlap(a, c)).toBe(false);
  });
});
