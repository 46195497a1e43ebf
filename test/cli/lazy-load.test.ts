import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The built modules (vitest.global-setup.ts builds dist/ first).
const dist = (path: string) => new URL(`../../dist/${path}`, import.meta.url).href;

/**
 * Imports `modules` in a fresh Node.js process and returns every specifier starting with
 * `@kubernetes/client-node` that was resolved meanwhile, through a documented module hook.
 */
function clientNodeLoads(modules: readonly string[]): string[] {
  const hook = `import { registerHooks } from 'node:module';
registerHooks({ resolve(spec, ctx, next) {
  if (spec.startsWith('@kubernetes/client-node')) process.stdout.write('LOADED ' + spec + '\\n');
  return next(spec, ctx);
} });`;
  const script = modules.map((m) => `await import(${JSON.stringify(m)});`).join('\n');
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      `data:text/javascript,${encodeURIComponent(hook)}`,
      '--input-type=module',
      '-e',
      script,
    ],
    { encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 30_000 },
  );
  return out.split('\n').filter((l) => l.startsWith('LOADED '));
}

describe('lazy loading', () => {
  it('`run` with a file source loads no @kubernetes/client-node (the daemon, the elector, the data path)', () => {
    expect(
      clientNodeLoads([
        dist('cli/index.js'),
        dist('cli/run.js'),
        dist('daemon/daemon.js'),
        dist('cluster/elector.js'),
        dist('dataplane/worker-plane.js'),
      ]),
    ).toEqual([]);
  });

  it('the k8s source does load it (the check sees a load when there is one)', () => {
    expect(clientNodeLoads([dist('source/k8s.js')]).length).toBeGreaterThan(0);
  });
});
