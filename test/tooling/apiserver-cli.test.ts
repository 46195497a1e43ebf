/** `npm run apiserver`: the stand-in on its own (test/support/apiserver/cli.ts). */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

function cli(args: readonly string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['test/support/apiserver/cli.ts', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('npm run apiserver', () => {
  it.each([
    [[], '--kubeconfig FILE is required'],
    [['--kubeconfig', 'x.yaml', '--port', 'http'], '--port: expected 0..65535, got "http"'],
    [['--kubeconfig', 'x.yaml', '--host', '0.0.0.0'], '--host: expected a loopback address'],
    [['--kubeconfig', 'x.yaml', '--bogus'], "Unknown option '--bogus'"],
  ])('%j exits 2 naming the problem, with the usage', (args, message) => {
    const r = cli(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('usage: npm run apiserver -- --kubeconfig FILE');
  });
});

describe('the stand-in API server stays out of what ships', () => {
  it('package.json files and the Dockerfile COPY lines leave test/ out; npm run apiserver points into test/', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as {
      files: string[];
      scripts: Record<string, string>;
    };
    expect(pkg.files.some((f) => f.startsWith('test'))).toBe(false);
    expect(pkg.scripts['apiserver']).toBe('node test/support/apiserver/cli.ts');
    const dockerfile = await readFile('Dockerfile', 'utf8');
    const copies = dockerfile.split('\n').filter((l) => /^COPY\s/.test(l));
    expect(copies.length).toBeGreaterThan(0);
    expect(copies.some((l) => /\btest\b/.test(l))).toBe(false);
    expect(await readFile('.dockerignore', 'utf8')).toMatch(/^test\/$/m);
  });
});
