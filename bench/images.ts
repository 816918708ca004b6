// Image build: cold (empty cache, packages from the archive) and cached (the whole CLI run).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage } from "../src/images/build-image.ts";
import { log, median, results, runCli, timed } from "./measure.ts";

const CACHED_BUILD_RUNS = 5;

export async function benchImages(): Promise<void> {
  const coldCache = await mkdtemp(join(tmpdir(), "corral-bench-cache-"));
  const saved = process.env.XDG_CACHE_HOME;
  try {
    process.env.XDG_CACHE_HOME = coldCache;
    log("image build, cold (empty cache)...");
    results.imageBuildColdS = (await timed(() => buildImage("debian-12"))) / 1000;
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;

    log(`\`corral image build\`, cached, ${CACHED_BUILD_RUNS} runs...`);
    const cached: number[] = [];
    for (let i = 0; i < CACHED_BUILD_RUNS; i++) {
      cached.push(await timed(() => runCli(["image", "build"], { XDG_CACHE_HOME: coldCache })));
    }
    results.imageBuildCachedMedianS = median(cached) / 1000;
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
    await rm(coldCache, { recursive: true, force: true });
  }
}
