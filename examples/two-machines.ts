// Two machines on VLAN 1: `server` serves HTTP with busybox httpd, `client` fetches it by name.
// Pulling the server's cable makes the fetch fail; plugging it back makes it work again.
//
//   corral test examples/two-machines.ts

import { defineTest, type TestContext } from "corral";

export async function scenario({
  server,
  client,
  startAll,
  subtest,
}: TestContext<"server" | "client">): Promise<void> {
  await startAll();

  await subtest("the server serves a page", async () => {
    await server.succeed("mkdir -p /srv/www && echo 'hello from server' > /srv/www/index.html");
    await server.succeed("busybox httpd -p 80 -h /srv/www");
    await server.waitForOpenPort(80);
  });

  await subtest("the client fetches it by name", async () => {
    const page = await client.waitUntilSucceeds("curl -sf --max-time 2 http://server/");
    if (page.trim() !== "hello from server") throw new Error(`unexpected page: ${page}`);
  });

  await subtest("a blocked server is unreachable", async () => {
    await server.block();
    await client.fail("curl -sf --max-time 2 http://server/");
  });

  await subtest("an unblocked server is reachable again", async () => {
    await server.unblock();
    await client.waitUntilSucceeds("curl -sf --max-time 2 http://server/", { timeout: 30_000 });
  });
}

export default defineTest({ machines: { server: {}, client: {} } }, scenario);
