import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

interface ModeReport {
  mode: 'random' | 'node-local' | 'cluster';
  available: boolean;
  note?: string;
  totalRpcs: number;
  failedRpcs: number;
  skewAfterScaleOut: number | null;
  connectionsAfterScaleOut: Record<string, number>;
  connectionsAtEnd: Record<string, number>;
  drainsByReason: Record<string, number>;
  rpcsPerBackend: Record<string, number>;
  servedByBackend: Record<string, number>;
}

interface NodesReport {
  nodes: number;
  clients: number;
  events: string[];
  modes: ModeReport[];
  failedRpcs: number;
}

interface SingleNodeReport {
  failedRpcs: number;
  convergeSeconds: number | null;
  finalSkew: number;
  drainsByReason: Record<string, number>;
}

/** Runs `kube-lc-proxy demo --json` and parses the JSON object on its last line. */
async function demo<T>(args: string[]): Promise<{ code: number | null; report: T; out: string }> {
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
    return { code, report: JSON.parse(last) as T, out };
  } catch {
    throw new Error(`no JSON report (exit ${code}): ${err}\n${out.slice(-2000)}`);
  }
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
const nonZero = (o: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v > 0));

// Addresses of this file: 127.0.100.0/24, the demo's (the runs go one after the other).
describe('kube-lc-proxy demo', () => {
  it('clients on 6 nodes, three ways: 0 failed RPCs, and the backends counted what the clients saw', async () => {
    // 36 s: the scale-out comes at 5.8 s and the rolling update at 18 s, time enough for the
    // cluster view to move the excess even on a busy machine (it takes a few seconds).
    const { code, report, out } = await demo<NodesReport>(['--duration', '36s']);
    expect(code).toBe(0);
    expect(report.failedRpcs).toBe(0);
    expect(report.nodes).toBe(6);
    expect(report.clients).toBe(12);
    expect(report.modes.map((m) => m.mode)).toEqual(['random', 'node-local', 'cluster']);
    for (const m of report.modes.filter((x) => x.available)) {
      expect(m.failedRpcs, m.mode).toBe(0);
      expect(m.totalRpcs, m.mode).toBeGreaterThan(0);
      // What the clients were answered, backend by backend, is what the backends served.
      expect(nonZero(m.rpcsPerBackend), m.mode).toEqual(nonZero(m.servedByBackend));
      expect(sum(m.servedByBackend), m.mode).toBe(m.totalRpcs);
      // Before the rolling update every client held a connection (a drained one may still be
      // closing next to its successor).
      expect(sum(m.connectionsAfterScaleOut), m.mode).toBeGreaterThanOrEqual(report.clients);
    }
    const [random, nodeLocal, cluster] = report.modes as [ModeReport, ModeReport, ModeReport];
    // kube-proxy and node-local least connection move nothing after the scale-out: with 2
    // clients per node, no node holds enough connections to start its own rebalance.
    for (const m of [random, nodeLocal]) {
      expect(m.available).toBe(true);
      expect(sum(m.connectionsAfterScaleOut), m.mode).toBe(report.clients);
      expect(m.connectionsAfterScaleOut.b3, m.mode).toBe(0);
      expect(m.connectionsAfterScaleOut.b4, m.mode).toBe(0);
      expect(m.drainsByReason.rebalance, m.mode).toBeUndefined();
    }
    expect(sum(random.drainsByReason)).toBe(0);
    // The proxies drain every connection of the terminating backend, one drain each.
    expect(nodeLocal.drainsByReason.endpoint_terminating).toBe(
      nodeLocal.connectionsAfterScaleOut.b1,
    );
    if (cluster.available) {
      // 12 connections over 4 backends: 3 each, or one off.
      expect(cluster.skewAfterScaleOut as number).toBeLessThanOrEqual(1.34);
      expect(cluster.drainsByReason.rebalance ?? 0).toBeGreaterThan(0);
    } else {
      expect(cluster.note).toMatch(/--peers/);
    }
    // It says what happens as it happens.
    expect(report.events.some((e) => /scale out to 4 backends/.test(e))).toBe(true);
    expect(report.events.some((e) => /backend 1 terminating/.test(e))).toBe(true);
    expect(report.events.some((e) => /drained with GOAWAY \(endpoint_terminating/.test(e))).toBe(
      true,
    );
    expect(out).toMatch(/kube-lc-proxy demo report/);
  }, 120_000);

  it('--single-node converges after the scale-out with 0 failed RPCs', async () => {
    const { code, report } = await demo<SingleNodeReport>(['--single-node', '--duration', '12s']);
    expect(code).toBe(0);
    expect(report.failedRpcs).toBe(0);
    expect(report.convergeSeconds).not.toBeNull();
    expect(report.finalSkew).toBeLessThanOrEqual(1.1);
    expect(report.drainsByReason.rebalance ?? 0).toBeGreaterThan(0);
  }, 60_000);

  it('refuses an unknown mode before binding anything', async () => {
    const child = spawn(
      process.execPath,
      ['bin/kube-lc-proxy.js', 'demo', '--modes', 'random,round-robin'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d) => (err += String(d)));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(2);
    expect(err).toMatch(/--modes: unknown mode round-robin/);
  });
});
