import { describe, expect, it } from 'vitest';
import type { Check } from './check.js';
import { imageChecks } from './checks-image.js';
import { kitChecks } from './checks-kit.js';
import { podChecks } from './checks-pod.js';
import { securityChecks } from './checks-security.js';
import { loadDeployFiles, type DeployFiles } from './load.js';

// Properties of daemonset/, Dockerfile and .dockerignore (docs/deploy.md explains each choice).
// Every check runs twice: on the files as they are (no findings), and on copies broken on
// purpose (at least one finding each), so that no check can pass vacuously.
const checks: Check[] = [...kitChecks, ...securityChecks, ...podChecks, ...imageChecks];

function findings(c: Check, f: DeployFiles): string[] {
  try {
    return c.check(f);
  } catch (e) {
    return [`check could not run: ${e instanceof Error ? e.message : String(e)}`];
  }
}

describe('deployment artefacts', () => {
  it.each(checks)('$name', (c) => {
    expect(findings(c, loadDeployFiles())).toEqual([]);
  });
});

describe('each check fails on a broken copy', () => {
  const rows = checks.flatMap((c) =>
    Object.entries(c.breaks).map(([how, brk]) => ({ name: c.name, how, c, brk })),
  );

  it('every check has at least one way to break it', () => {
    expect(checks.filter((c) => Object.keys(c.breaks).length === 0).map((c) => c.name)).toEqual([]);
  });

  it.each(rows)('$name / $how', ({ c, brk }) => {
    const f = loadDeployFiles();
    brk(f);
    expect(findings(c, f)).not.toEqual([]);
  });
});
