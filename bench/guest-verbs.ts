// On a booted guest: the command round trip, how soon waitForUnit returns after the unit became
// active (on the guest's clock, brought to the host's), and copy speed both ways (random bytes,
// the copy back checked by sha256).

import { createHash, randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unitObjectPath } from "../src/machine/guest-scripts.ts";
import type { Machine } from "../src/machine/machine.ts";
import { log, median, results, timed } from "./measure.ts";

const ROUND_TRIPS = 200;
const UNIT_WAITS = 9;
const CLOCK_READS = 10;
const COPY_MIB = 256;

function hostNowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/**
 * The guest's realtime clock minus the host's, in µs, NTP-style: of several reads of the guest
 * clock, the one with the shortest round trip, taken as read halfway; error ≤ half that trip.
 */
async function guestClockOffset(machine: Machine): Promise<{ offsetUs: number; errorMs: number }> {
  let best = { offsetUs: 0, tripUs: Number.POSITIVE_INFINITY };
  for (let j = 0; j < CLOCK_READS; j++) {
    const sent = hostNowUs();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    const guest = Number(await machine.succeed("echo ${EPOCHREALTIME/./}"));
    const received = hostNowUs();
    if (received - sent < best.tripUs) {
      best = { offsetUs: guest - (sent + received) / 2, tripUs: received - sent };
    }
  }
  return { offsetUs: best.offsetUs, errorMs: best.tripUs / 2000 };
}

export async function benchGuestVerbs(machine: Machine): Promise<void> {
  await machine.waitForUnit("multi-user.target");
  log(`succeed("true"), ${ROUND_TRIPS} runs...`);
  const roundTrips: number[] = [];
  for (let j = 0; j < ROUND_TRIPS; j++) roundTrips.push(await timed(() => machine.succeed("true")));
  results.succeedTrueMedianMs = median(roundTrips);

  log(`waitForUnit latency, ${UNIT_WAITS} units...`);
  const latencies: number[] = [];
  const clockErrors: number[] = [];
  for (let j = 0; j < UNIT_WAITS; j++) {
    const unit = `bench-${j}.service`;
    const clock = await guestClockOffset(machine);
    clockErrors.push(clock.errorMs);
    await machine.succeed(
      `systemd-run --no-block --unit=${unit} -p ExecStartPre='/bin/sleep 1' sleep 600`,
    );
    await machine.waitForUnit(unit);
    const returnedUs = hostNowUs();
    const property = await machine.succeed(
      `busctl get-property org.freedesktop.systemd1 ${unitObjectPath(unit)} org.freedesktop.systemd1.Unit ActiveEnterTimestamp`,
    );
    const activeUs = Number(property.split(" ")[1]);
    latencies.push((returnedUs - (activeUs - clock.offsetUs)) / 1000);
  }
  results.waitForUnitLatencyMedianMs = median(latencies);
  results.waitForUnitClockErrorMaxMs = Math.max(...clockErrors);

  log(`copyFromHost and copyFromVm of ${COPY_MIB} MiB...`);
  const file = join(tmpdir(), `corral-bench-${process.pid}.bin`);
  const back = `${file}.back`;
  const data = randomBytes(COPY_MIB * 1024 * 1024);
  const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
  await writeFile(file, data);
  try {
    const inMs = await timed(() => machine.copyFromHost(file, "/root/bench.bin"));
    results.copyFromHostMiBPerS = COPY_MIB / (inMs / 1000);
    const outMs = await timed(() => machine.copyFromVm("/root/bench.bin", back));
    results.copyFromVmMiBPerS = COPY_MIB / (outMs / 1000);
    if (sha256(await readFile(back)) !== sha256(data)) throw new Error("copy: the sha256 differs");
    await machine.succeed("rm -f /root/bench.bin");
  } finally {
    await rm(file, { force: true });
    await rm(back, { force: true });
  }
}
