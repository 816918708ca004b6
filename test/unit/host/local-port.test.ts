import { createSocket } from "node:dgram";
import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { isLocalPortInUse, probePort } from "../../../src/host/local-port.ts";

describe("isLocalPortInUse", () => {
  it("is true while something listens on 127.0.0.1:port, false once it has closed", async () => {
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    expect(await isLocalPortInUse(port)).toBe(true);
    await new Promise((resolve) => server.close(resolve));
    expect(await isLocalPortInUse(port)).toBe(false);
  });
});

describe("probePort", () => {
  it("finds a TCP listener on 127.0.0.1 from 0.0.0.0 too, and the port free once it closed", async () => {
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    expect(await probePort({ address: "127.0.0.1", port, protocol: "tcp" })).toBe("in-use");
    expect(await probePort({ address: "0.0.0.0", port, protocol: "tcp" })).toBe("in-use");
    await new Promise((resolve) => server.close(resolve));
    expect(await probePort({ address: "0.0.0.0", port, protocol: "tcp" })).toBe("free");
  });

  it("finds a bound UDP socket", async () => {
    const socket = createSocket("udp4");
    socket.bind(0, "127.0.0.1");
    await once(socket, "listening");
    const { port } = socket.address();
    expect(await probePort({ address: "127.0.0.1", port, protocol: "udp" })).toBe("in-use");
    await new Promise<void>((resolve) => socket.close(resolve));
    expect(await probePort({ address: "127.0.0.1", port, protocol: "udp" })).toBe("free");
  });

  it("says an address the host lacks is not local", async () => {
    expect(await probePort({ address: "192.0.2.1", port: 8080, protocol: "tcp" })).toBe(
      "not-local",
    );
    expect(await probePort({ address: "192.0.2.1", port: 8080, protocol: "udp" })).toBe(
      "not-local",
    );
  });
});
