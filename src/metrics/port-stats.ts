import type { EndpointStats, EndpointStatus } from '../balancer/endpoint-stats.js';
import type { Endpoint, ServicePort } from '../servicetable/types.js';
import {
  addCounters,
  ServicePortCounters,
  type RemotePortFigures,
  type ServicePortProxy,
} from '../proxy/service-port-proxy.js';
import type { AddressInfo } from 'node:net';

/** One endpoint of a Service port, as metrics and /debug/state read it. */
export interface EndpointRow {
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly status: EndpointStatus;
  readonly eligible: boolean;
  readonly weight: number;
  /** Node-wide (every thread's connections). */
  readonly active: number;
  readonly draining: number;
  readonly openStreams: number;
  readonly total: number;
  readonly connectFailures: ReadonlyMap<string, number>;
  /** Bytes of ended connections plus open ones now. */
  readonly bytesClientToServer: number;
  readonly bytesServerToClient: number;
}

/**
 * The read-only figures of one Service port: what the metrics and /debug/state read, and
 * nothing else. Node-wide: this thread's connections plus, with worker threads, theirs as of
 * their last snapshot (counts of connections are live, from the shared counts).
 */
export interface PortStats {
  readonly servicePort: string;
  readonly spec: ServicePort;
  readonly address: AddressInfo | undefined;
  readonly listening: boolean;
  /** A client ever connected (ports never used have no per-port series by default). */
  readonly used: boolean;
  readonly counters: ServicePortCounters;
  readonly connections: number;
  /** Bytes client→server and server→client, open connections included. */
  readonly bytes: readonly [number, number];
  readonly endpoints: readonly EndpointRow[];
}

function addEntries<K>(into: Map<K, number>, from: Iterable<[K, number]>): void {
  for (const [k, n] of from) into.set(k, (into.get(k) ?? 0) + n);
}

/** This thread's counters plus the workers'. */
function mergedCounters(p: ServicePortProxy, remote: RemotePortFigures): ServicePortCounters {
  const out = new ServicePortCounters();
  if (p.hasCounters) addCounters(out, p.counters);
  addCounters(out, remote.counters);
  return out;
}

const EMPTY_COUNTERS = new ServicePortCounters();

/**
 * The stats view of `p` now. Its endpoint rows and counters are worked out when first read
 * (most Service ports of a large node are idle and most metrics read neither).
 */
export function portStats(p: ServicePortProxy): PortStats {
  return new PortStatsView(p);
}

class PortStatsView implements PortStats {
  readonly #p: ServicePortProxy;
  #endpoints: EndpointRow[] | undefined;
  #counters: ServicePortCounters | undefined;
  #live: { total: [number, number]; byEndpoint: Map<EndpointStats, [number, number]> } | undefined;

  constructor(p: ServicePortProxy) {
    this.#p = p;
  }

  get servicePort(): string {
    return this.#p.servicePort;
  }
  get spec(): ServicePort {
    return this.#p.spec;
  }
  get address(): AddressInfo | undefined {
    return this.#p.address;
  }
  get listening(): boolean {
    return this.#p.listening;
  }
  get used(): boolean {
    return this.#p.used;
  }
  get connections(): number {
    return this.#p.connections.size + (this.#p.remote?.connections ?? 0);
  }

  get counters(): ServicePortCounters {
    const p = this.#p;
    this.#counters ??=
      p.remote !== undefined
        ? mergedCounters(p, p.remote)
        : p.hasCounters
          ? p.counters
          : EMPTY_COUNTERS;
    return this.#counters;
  }

  get bytes(): readonly [number, number] {
    const c = this.counters;
    const [c2s, s2c] = this.#liveBytes().total;
    return [c.bytesClientToServer + c2s, c.bytesServerToClient + s2c];
  }

  /** Live bytes of this thread's connections, per endpoint and in all. */
  #liveBytes(): { total: [number, number]; byEndpoint: Map<EndpointStats, [number, number]> } {
    if (this.#live !== undefined) return this.#live;
    const byEndpoint = new Map<EndpointStats, [number, number]>();
    const total: [number, number] = [0, 0];
    for (const c of this.#p.connections) {
      total[0] += c.bytesClientToServer;
      total[1] += c.bytesServerToClient;
      if (c.endpoint === undefined) continue;
      const b = byEndpoint.get(c.endpoint) ?? [0, 0];
      b[0] += c.bytesClientToServer;
      b[1] += c.bytesServerToClient;
      byEndpoint.set(c.endpoint, b);
    }
    this.#live = { total, byEndpoint };
    return this.#live;
  }

  get endpoints(): readonly EndpointRow[] {
    if (this.#endpoints !== undefined) return this.#endpoints;
    const p = this.#p;
    const remote = p.remote;
    const live = this.#liveBytes().byEndpoint;
    p.refreshWeights();
    const rows: EndpointRow[] = [];
    for (const ep of p.endpointStats()) {
      const b = live.get(ep) ?? [0, 0];
      const r = remote?.endpoints.get(ep.key);
      let failures = ep.connectFailures;
      if (r !== undefined && r.connectFailures.size > 0) {
        const m = new Map(failures);
        addEntries(m, r.connectFailures);
        failures = m;
      }
      rows.push({
        key: ep.key,
        endpoint: ep.endpoint,
        status: ep.status,
        eligible: ep.eligible,
        weight: ep.weight,
        active: ep.active,
        draining: ep.draining,
        openStreams: ep.openStreams,
        total: ep.total + (r?.total ?? 0),
        connectFailures: failures,
        bytesClientToServer: ep.bytesClientToServer + b[0] + (r?.bytesClientToServer ?? 0),
        bytesServerToClient: ep.bytesServerToClient + b[1] + (r?.bytesServerToClient ?? 0),
      });
    }
    this.#endpoints = rows;
    return rows;
  }
}
