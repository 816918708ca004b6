import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { isLocalPortInUse } from "../../../src/host/local-port.ts";

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
