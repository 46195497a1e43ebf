import { execFileSync } from 'node:child_process';

/**
 * Builds dist/ before the tests when a source changed since the last build, so tests that run
 * the real CLI (`bin/kube-lc-proxy.js`) exercise the current sources, not a stale build. Every
 * vitest project lists this setup; the first one builds, and the others find the mark in the
 * environment and skip. Nothing rebuilds dist/ while tests run: the `prepare` script that
 * `npx kube-lc-proxy` triggers (the tutorial test) skips a build that is up to date.
 */
export default function setup(): void {
  if (process.env['KLP_TEST_DIST_BUILT'] === '1') return;
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
  process.env['KLP_TEST_DIST_BUILT'] = '1';
}
