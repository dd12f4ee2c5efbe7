import { defineConfig } from "vitest/config";

// Tests that measure admission rates of real replica processes over wall-clock time; they run
// on their own, one file at a time, so the rest of the suite does not starve them of CPU on a
// 2-core machine (they assert timing bounds from docs/design.md).
const TIMING = [
  "test/mesh/convergence.test.ts",
  "test/mesh/restart.test.ts",
  "test/mesh/partition.test.ts",
  "test/mesh/durable-restart.test.ts",
  "test/mesh/config-rollout.test.ts",
  "test/mesh/removed-policy.test.ts",
  "test/mesh/strict.test.ts",
  "test/mesh/share-mode.test.ts",
  "test/mesh/silent-cut.test.ts",
  "test/server/stalled-replica.test.ts",
  // A real Prometheus scraping a live mesh every second and evaluating alert rules against it.
  "test/observability/live-prometheus.test.ts",
];

export default defineConfig({
  test: {
    // Servers bind loopback ports and some tests spawn processes: isolate files in forks.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // A server started from a config file in a test must not keep its state in ./data/<node> of
    // the repository, where the next run would load it: snapshots are off unless a test gives a
    // directory (test/support/process.ts gives spawned processes a fresh one).
    env: { TOKENMESH_DATA_DIR: "off" },
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["test/**/*.test.ts", "clients/typescript/test/**/*.test.ts"], exclude: TIMING },
      },
      {
        extends: true,
        test: { name: "timing", include: TIMING, fileParallelism: false },
      },
    ],
  },
});
