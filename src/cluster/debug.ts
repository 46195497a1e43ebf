import type { DebugState } from '../metrics/state.js';
import type { ClusterSync } from './sync.js';

/**
 * Adds the cluster view to /debug/state: the view itself (mode, age, peers), and per Service
 * port the cluster-wide skew and each endpoint's cluster-wide active count.
 */
export function withCluster(state: DebugState, cluster: ClusterSync): DebugState {
  const ports = cluster.portStates();
  return {
    ...state,
    cluster: cluster.state(),
    servicePorts: state.servicePorts.map((sp) => {
      const c = ports.get(sp.servicePort);
      if (c === undefined) return sp;
      return {
        ...sp,
        cluster: { skew: Math.round(c.skew * 1000) / 1000, drains: c.drains },
        endpoints: sp.endpoints.map((ep) => ({
          ...ep,
          clusterActive: c.counts.get(ep.endpoint) ?? 0,
        })),
      };
    }),
  };
}
