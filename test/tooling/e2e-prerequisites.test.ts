/** `npm run test:e2e` says in one line what is missing (test/e2e/prerequisites.ts). */
import { spawnSync } from 'node:child_process';
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
