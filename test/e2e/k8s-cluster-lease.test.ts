/**
 * The cluster view with `--source k8s` and no `--peers`: the proxies of three wired node
 * namespaces elect an aggregator with a Lease in the stand-in API server, the followers post
 * their reports to it, and clients spread over the nodes balance cluster-wide after a scale-out.
 */
import { describe, expect, it } from 'vitest';
import { canUseNetns, setupHarness } from './harness/index.js';
import { spreadClientsThenScaleOut, startThreeNodes } from './support/cluster-view-scenario.js';
import { servicePortName, waitForSync } from './support/cluster.js';
import { metricSum, startProxy, type ProxyProcess } from './support/proxy.js';
import { waitUntil } from './support/wait.js';

describe.runIf(canUseNetns())(
  'cluster view through a Lease-elected aggregator (k8s source)',
  () => {
    const harness = setupHarness();

    it('one aggregator, every follower in the view; clients over three nodes balance after a scale-out, no RPC fails', async () => {
      const h = harness();
      const { c, nodes, secretFile, backends, svc } = await startThreeNodes(h, 'cl', '10.96.0.31');
      const proxies: ProxyProcess[] = [];
      for (const n of nodes) {
        proxies.push(
          await startProxy(h, n.ns, {
            kubeconfig: c.kubeconfig,
            nodeName: n.ns,
            metricsAddress: `${n.bridgeIP}:9901`,
            args: [
              '--peer-secret-file',
              secretFile,
              '--cluster-lease-namespace',
              'kube-lc-proxy',
              '--cluster-sync-interval',
              '1s',
              '--max-connection-age',
              '0',
              '--shutdown-grace',
              '2s',
            ],
          }),
        );
      }
      for (const [i, p] of proxies.entries())
        await waitForSync({ ...c, node: nodes[i]! }, p, [servicePortName(svc)]);
      const metric = async (p: ProxyProcess, name: string): Promise<number> =>
        metricSum(await p.metrics(), name);
      await waitUntil(
        'one aggregator, every proxy using the view',
        async () => {
          let aggregators = 0;
          for (const p of proxies) {
            aggregators += await metric(p, 'kube_lc_proxy_cluster_aggregator');
            if ((await metric(p, 'kube_lc_proxy_cluster_view_fresh')) !== 1) return false;
          }
          return aggregators === 1;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      // The Lease names the aggregator and its address.
      const states = await Promise.all(proxies.map((p) => p.state()));
      const names = states.map((s) => s.cluster?.aggregator);
      expect(names.filter((n) => n === 'self')).toHaveLength(1);
      const holder = names.find((n) => n !== 'self');
      expect(names.filter((n) => n !== 'self').every((n) => n === holder)).toBe(true);

      const drains = await spreadClientsThenScaleOut({
        h,
        c,
        nodes,
        backends,
        svc,
        proxies,
        tag: 'cl',
      });
      let leaseErrors = 0;
      for (const p of proxies) {
        const m = await p.metrics();
        leaseErrors += metricSum(m, 'kube_lc_proxy_cluster_lease_requests_total', {
          result: 'error',
        });
      }
      expect(drains).toBeGreaterThanOrEqual(2);
      expect(drains).toBeLessThanOrEqual(4);
      expect(leaseErrors).toBe(0);

      // The aggregator stops: it releases the Lease, one of the others takes it, and both use
      // the view again.
      const aggregator = states.findIndex((s) => s.cluster?.aggregator === 'self');
      await proxies[aggregator]!.stop();
      const rest = proxies.filter((_, i) => i !== aggregator);
      await waitUntil(
        'a new aggregator, both followers using the view',
        async () => {
          let aggregators = 0;
          for (const p of rest) {
            aggregators += await metric(p, 'kube_lc_proxy_cluster_aggregator');
            if ((await metric(p, 'kube_lc_proxy_cluster_view_fresh')) !== 1) return false;
          }
          return aggregators === 1;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
    });
  },
);
