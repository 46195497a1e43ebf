import { execFileSync } from 'node:child_process';

/**
 * Builds dist/ once before the tests, so tests that run the real CLI (`bin/kube-lc-proxy.js`)
 * exercise the current sources, not a stale build.
 */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
