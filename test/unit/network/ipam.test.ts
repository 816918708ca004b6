import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { chooseDefaultSubnet } from "../../../src/network/default-network.ts";
import { allocateAddress, overlappingRoute, planSubnet } from "../../../src/network/ipam.ts";

describe("planSubnet", () => {
  it("puts the gateway first and hands out the rest", () => {
    expect(planSubnet("10.213.0.0/24")).toEqual({
      subnet: "10.213.0.0/24",
      gateway: "10.213.0.1",
      dhcpStart: "10.213.0.2",
      dhcpEnd: "10.213.0.254",
    });
    expect(planSubnet("10.9.0.0/30")).toMatchObject({ dhcpStart: "10.9.0.2", dhcpEnd: "10.9.0.2" });
  });

  it("takes a chosen gateway and range", () => {
    expect(
      planSubnet("172.30.5.0/24", { gateway: "172.30.5.254", dhcpEnd: "172.30.5.99" }),
    ).toEqual({
      subnet: "172.30.5.0/24",
      gateway: "172.30.5.254",
      dhcpStart: "172.30.5.1",
      dhcpEnd: "172.30.5.99",
    });
  });

  it("refuses sizes, gateways and ranges that do not fit", () => {
    expect(() => planSubnet("10.0.0.0/8")).toThrow(/must be a \/16 to a \/30/);
    expect(() => planSubnet("10.0.0.0/31")).toThrow(/must be a \/16 to a \/30/);
    expect(() => planSubnet("10.0.0.0/24", { gateway: "10.0.0.255" })).toThrow(
      /gateway 10.0.0.255 is not a host address of 10.0.0.0\/24/,
    );
    expect(() => planSubnet("10.0.0.0/24", { gateway: "10.0.1.1" })).toThrow(/not a host address/);
    expect(() => planSubnet("10.0.0.0/24", { dhcpStart: "10.0.0.9", dhcpEnd: "10.0.0.8" })).toThrow(
      /holds no address/,
    );
    expect(() => planSubnet("10.0.0.0/24", { dhcpStart: "10.0.0.1", dhcpEnd: "10.0.0.1" })).toThrow(
      /holds no address/,
    );
  });
});

describe("allocateAddress", () => {
  const plan = planSubnet("10.213.0.0/29", { gateway: "10.213.0.3", dhcpStart: "10.213.0.1" });

  it("gives the lowest free address, never the gateway", () => {
    expect(allocateAddress(plan, [], "n")).toBe("10.213.0.1");
    expect(allocateAddress(plan, ["10.213.0.1", "10.213.0.2"], "n")).toBe("10.213.0.4");
    expect(allocateAddress(plan, ["10.213.0.2"], "n")).toBe("10.213.0.1");
  });

  it("says the network is full", () => {
    const taken = ["10.213.0.1", "10.213.0.2", "10.213.0.4", "10.213.0.5", "10.213.0.6"];
    expect(() => allocateAddress(plan, taken, "lab")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: expect.stringContaining('network "lab" has no free address'),
      }),
    );
  });
});

describe("routes and the default subnet", () => {
  const routes = [
    { destination: "default", device: "eth0" },
    { destination: "10.213.0.0/23", device: "eth1" },
    { destination: "10.213.2.7", device: "wg0" },
    { destination: "fe80::/64", device: "eth0" },
  ];

  it("finds the route a subnet collides with, ignoring the default route", () => {
    expect(overlappingRoute("10.213.1.0/24", routes)?.device).toBe("eth1");
    expect(overlappingRoute("10.213.2.0/24", routes)?.device).toBe("wg0");
    expect(overlappingRoute("10.213.3.0/24", routes)).toBeUndefined();
  });

  it("chooses the first free /24 of 10.213.0.0/16", () => {
    expect(chooseDefaultSubnet([])).toBe("10.213.0.0/24");
    expect(chooseDefaultSubnet(routes)).toBe("10.213.3.0/24");
    expect(chooseDefaultSubnet(routes, ["10.213.3.0/24"])).toBe("10.213.4.0/24");
    expect(() => chooseDefaultSubnet([{ destination: "10.213.0.0/16" }])).toThrow(
      expect.objectContaining({ code: ErrorCodes.CONFLICT }),
    );
  });
});
