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
  lines.push(
    `${pad('Prot', 5)}${pad('ServicePort', 32)}${pad('ClusterIP:Port', 22)}${pad('Listen', 22)}Skew`,
  );
  lines.push(
    `  -> ${pad('Endpoint', 24)}${pad('State', 13)}${pad('Weight', 8)}${pad('Active', 8)}${pad('Draining', 10)}${pad('Total', 8)}Streams`,
  );
  for (const sp of state.servicePorts) {
    lines.push(
      `${pad('TCP', 5)}${pad(sp.servicePort, 32)}${pad(`${sp.clusterIP}:${sp.port}`, 22)}${pad(sp.listen ?? '(not bound)', 22)}${sp.skew.toFixed(2)}`,
    );
    for (const ep of sp.endpoints) {
      const state = ep.state === 'ready' && !ep.eligible ? 'ready*' : ep.state;
      lines.push(
        `  -> ${pad(ep.endpoint, 24)}${pad(state, 13)}${pad(ep.weight, 8)}${pad(ep.active, 8)}${pad(ep.draining, 10)}${pad(ep.total, 8)}${ep.openStreams}`,
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
