import { defineConfig } from 'vitest/config';

// Unit and integration tests: pure modules and real sockets on 127.0.0.0/8. No root needed.
export default defineConfig({
  test: {
    globalSetup: ['vitest.global-setup.ts'],
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', 'node_modules/**'],
    // Most time goes to waiting on sockets and timers (60 s gRPC runs), not CPU: run more test
    // files at once than there are cores.
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
