import type { DebugState } from '../metrics/state.js';

function pad(s: string | number, n: number): string {
  const t = String(s);
  return t.length >= n ? `${t} ` : t + ' '.repeat(n - t.length);
}

/**
 * The balance table as `kube-lc-proxy status` prints it, in the manner of `ipvsadm -Ln`: one
 * line per Service port, then one per endpoint.
 */
export function formatStatus(state: DebugState): string {
  const lines: string[] = [];
  lines.push(
    `kube-lc-proxy: ${state.ready ? 'ready' : 'NOT READY'}, service table version ${state.tableVersion}`,
  );
  const cluster = state.cluster;
  if (cluster !== undefined) {
    const fresh = cluster.peers.filter((p) => p.fresh).length;
    const age =
      cluster.viewAgeMs === null ? 'none yet' : `${(cluster.viewAgeMs / 1000).toFixed(1)}s old`;
    lines.push(
      cluster.mode === 'cluster'
        ? `cluster view: node ${cluster.node}, in use (${age}, ${fresh} peer(s) fresh, ${cluster.fallbacks} fallback(s))`
        : `cluster view: node ${cluster.node}, STALE: node-local counts in use (${age}, ${cluster.fallbacks} fallback(s))`,
    );
    if (cluster.aggregator !== undefined)
      lines.push(`  aggregator ${cluster.aggregator ?? 'UNKNOWN (no Lease holder yet)'}`);
    for (const p of cluster.peerAddresses)
      lines.push(`  peer ${p.address} ${p.up ? 'answers' : 'DOES NOT ANSWER'}`);
  }
  const w = state.workers;
  if (w !== undefined) {
    const restarts = Object.values(w.restarts).reduce((a, b) => a + b, 0);
    lines.push(
      `workers: ${w.ready}/${w.configured} ready, connections ${w.perWorker.map((p) => p.connections).join('/')}` +
        (restarts > 0 ? `, ${restarts} replaced (${w.lostConnections} connections lost)` : ''),
    );
  }
  const showCluster = cluster !== undefined;
  lines.push(
    `${pad('Prot', 5)}${pad('ServicePort', 32)}${pad('ClusterIP:Port', 22)}${pad('Listen', 22)}Skew${showCluster ? '  ClusterSkew' : ''}`,
  );
  lines.push(
    `  -> ${pad('Endpoint', 24)}${pad('State', 13)}${pad('Weight', 8)}${pad('Active', 8)}${pad('Draining', 10)}${pad('Total', 8)}${showCluster ? pad('Streams', 9) + 'Cluster' : 'Streams'}`,
  );
  for (const sp of state.servicePorts) {
    lines.push(
      `${pad('TCP', 5)}${pad(sp.servicePort, 32)}${pad(`${sp.clusterIP}:${sp.port}`, 22)}${pad(sp.listen ?? '(not bound)', 22)}${sp.skew.toFixed(2)}${showCluster ? `  ${sp.cluster === undefined ? '-' : sp.cluster.skew.toFixed(2)}` : ''}`,
    );
    for (const ep of sp.endpoints) {
      const state = ep.state === 'ready' && !ep.eligible ? 'ready*' : ep.state;
      lines.push(
        `  -> ${pad(ep.endpoint, 24)}${pad(state, 13)}${pad(ep.weight, 8)}${pad(ep.active, 8)}${pad(ep.draining, 10)}${pad(ep.total, 8)}${showCluster ? pad(ep.openStreams, 9) + (ep.clusterActive ?? '-') : ep.openStreams}`,
      );
    }
  }
  if (
    state.servicePorts.some((sp) => sp.endpoints.some((ep) => ep.state === 'ready' && !ep.eligible))
  ) {
    lines.push('* ready but not chosen for this node (internalTrafficPolicy or topology hints)');
  }
  return `${lines.join('\n')}\n`;
}
