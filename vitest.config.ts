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
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          // Each test boots VMs under TCG on a 2-core machine: one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: "examples",
          include: ["examples/vitest/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 300_000,
        },
      },
    ],
  },
});
