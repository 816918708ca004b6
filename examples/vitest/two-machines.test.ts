// The two machines from a vitest test: `npx vitest run examples/vitest`.

import { startMachines } from "corral";
import { expect, test } from "vitest";

test("the client reaches the server over VLAN 1", { timeout: 300_000 }, async () => {
  await using vms = await startMachines({ server: {}, client: {} });
  await vms.server.succeed("mkdir -p /srv && echo hello > /srv/index.html");
  await vms.server.succeed("busybox httpd -p 80 -h /srv");
  await vms.server.waitForOpenPort(80);
  const page = await vms.client.waitUntilSucceeds("curl -sf --max-time 2 http://server/");
  expect(page.trim()).toBe("hello");
});
