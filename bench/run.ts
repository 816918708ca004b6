// `npm run bench [-- --json] [-- --only <areas>]`: measures image builds, boots (and the idle cost
// of booted VMs), guest verbs (round trip, waitForUnit's delay, copy speed), snapshots, the test
// driver, `corral test` over a folder of files (runner) and the daemon's HTTP throughput, each
// area in its own module. Medians of repeated runs; baselines (a kernel-only boot, bare QEMU) are
// measured in the same run. `--only boot,snapshots` runs some areas: images, boot (with guest
// verbs), snapshots, driver, runner, server, manager (the daemon with VMs: listing 100 of them, a
// clone through the API, a restart with 10 live ones), network (the daemon's bridged networks in
// a namespace: throughput against a vde VLAN, creates, forwards),
// guest (exec and file transfers through the guest API, per guest channel).

import { findBackend } from "../src/backends/registry.ts";
import { resolveAccelerator } from "../src/host/accelerator.ts";
import { buildImage } from "../src/images/build-image.ts";
import { findImage } from "../src/images/image-cache.ts";
import { benchBoot } from "./boot.ts";
import { benchDriver, benchRunner } from "./driver.ts";
import { benchGuestApi } from "./guest-api.ts";
import { benchGuestVerbs } from "./guest-verbs.ts";
import { benchIdle } from "./idle.ts";
import { benchImages } from "./images.ts";
import { benchManager } from "./manager.ts";
import { log, results } from "./measure.ts";
import { benchNetwork } from "./network.ts";
import { reportTable } from "./report.ts";
import { benchServer } from "./server.ts";
import { benchSnapshots } from "./snapshots.ts";

const AREAS = [
  "images",
  "boot",
  "snapshots",
  "driver",
  "runner",
  "server",
  "manager",
  "network",
  "guest",
] as const;
/** The areas that boot VMs: they need the accelerator's verdict and the built image. */
const VM_AREAS: readonly Area[] = [
  "images",
  "boot",
  "snapshots",
  "driver",
  "runner",
  "manager",
  "network",
  "guest",
];
type Area = (typeof AREAS)[number];

function chosenAreas(argv: readonly string[]): Set<Area> {
  const at = argv.indexOf("--only");
  if (at < 0) return new Set(AREAS);
  const names = (argv[at + 1] ?? "").split(",").filter(Boolean);
  const unknown = names.filter((name) => !(AREAS as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    process.stderr.write(`bench: --only takes a list of ${AREAS.join(", ")}\n`);
    process.exit(2);
  }
  return new Set(names as Area[]);
}

const areas = chosenAreas(process.argv);
if (VM_AREAS.some((area) => areas.has(area))) {
  const verdict = await resolveAccelerator({ probe: findBackend().acceleratorProbe });
  results.accelerator = verdict.accelerator;
  log(`accelerator: ${verdict.accelerator} (${verdict.reason})`);

  if (areas.has("images")) await benchImages();
  await buildImage("debian-12");
  const image = await findImage("debian-12");
  if (areas.has("boot")) {
    await benchBoot(image.dir, verdict.accelerator, benchGuestVerbs);
    await benchIdle();
  }
  if (areas.has("snapshots")) await benchSnapshots();
  if (areas.has("driver")) await benchDriver(image.dir, verdict.accelerator);
  if (areas.has("runner")) await benchRunner();
}
if (areas.has("server")) await benchServer();
if (areas.has("manager")) await benchManager();
// Root only: namespaces, bridges and nftables need CAP_NET_ADMIN.
if (areas.has("network")) {
  if (process.getuid?.() === 0) await benchNetwork();
  else log("network: skipped (needs root for its namespace)");
}
if (areas.has("guest")) await benchGuestApi();

const table = reportTable();
if (process.argv.includes("--json")) {
  process.stderr.write(`${table}\n`);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  process.stdout.write(`${table}\n`);
}
