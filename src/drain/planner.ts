import { DrainBudget, type BudgetOptions } from './budget.js';
import { IndexedMinHeap } from '../lib/indexed-heap.js';
import { planRebalance, type RebalanceEndpoint } from './rebalance.js';

/** Why a connection is drained; a metric label, so a closed set. */
export const DrainReason = {
  MAX_AGE: 'max_age',
  ENDPOINT_REMOVED: 'endpoint_removed',
  ENDPOINT_TERMINATING: 'endpoint_terminating',
  ENDPOINT_NOT_READY: 'endpoint_not_ready',
  REBALANCE: 'rebalance',
  SHUTDOWN: 'shutdown',
  /** No byte either way for `--idle-timeout`: drained with GOAWAY rather than cut. */
  IDLE: 'idle',
} as const;
export type DrainReason = (typeof DrainReason)[keyof typeof DrainReason];

/** One decision: drain connection `id` for `reason`. */
export interface DrainDecision {
  readonly id: number;
  readonly reason: DrainReason;
}

/**
 * Says whether a client drained now from `endpoint` would reconnect to that same endpoint
 * (it is the least loaded even without this connection). Supplied by the caller at each tick.
 */
export type WouldReturn = (servicePort: string, endpoint: string) => boolean;

export interface PlannerOptions {
  /** Drain h2c connections this old; 0 = never. */
  readonly maxAgeMs: number;
  /**
   * How much longer (a fraction of the max age) a max-age drain may wait while the client would
   * come straight back to the same endpoint. Default 0.1.
   */
  readonly ageDeferral?: number;
  /** ± fraction of jitter on each connection's age (0.1 = ±10%, as gRPC A9 servers do). */
  readonly ageJitter: number;
  readonly budget: BudgetOptions;
  /** Rebalance when max/mean active h2c connections passes this; 0 = never. */
  readonly rebalanceThreshold: number;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

interface Tracked {
  readonly id: number;
  readonly port: PortState;
  readonly endpoint: string;
  draining: boolean;
  readonly ageDeadline: number;
  heapIndex: number;
}

interface PortState {
  readonly name: string;
  readonly budget: DrainBudget;
  /** Tracked connections not draining, by endpoint, oldest first. */
  readonly active: Map<string, Set<Tracked>>;
  /** Eligible endpoints and their weights, for rebalance targets. */
  endpoints: readonly RebalanceEndpoint[];
  /** Tracked connections, draining ones included. */
  total: number;
  draining: number;
  rebalancing: boolean;
  /**
   * Drains the cluster rebalance assigned to this node at the last sync of the cluster view,
   * not yet carried out; undefined while the port follows its node-local counts.
   */
  cluster: Map<string, number> | undefined;
}

/**
 * Decides which HTTP/2 (h2c) connections to drain and when, per Service port. Pure: no timers,
 * no sockets; the caller passes the time and carries out the decisions. Only h2c connections
 * are tracked (`add` once a connection is known to be h2c, `remove` when it closes): they are
 * the ones max age and rebalance drain, and the budget is a share of them. Drains of leaving
 * endpoints are the caller's, reported here with `markDraining` so they count in the budget.
 *
 * - Max age: each connection gets a deadline `openedAt + maxAge × (1 ± jitter)`; once due,
 *   connections are drained, oldest first, within the budget. A drain that would only send the
 *   client straight back to the same endpoint (it is the least loaded: least connection would
 *   choose it again) waits for a moment when it would not, for at most `ageDeferral × maxAge`
 *   more; such a drain costs the client a reconnect and moves nothing.
 * - Rebalance: see `planRebalance`; within the budget.
 *
 * Memory is O(tracked connections): a closed connection leaves every structure at once.
 */
export class DrainPlanner {
  readonly #opts: PlannerOptions;
  readonly #ports = new Map<string, PortState>();
  readonly #conns = new Map<number, Tracked>();
  readonly #ages = new IndexedMinHeap<Tracked>(
    (a, b) => a.ageDeadline - b.ageDeadline || a.id - b.id,
  );

