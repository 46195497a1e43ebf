import { defineConfig } from 'vitest/config';

// End-to-end tests: network namespaces and iptables. Root only; one file at a time because
// every file builds its own namespaces and runs its own proxy.
export default defineConfig({
  test: {
    // Prerequisites first: without root, iptables or iproute2, stop before building anything.
    globalSetup: ['test/e2e/prerequisites.ts', 'vitest.global-setup.ts'],
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
