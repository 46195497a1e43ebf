import {
  addCounters,
  ServicePortCounters,
  type RemotePortFigures,
} from '../proxy/service-port-proxy.js';
import type { WorkerSnapshot } from './protocol.js';

/** The workers' figures summed: per Service port, and over the node. */
export interface MergedFigures {
  readonly ports: Map<string, RemotePortFigures>;
  readonly faults: Map<string, number>;
  readonly ages: Map<string, number[]>;
  readonly drainSeconds: Map<string, number[]>;
}

function add<K>(into: Map<K, number>, from: Iterable<readonly [K, number]>): void {
  for (const [k, n] of from) into.set(k, (into.get(k) ?? 0) + n);
}

function concat(into: Map<string, number[]>, from: Iterable<[string, number[]]>): void {
  for (const [k, list] of from) {
    const have = into.get(k);
    if (have === undefined) into.set(k, [...list]);
    else for (const v of list) have.push(v);
  }
}

/** Sums the snapshots of every worker (see WorkerPlane.snapshot). */
export function mergeWorkerSnapshots(snapshots: readonly WorkerSnapshot[]): MergedFigures {
  const ports = new Map<
    string,
    {
      counters: ServicePortCounters;
      connections: number;
      faults: Map<string, number>;
      endpoints: Map<
        string,
        {
          total: number;
          connectFailures: Map<string, number>;
          bytesClientToServer: number;
          bytesServerToClient: number;
        }
      >;
    }
  >();
  const faults = new Map<string, number>();
  const ages = new Map<string, number[]>();
  const drainSeconds = new Map<string, number[]>();
  for (const s of snapshots) {
    add(faults, s.faults);
    concat(ages, s.ages);
    concat(drainSeconds, s.drainSeconds);
    for (const p of s.ports) {
      let m = ports.get(p.servicePort);
      if (m === undefined) {
        m = {
          counters: new ServicePortCounters(),
          connections: 0,
          faults: new Map(),
          endpoints: new Map(),
        };
        ports.set(p.servicePort, m);
      }
      addCounters(m.counters, p);
      m.connections += p.connections;
      add(m.faults, p.faults);
      for (const [key, total, failures, c2s, s2c] of p.endpoints) {
        let e = m.endpoints.get(key);
        if (e === undefined) {
          e = {
            total: 0,
            connectFailures: new Map(),
            bytesClientToServer: 0,
            bytesServerToClient: 0,
          };
          m.endpoints.set(key, e);
        }
        e.total += total;
        add(e.connectFailures, failures);
        e.bytesClientToServer += c2s;
        e.bytesServerToClient += s2c;
      }
    }
  }
  return { ports, faults, ages, drainSeconds };
}
