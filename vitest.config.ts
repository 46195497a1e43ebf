import { defineConfig } from 'vitest/config';

// Unit and integration tests: pure modules and real sockets on 127.0.0.0/8. No root needed.
// The multi-node cluster-view tests and the demo start 12 to 24 proxy processes, and the churn
// test runs 2,000 clients: they run last and one file at a time (their own project, a later
// group), so that their CPU load does not slow the timing-sensitive gRPC tests that otherwise share
// the machine with them, nor theirs.
const HEAVY = [
  'test/cluster/multi-node.test.ts',
  'test/grpc/demo.test.ts',
  'test/proxy/churn.test.ts',
];
const common = { testTimeout: 30_000, hookTimeout: 30_000 };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...common,
          name: 'unit',
          globalSetup: ['vitest.global-setup.ts'],
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**', 'node_modules/**', ...HEAVY],
          // Most time goes to waiting on sockets and timers (60 s gRPC runs), not CPU: run more
          // test files at once than there are cores.
          maxWorkers: 4,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...common,
          name: 'heavy',
          globalSetup: ['vitest.global-setup.ts'],
          include: HEAVY,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
