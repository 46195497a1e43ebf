/**
 * The cluster view end to end: three node namespaces, each with its own proxy (k8s source,
 * iptables intercept) and its own client pods, one stand-in API server, and the backends on the
 * first node. The nodes are wired to each other with veth pairs and routes to each other's pod
 * CIDR, so a proxy reaches every backend and every peer. Peers are listed with `--peers` (the
 * nodes' bridge addresses): finding them through the API is not built yet.
 */
import { describe, expect, it } from 'vitest';
import { canUseNetns, setupHarness } from './harness/index.js';
import { spreadClientsThenScaleOut, startThreeNodes } from './support/cluster-view-scenario.js';
import { servicePortName, waitForSync } from './support/cluster.js';
import { metricSum, startProxy, type ProxyProcess } from './support/proxy.js';
import { waitUntil } from './support/wait.js';

describe.runIf(canUseNetns())('cluster view over three nodes (k8s source, iptables)', () => {
  const harness = setupHarness();

  it('clients spread over the nodes balance cluster-wide after a scale-out; no RPC fails', async () => {
    const h = harness();
    const { c, nodes, secretFile, backends, svc } = await startThreeNodes(h, 'cv', '10.96.0.30');
    const peers = nodes.map((n) => `${n.bridgeIP}:9901`).join(',');
    const proxies: ProxyProcess[] = [];
    for (const n of nodes) {
      proxies.push(
        await startProxy(h, n.ns, {
          kubeconfig: c.kubeconfig,
          nodeName: n.ns,
          metricsAddress: `${n.bridgeIP}:9901`,
          args: [
            '--peers',
            peers,
            '--peer-secret-file',
            secretFile,
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
    for (const [i, p] of proxies.entries()) {
      await waitForSync({ ...c, node: nodes[i]! }, p, [servicePortName(svc)]);
    }
    await waitUntil(
      'every proxy uses the cluster view with both peers',
      async () => {
        for (const p of proxies) {
          const m = await p.metrics();
          if (metricSum(m, 'kube_lc_proxy_cluster_view_fresh') !== 1) return false;
          if (metricSum(m, 'kube_lc_proxy_cluster_peers_fresh') !== 2) return false;
        }
        return true;
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );

    // Two client pods per node, then a scale-out that only the cluster view balances.
    const rebalanceDrains = await spreadClientsThenScaleOut({
      h,
      c,
      nodes,
      backends,
      svc,
      proxies,
      tag: 'cv',
    });
    // About the minimum: 2 moves are needed.
    expect(rebalanceDrains).toBeGreaterThanOrEqual(2);
    expect(rebalanceDrains).toBeLessThanOrEqual(4);
  });
});
