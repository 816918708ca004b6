import { defineConfig } from "vitest/config";

// `corral serve` started by a test (as a child process) never touches the host's own network;
// the networking tests run it inside namespaces they make, with --networks auto.
const env = { CORRAL_NETWORKS: "off" };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          env,
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          env,
          // The vitest example runs here too: it boots VMs, one file at a time like the rest.
          include: ["test/integration/**/*.test.ts", "examples/vitest/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          // Each test boots VMs under TCG on a 2-core machine: one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
