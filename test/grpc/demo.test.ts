import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

interface Report {
  failedRpcs: number;
  convergeSeconds: number | null;
  finalSkew: number;
  drainsByReason: Record<string, number>;
  connectionsAtEnd: Record<string, number>;
}

/** Runs `kube-lc-proxy demo --json` and parses the JSON object on its last line. */
async function demo(args: string[]): Promise<{ code: number | null; report: Report }> {
  const child = spawn(process.execPath, ['bin/kube-lc-proxy.js', 'demo', '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (err += String(d)));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const last = out.trim().split('\n').pop() ?? '';
  try {
    return { code, report: JSON.parse(last) as Report };
  } catch {
    throw new Error(`no JSON report (exit ${code}): ${err}\n${out.slice(-2000)}`);
  }
}

// The demo binds 127.0.100.0/24: the two runs must not overlap.
describe('kube-lc-proxy demo', () => {
  it('converges to skew <= 1.1 within 10 s of the scale-out with 0 failed RPCs', async () => {
    const { code, report } = await demo(['--duration', '20s']);
    expect(code).toBe(0);
    expect(report.failedRpcs).toBe(0);
    expect(report.convergeSeconds).not.toBeNull();
    expect(report.convergeSeconds as number).toBeLessThanOrEqual(10);
    expect(report.finalSkew).toBeLessThanOrEqual(1.1);
    expect(report.drainsByReason.rebalance ?? 0).toBeGreaterThan(0);
  }, 60_000);

  it('--no-drain leaves the backends added later (almost) without connections', async () => {
    const { code, report } = await demo(['--duration', '20s', '--no-drain']);
    expect(code).toBe(0);
    expect(report.convergeSeconds).toBeNull();
    // b3 and b4 come with the scale-out, b5 with the replacement; 50 clients, 2 backends first.
    const late =
      (report.connectionsAtEnd.b5 ?? 0) +
      Math.min(report.connectionsAtEnd.b3 ?? 0, report.connectionsAtEnd.b4 ?? 0);
    expect(report.connectionsAtEnd.b2).toBeGreaterThanOrEqual(20);
    expect(report.connectionsAtEnd.b5 ?? 0).toBeLessThanOrEqual(2);
    expect(late).toBeLessThan(20);
    expect(report.drainsByReason.rebalance).toBeUndefined();
  }, 60_000);
});
