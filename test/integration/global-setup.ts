// Builds the default guest image once before the integration tests (a cache hit when it exists).

import { buildImage } from "../../src/images/build-image.ts";

export default async function setup(): Promise<void> {
  const result = await buildImage("debian-12", {
    onProgress: (event) => {
      if (event.kind !== "info")
        process.stderr.write(`[image ${event.stage}] ${event.kind} ${event.message}\n`);
    },
  });
  process.stderr.write(
    `[image] ${result.image.manifest.id} ${result.wasCached ? "cached" : "built"}\n`,
  );
}
