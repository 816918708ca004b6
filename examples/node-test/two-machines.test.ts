// The two machines from node:test: `node --test examples/node-test/two-machines.test.ts`.

import assert from "node:assert/strict";
import { test } from "node:test";
import { startMachines } from "corral";

test("the client reaches the server over VLAN 1", { timeout: 300_000 }, async () => {
  await using vms = await startMachines({ server: {}, client: {} });
  await vms.server.succeed("mkdir -p /srv && echo hello > /srv/index.html");
  await vms.server.succeed("busybox httpd -p 80 -h /srv");
  await vms.server.waitForOpenPort(80);
  const page = await vms.client.waitUntilSucceeds("curl -sf --max-time 2 http://server/");
  assert.equal(page.trim(), "hello");
});
