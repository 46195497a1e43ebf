/** `npm run test:e2e` says in one line what is missing (test/e2e/prerequisites.ts). */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { missingPrerequisites, type Probes } from '../e2e/prerequisites.js';

function probes(root: boolean, present: readonly string[]): Probes {
  return { isRoot: () => root, runs: (cmd) => present.includes(cmd) };
}

describe('e2e prerequisites', () => {
  it('passes when everything is there', () => {
    expect(
      missingPrerequisites(probes(true, ['iptables-restore', 'ip', 'sysctl'])),
    ).toBeUndefined();
  });

  it.each([
    [
      'no iptables',
      probes(true, ['ip', 'sysctl']),
      'test:e2e needs root, iptables, iproute2 and sysctl (network namespaces): missing iptables (iptables-restore not found): install with "apt-get install iptables"',
    ],
    [
      'nothing but root',
      probes(true, []),
      'test:e2e needs root, iptables, iproute2 and sysctl (network namespaces): missing iptables (iptables-restore not found), iproute2 (ip not found), sysctl (sysctl not found): install with "apt-get install iptables iproute2 procps"',
    ],
    [
      'not root',
      probes(false, ['iptables-restore', 'ip', 'sysctl']),
      'test:e2e needs root, iptables, iproute2 and sysctl (network namespaces): not root: run "sudo npm run test:e2e"',
    ],
  ])('%s: one line naming it and how to get it', (_name, p, line) => {
    expect(missingPrerequisites(p)).toBe(line);
  });

  it('the global setup, run by Node with a PATH that has none of the tools, exits 1 with that one line', () => {
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "(await import('./test/e2e/prerequisites.ts')).default()"],
      { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' }, timeout: 20_000 },
    );
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(
      'missing iptables (iptables-restore not found), iproute2 (ip not found), sysctl (sysctl not found): install with "apt-get install iptables iproute2 procps"',
    );
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
