// Builds dist/ from src/ with tsc: removes dist/ first (no output of a deleted source survives),
// then writes a stamp once the build succeeded.
//
// `--if-stale` builds only when a source is newer than the stamp. npm runs the `prepare` script
// not only on `npm ci` but also when `npx kube-lc-proxy` installs this project into its cache
// (the first time in each clone): that run must not delete a dist/ that a running proxy or a test
// is loading from. Plain JavaScript, so that any Node.js can run it.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const STAMP = join('dist', '.build-stamp');

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function stale() {
  if (!existsSync(STAMP)) return true;
  const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
  return Math.max(...inputs.map(newestMtime)) > statSync(STAMP).mtimeMs;
}

if (process.argv.includes('--if-stale') && !stale()) process.exit(0);
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
writeFileSync(STAMP, `${new Date().toISOString()}\n`);