  constructor(opts: PlannerOptions) {
    this.#opts = opts;
  }

  /** Number of tracked (open h2c) connections. */
  get size(): number {
    return this.#conns.size;
  }

  /** Connections waiting for their max age, for tests. */
  get scheduled(): number {
    return this.#ages.size;
  }

  /** Rebalances in progress, for tests and /debug/state. */
  isRebalancing(servicePort: string): boolean {
    return this.#ports.get(servicePort)?.rebalancing ?? false;
  }

  /**
   * Service ports with tracked connections (and those that had some): the only ones a rebalance
   * can act on, so the caller refreshes endpoints for these alone, never for every idle port.
   */
  ports(): IterableIterator<string> {
    return this.#ports.keys();
  }

  /** Whether `servicePort` has state here (see `ports`). */
  tracks(servicePort: string): boolean {
    return this.#ports.has(servicePort);
  }

  /** Starts tracking h2c connection `id`, opened at `openedAt` on `endpoint` of `servicePort`. */
  add(id: number, servicePort: string, endpoint: string, openedAt: number, now: number): void {
    if (this.#conns.has(id)) return;
    const port = this.#port(servicePort, now);
    const { maxAgeMs, ageJitter } = this.#opts;
    const jitter = 1 + ageJitter * (2 * this.#opts.random() - 1);
    const c: Tracked = {
      id,
      port,
      endpoint,
      draining: false,
      ageDeadline: maxAgeMs > 0 ? openedAt + maxAgeMs * jitter : Number.POSITIVE_INFINITY,
      heapIndex: -1,
    };
    this.#conns.set(id, c);
    setAdd(port.active, endpoint, c);
    port.total++;
    if (maxAgeMs > 0) this.#ages.push(c);
  }

  /** Connection `id` closed (or stopped being h2c). Unknown ids are ignored. */
  remove(id: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    this.#conns.delete(id);
    this.#ages.remove(c);
    const port = c.port;
    port.total--;
    if (c.draining) port.draining--;
    setDelete(port.active, c.endpoint, c);
  }

  /** Connection `id` started draining for a reason decided elsewhere (leaving endpoint, shutdown). */
  markDraining(id: number): void {
    const c = this.#conns.get(id);
    if (c !== undefined) this.#setDraining(c);
  }

  /** The eligible endpoints of a Service port and their balancer weights. */
  setEndpoints(servicePort: string, endpoints: readonly RebalanceEndpoint[], now: number): void {
    this.#port(servicePort, now).endpoints = endpoints;
  }

  /**
   * Switches a Service port to the cluster rebalance (`drains`: this node's share of the cluster
   * excess, by endpoint, from the latest view) or back to the node-local one (undefined: the view
   * is off or stale). A share is carried out once, within the budget, at the next tick; what the
   * budget holds back is not carried over, as the next sync plans again from fresher counts.
   */
  setClusterDrains(
    servicePort: string,
    drains: ReadonlyMap<string, number> | undefined,
    now: number,
  ): void {
    const port = this.#port(servicePort, now);
    port.cluster = drains === undefined ? undefined : new Map(drains);
    port.rebalancing = drains !== undefined && drains.size > 0;
  }

  /** Forgets a Service port that has no tracked connection any more. */
  forgetPort(servicePort: string): void {
    const p = this.#ports.get(servicePort);
    if (p !== undefined && p.total === 0) this.#ports.delete(servicePort);
  }

  /** Drains due now: max age first, then rebalance, each within its Service port's budget. */
  tick(now: number, wouldReturn?: WouldReturn): DrainDecision[] {
    const out: DrainDecision[] = [];
    const due = new Map<PortState, Tracked[]>();
    const later: Tracked[] = [];
    const deferral = (this.#opts.ageDeferral ?? 0.1) * this.#opts.maxAgeMs;
    for (
      let c = this.#ages.peek();
      c !== undefined && c.ageDeadline <= now;
      c = this.#ages.peek()
    ) {
      this.#ages.pop();
      if (c.draining) continue;
      if (now < c.ageDeadline + deferral && wouldReturn?.(c.port.name, c.endpoint) === true) {
        later.push(c);
        continue;
      }
      const list = due.get(c.port);
      if (list === undefined) due.set(c.port, [c]);
      else list.push(c);
    }
    for (const [port, list] of due) {
      const n = port.budget.available(now, port.draining, port.total);
      for (const c of list.slice(0, n)) {
        this.#setDraining(c);
        out.push({ id: c.id, reason: DrainReason.MAX_AGE });
      }
      port.budget.take(now, Math.min(n, list.length));
      later.push(...list.slice(n));
    }
    for (const c of later) this.#ages.push(c);
    if (this.#opts.rebalanceThreshold > 0) {
      for (const port of this.#ports.values()) {
        if (port.cluster !== undefined) out.push(...this.#clusterRebalance(port, now));
        else out.push(...this.#rebalance(port, now));
      }
    }
    return out;
  }

  #clusterRebalance(port: PortState, now: number): DrainDecision[] {
    const share = port.cluster as Map<string, number>;
    if (share.size === 0) return [];
    const n = port.budget.available(now, port.draining, port.total);
    const out: DrainDecision[] = [];
    for (const [endpoint, k] of share) {
      const conns = port.active.get(endpoint);
      if (conns === undefined) continue;
      // Oldest first: they are closest to their max age anyway.
      let left = Math.min(k, n - out.length);
      for (const c of [...conns]) {
        if (left-- <= 0) break;
        this.#setDraining(c);
        out.push({ id: c.id, reason: DrainReason.REBALANCE });
      }
      if (out.length >= n) break;
    }
    share.clear();
    port.budget.take(now, out.length);
    return out;
  }

  #rebalance(port: PortState, now: number): DrainDecision[] {
    const counts = port.endpoints.map((e) => ({ ...e, active: port.active.get(e.key)?.size ?? 0 }));
    const plan = planRebalance(counts, port.total, this.#opts.rebalanceThreshold, port.rebalancing);
    port.rebalancing = plan.rebalancing;
    if (plan.excess.size === 0) return [];
    let n = port.budget.available(now, port.draining, port.total);
    const out: DrainDecision[] = [];
    for (const [endpoint, excess] of plan.excess) {
      const conns = port.active.get(endpoint);
      if (conns === undefined) continue;
      // Oldest first: they are closest to their max age anyway.
      let k = Math.min(excess, n);
      for (const c of [...conns]) {
        if (k-- <= 0) break;
        this.#setDraining(c);
        out.push({ id: c.id, reason: DrainReason.REBALANCE });
      }
      n -= Math.min(excess, n);
      if (n <= 0) break;
    }
    port.budget.take(now, out.length);
    return out;
  }

  #setDraining(c: Tracked): void {
    if (c.draining) return;
    c.draining = true;
    c.port.draining++;
    this.#ages.remove(c);
    setDelete(c.port.active, c.endpoint, c);
  }

  #port(name: string, now: number): PortState {
    let p = this.#ports.get(name);
    if (p === undefined) {
      p = {
        name,
        budget: new DrainBudget(this.#opts.budget, now),
        active: new Map(),
        endpoints: [],
        total: 0,
        draining: 0,
        rebalancing: false,
        cluster: undefined,
      };
      this.#ports.set(name, p);
    }
    return p;
  }
}

function setAdd<K, V>(map: Map<K, Set<V>>, key: K, v: V): void {
  let s = map.get(key);
  if (s === undefined) map.set(key, (s = new Set()));
  s.add(v);
}

function setDelete<K, V>(map: Map<K, Set<V>>, key: K, v: V): void {
  const s = map.get(key);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) map.delete(key);
}
