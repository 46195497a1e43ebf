import type { PortStats } from './port-stats.js';
import type { ClusterState } from '../cluster/sync.js';

/** One endpoint row of /debug/state and `kube-lc-proxy status`. */
export interface EndpointState {
  readonly endpoint: string;
  readonly state: string;
  readonly eligible: boolean;
  readonly weight: number;
  readonly active: number;
  readonly draining: number;
  readonly total: number;
  readonly openStreams: number;
  readonly bytesClientToServer: number;
  readonly bytesServerToClient: number;
  readonly targetRef?: string;
  /** Cluster view on: active connections to this endpoint over every node (this one included). */
  readonly clusterActive?: number;
}

export interface ServicePortState {
  readonly servicePort: string;
  readonly clusterIP: string;
  readonly port: number;
  /** `host:port` the listener is bound to, or null when it is not bound. */
  readonly listen: string | null;
  /** max/mean active connections over eligible endpoints (1 when balanced or idle). */
  readonly skew: number;
  /** A rebalance is draining the excess of the busiest endpoints now. */
  readonly rebalancing: boolean;
  /** Cluster view on and fresh: the cluster-wide skew and this node's share of the last plan. */
  readonly cluster?: { readonly skew: number; readonly drains: number };
  readonly endpoints: readonly EndpointState[];
}

/** The JSON body of /debug/state. */
export interface DebugState {
  readonly ready: boolean;
  readonly tableVersion: number;
  readonly servicePorts: readonly ServicePortState[];
  /** The cluster view, when it is on. */
  readonly cluster?: ClusterState;
  /** The data-path worker threads, when there are any (issue 11). */
  readonly workers?: WorkersState;
}

/** The worker threads in /debug/state: node-wide above, per worker here. */
export interface WorkersState {
  readonly configured: number;
  readonly ready: number;
  /** Workers replaced, by reason. */
  readonly restarts: Readonly<Record<string, number>>;
  readonly lostConnections: number;
  /** Per worker, as of this answer (a worker that did not answer is missing). */
  readonly perWorker: readonly { readonly connections: number; readonly heapUsedBytes: number }[];
}

/** max/mean of active connections over the eligible endpoints; 1 when there are none. */
export function skewOf(
  endpoints: Iterable<{ readonly eligible: boolean; readonly active: number }>,
): number {
  let n = 0;
  let sum = 0;
  let max = 0;
  for (const ep of endpoints) {
    if (!ep.eligible) continue;
    n++;
    sum += ep.active;
    if (ep.active > max) max = ep.active;
  }
  return n === 0 || sum === 0 ? 1 : max / (sum / n);
}

/**
 * Builds the /debug/state view. Service ports that share a key (a retired one whose
 * connections outlive an address change, and its successor) are listed separately.
 */
export function debugState(
  ready: boolean,
  tableVersion: number,
  ports: Iterable<PortStats>,
  rebalancing: (servicePort: string) => boolean = () => false,
): DebugState {
  const servicePorts: ServicePortState[] = [];
  for (const p of ports) {
    const stats = p.endpoints;
    const endpoints: EndpointState[] = [];
    for (const ep of stats) {
      endpoints.push({
        endpoint: ep.key,
        state: ep.status,
        eligible: ep.eligible,
        weight: Math.round(ep.weight * 1000) / 1000,
        active: ep.active,
        draining: ep.draining,
        total: ep.total,
        openStreams: ep.openStreams,
        bytesClientToServer: ep.bytesClientToServer,
        bytesServerToClient: ep.bytesServerToClient,
        ...(ep.endpoint.targetRef !== undefined ? { targetRef: ep.endpoint.targetRef } : {}),
      });
    }
    servicePorts.push({
      servicePort: p.servicePort,
      clusterIP: p.spec.clusterIP,
      port: p.spec.port,
      listen:
        p.address === undefined || !p.listening ? null : `${p.address.address}:${p.address.port}`,
      skew: Math.round(skewOf(stats) * 1000) / 1000,
      rebalancing: rebalancing(p.servicePort),
      endpoints,
    });
  }
  servicePorts.sort((a, b) =>
    a.servicePort < b.servicePort ? -1 : a.servicePort > b.servicePort ? 1 : 0,
  );
  return { ready, tableVersion, servicePorts };
}
