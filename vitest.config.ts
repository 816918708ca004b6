import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
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
