import { execFileSync } from 'node:child_process';

/**
 * Builds dist/ once before the tests, so tests that run the real CLI (`bin/kube-lc-proxy.js`)
 * exercise the current sources, not a stale build. Every vitest project lists this setup; the
 * first one builds, and the others find the mark in the environment and skip.
 */
export default function setup(): void {
  if (process.env['KLP_TEST_DIST_BUILT'] === '1') return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  process.env['KLP_TEST_DIST_BUILT'] = '1';
}
