import { afterAll, describe, expect, it } from 'vitest';
import type { EchoClientHandle } from '../support/grpc.js';
import type { LoadResult } from '../support/grpc.js';
import { waitFor } from '../support/backends.js';
import { EchoClientHandle as Client } from '../support/grpc.js';
import { loadUntil, startClusterNodes, type ClusterNodes } from '../support/cluster-nodes.js';
import { formatStatus } from '../../src/cli/status-format.js';

// Addresses of this file: ClusterIPs 127.0.113.0/24, metrics 127.0.114.0/24, backends
// 127.0.115.0/24.
const INTERVAL_MS = 1000;
let nodes: ClusterNodes | undefined;
afterAll(async () => {
  await nodes?.close();
});

describe('cluster view: a peer stops and comes back', () => {
  it('the others go on with what they have, say so in metrics and status, fall back when no peer answers, and recover within 2 sync intervals; no RPC fails', async () => {
    nodes = await startClusterNodes({
      vipNet: '127.0.113',
      metricsNet: '127.0.114',
      backendNet: '127.0.115',
      nodes: 3,
      backends: 3,
      initialEndpoints: 3,
      clusterView: true,
      extraArgs: ['--cluster-sync-interval', `${INTERVAL_MS}ms`, '--max-connection-age', '0'],
    });
    const n = nodes;
    const proxy = (i: number) => {
      const p = n.proxies[i];
      if (p === undefined) throw new Error(`node ${i} not running`);
      return p;
    };
    const fresh = async (i: number) => proxy(i).metric('kube_lc_proxy_cluster_view_fresh');
    const peerUp = async (i: number, j: number) =>
      proxy(i).metric('kube_lc_proxy_cluster_peer_up', { peer: n.metricsAddress(j) });
    // Clients on nodes 0 and 1, each stopped before its own node is (a client loses its node's
    // proxy, which is not the cluster view's business).
    const stop = [false, false];
    const clients: EchoClientHandle[] = [new Client(n.vip(0)), new Client(n.vip(1))];
    const load: Promise<LoadResult>[] = clients.map((c, i) =>
      loadUntil(c, 20, 50_000, () => stop[i] === true),
    );
    try {
      await waitFor('node 0 uses the view', async () => (await fresh(0)) === 1, 10_000);
      await waitFor('node 0 sees node 2', async () => (await peerUp(0, 2)) === 1, 10_000);

      // Node 2 stops: nodes 0 and 1 say so, and go on with the view of node 1.
      await proxy(2).stop();
      await waitFor('node 0 sees node 2 down', async () => (await peerUp(0, 2)) === 0, 10_000);
      expect(await fresh(0)).toBe(1);
      expect(
        await proxy(0).metricSum('kube_lc_proxy_cluster_exchanges_total', { result: 'error' }),
      ).toBeGreaterThan(0);
      // Its report ages out of the view after 3 intervals.
      await waitFor(
        'node 2 out of the view',
        async () => (await proxy(0).metric('kube_lc_proxy_cluster_peers_fresh')) === 1,
        10_000,
      );
      expect(await proxy(0).metric('kube_lc_proxy_cluster_fallbacks_total')).toBe(0);

      // Node 2 is back: within 2 sync intervals of its readiness, node 0 counts it again.
      await n.startNode(2);
      const back = Date.now();
      await waitFor(
        'node 2 in the view again',
        async () =>
          (await peerUp(0, 2)) === 1 &&
          (await proxy(0).metric('kube_lc_proxy_cluster_peers_fresh')) === 2,
        2 * INTERVAL_MS + 1000,
      );
      console.log(`node 2 back in node 0's view ${Date.now() - back} ms after it was ready`);

      // No peer answers node 0: it falls back to node-local counts, visibly.
      stop[1] = true;
      await load[1];
      await proxy(1).stop();
      await proxy(2).stop();
      await waitFor('node 0 falls back', async () => (await fresh(0)) === 0, 10_000);
      expect(await proxy(0).metric('kube_lc_proxy_cluster_fallbacks_total')).toBe(1);
      const status = formatStatus(await n.state(0));
      expect(status).toContain('STALE: node-local counts in use');
      expect(status).toContain(`peer ${n.metricsAddress(1)} DOES NOT ANSWER`);

      // One peer back: node 0 uses the view again.
      await n.startNode(1);
      await waitFor(
        'node 0 uses the view again',
        async () => (await fresh(0)) === 1,
        2 * INTERVAL_MS + 1000,
      );
    } finally {
      stop.fill(true);
      const results = await Promise.all(load);
      clients.forEach((c) => c.close());
      expect(results.flatMap((r) => [...r.errors.keys()])).toEqual([]);
      expect(results.reduce((s, r) => s + r.failed, 0)).toBe(0);
      expect(results.reduce((s, r) => s + r.ok, 0)).toBeGreaterThan(0);
    }
  }, 60_000);
});
