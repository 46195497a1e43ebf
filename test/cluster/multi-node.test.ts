import { afterAll, describe, expect, it } from 'vitest';
import type { LoadResult } from '../support/grpc.js';
import { waitFor } from '../support/backends.js';
import {
  clientsPerNode,
  loadUntil,
  skew,
  startClusterNodes,
  type ClusterNodes,
} from '../support/cluster-nodes.js';

// Addresses of this file: ClusterIPs 127.0.110.0/24, metrics 127.0.111.0/24, backends
// 127.0.112.0/24. 12 "nodes", one grpc-js channel each (clients spread over nodes, issue 9).
const NODES = 12;
const open: ClusterNodes[] = [];
afterAll(async () => {
  await Promise.all(open.map((n) => n.close()));
});

/**
 * 12 nodes, 3 backends, then 3 more become ready. Returns the skew counted at the backends
 * after the scale-out, polling up to `waitMs` for skew ≤ 1.2, and the load results.
 */
async function scaleOut(
  clusterView: boolean,
  waitMs: number,
): Promise<{ skew: number; counts: number[]; seconds: number; results: LoadResult[] }> {
  const nodes = await startClusterNodes({
    vipNet: '127.0.110',
    metricsNet: '127.0.111',
    backendNet: '127.0.112',
    nodes: NODES,
    backends: 6,
    initialEndpoints: 3,
    clusterView,
    extraArgs: ['--max-connection-age', '0'],
  });
  open.push(nodes);
  const clients = clientsPerNode(nodes, NODES);
  try {
    let stop = false;
    const load = Promise.all(clients.map((c) => loadUntil(c, 20, 15_000 + waitMs, () => stop)));
    await waitFor(
      'every channel connected',
      () => nodes.counts().reduce((a, b) => a + b) === NODES,
      10_000,
    );
    const t0 = Date.now();
    await nodes.setEndpoints(6);
    let counts = nodes.counts();
    while (Date.now() - t0 < waitMs) {
      counts = nodes.counts();
      if (counts.reduce((a, b) => a + b) === NODES && skew(counts) <= 1.2) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = (Date.now() - t0) / 1000;
    // Load goes on a little after the moves: a failure caused by a drain shows up here.
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    const results = await load;
    return { skew: skew(counts), counts, seconds, results };
  } finally {
    clients.forEach((c) => c.close());
    await nodes.close();
    open.splice(open.indexOf(nodes), 1);
  }
}

describe('cluster view: clients spread over 12 nodes', () => {
  let offSkew = 0;

  it('cluster view off: reports the skew after 3 more backends become ready (the new pods stay idle)', async () => {
    const r = await scaleOut(false, 8_000);
    offSkew = r.skew;
    console.log(`cluster view off: connections per backend ${r.counts}, skew ${r.skew.toFixed(2)}`);
    expect(r.results.reduce((n, x) => n + x.failed, 0)).toBe(0);
    // Node-local least connection cannot see the other nodes: with one connection per node no
    // node rebalances, so the three new backends get nothing.
    expect(r.counts.slice(3)).toEqual([0, 0, 0]);
  }, 60_000);

  it('cluster view on: within 20 s of the scale-out the cluster-wide skew is <= 1.2, 0 failed RPCs', async () => {
    const r = await scaleOut(true, 20_000);
    console.log(
      `cluster view on: connections per backend ${r.counts}, skew ${r.skew.toFixed(2)} after ${r.seconds.toFixed(1)} s (off: ${offSkew.toFixed(2)})`,
    );
    expect(r.skew, `connections per backend ${r.counts}`).toBeLessThanOrEqual(1.2);
    expect(r.results.flatMap((x) => [...x.errors.keys()])).toEqual([]);
    expect(r.results.reduce((n, x) => n + x.failed, 0)).toBe(0);
    if (offSkew > 0) expect(r.skew).toBeLessThan(offSkew);
  }, 60_000);
});

describe('cluster view: clients spread over 24 nodes', () => {
  it('24 nodes, one channel each, 6 backends: the cluster-wide skew reaches <= 1.25 and holds, 0 failed RPCs', async () => {
    const nodes = await startClusterNodes({
      vipNet: '127.0.110',
      metricsNet: '127.0.111',
      backendNet: '127.0.112',
      nodes: 24,
      backends: 6,
      initialEndpoints: 6,
      clusterView: true,
      extraArgs: ['--max-connection-age', '0'],
    });
    open.push(nodes);
    const clients = clientsPerNode(nodes, 24);
    let stop = false;
    try {
      const load = Promise.all(clients.map((c) => loadUntil(c, 20, 45_000, () => stop)));
      await waitFor(
        'every channel connected',
        () => nodes.counts().reduce((a, b) => a + b) === 24,
        15_000,
      );
      const t0 = Date.now();
      const first = nodes.counts();
      let counts = first;
      // Generous bound: convergence takes a few sync intervals; this only stops a broken run.
      while (Date.now() - t0 < 30_000) {
        counts = nodes.counts();
        if (counts.reduce((a, b) => a + b) === 24 && skew(counts) <= 1.25) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const seconds = (Date.now() - t0) / 1000;
      // It holds: a few sync intervals later it is still balanced.
      await new Promise((r) => setTimeout(r, 5000));
      const later = nodes.counts();
      stop = true;
      const results = await load;
      console.log(
        `24 nodes: at connect ${first} (skew ${skew(first).toFixed(2)}), balanced ${counts} after ${seconds.toFixed(1)} s, 5 s later ${later}`,
      );
      expect(skew(counts), `connections per backend ${counts}`).toBeLessThanOrEqual(1.25);
      expect(skew(later), `connections per backend 5 s later ${later}`).toBeLessThanOrEqual(1.25);
      expect(results.flatMap((x) => [...x.errors.keys()])).toEqual([]);
      expect(results.reduce((n, x) => n + x.failed, 0)).toBe(0);
    } finally {
      stop = true;
      clients.forEach((c) => c.close());
      await nodes.close();
      open.splice(open.indexOf(nodes), 1);
    }
  }, 90_000);
});
