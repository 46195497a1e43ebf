import { DrainBudget, type BudgetOptions } from './budget.js';
import { MinHeap } from './min-heap.js';
import { planRebalance, type RebalanceEndpoint } from './rebalance.js';

/** Why a connection is drained; a metric label, so a closed set. */
export const DrainReason = {
  MAX_AGE: 'max_age',
  ENDPOINT_REMOVED: 'endpoint_removed',
  ENDPOINT_TERMINATING: 'endpoint_terminating',
  ENDPOINT_NOT_READY: 'endpoint_not_ready',
  REBALANCE: 'rebalance',
  SHUTDOWN: 'shutdown',
} as const;
export type DrainReason = (typeof DrainReason)[keyof typeof DrainReason];

/** What a connection speaks, as far as the proxy knows: `pending` until detection ends. */
export type ConnProtocol = 'pending' | 'h2c' | 'opaque';

/**
 * Says whether a client drained now from `endpoint` would reconnect to that same endpoint
 * (it is the least loaded even without this connection). Supplied by the caller at each tick.
 */
export type WouldReturn = (servicePort: string, endpoint: string) => boolean;

/** One decision: drain connection `id` for `reason`. */
export interface DrainDecision {
  readonly id: number;
  readonly reason: DrainReason;
}

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
  readonly openedAt: number;
  protocol: ConnProtocol;
  draining: boolean;
  closed: boolean;
  readonly ageDeadline: number;
}

interface PortState {
  readonly name: string;
  readonly budget: DrainBudget;
  /** Every open connection, by endpoint. */
  readonly byEndpoint: Map<string, Set<Tracked>>;
  /** Open h2c connections not draining, by endpoint, oldest first. */
  readonly activeH2c: Map<string, Set<Tracked>>;
  /** Eligible endpoints and their weights, for rebalance targets. */
  endpoints: readonly RebalanceEndpoint[];
  total: number;
  /** Open h2c connections, draining ones included. */
  h2c: number;
  draining: number;
  rebalancing: boolean;
}

/**
 * Decides which connections to drain and when, per Service port. Pure: no timers, no sockets;
 * the caller passes the time and carries out the decisions.
 *
 * - Max age: each connection gets a deadline `openedAt + maxAge × (1 ± jitter)`; once due, h2c
 *   connections are drained, oldest first, within the budget. A drain that would only send the
 *   client straight back to the same endpoint (it is the least loaded: least connection would
 *   choose it again) waits for a moment when it would not, for at most `ageDeferral × maxAge`
 *   more; such a drain costs the client a reconnect and moves nothing.
 * - Leaving endpoints (removed, terminating, not ready): every connection on them at once,
 *   bypassing the budget (they still count as draining in it).
 * - Rebalance: see `planRebalance`; within the budget. Opaque connections never take part.
 *
 * The caller reports every connection (`add`, `setProtocol`, `remove`) and drains it started
 * on its own (`markDraining`, e.g. at shutdown).
 */
export class DrainPlanner {
  readonly #opts: PlannerOptions;
  readonly #ports = new Map<string, PortState>();
  readonly #conns = new Map<number, Tracked>();
  readonly #ages = new MinHeap<Tracked>((a, b) => a.ageDeadline - b.ageDeadline || a.id - b.id);

  constructor(opts: PlannerOptions) {
    this.#opts = opts;
  }

  /** Number of tracked (open) connections. */
  get size(): number {
    return this.#conns.size;
  }

  /** Rebalances in progress, for tests and /debug/state. */
  isRebalancing(servicePort: string): boolean {
    return this.#ports.get(servicePort)?.rebalancing ?? false;
  }

  add(id: number, servicePort: string, endpoint: string, openedAt: number, now: number): void {
    const port = this.#port(servicePort, now);
    const { maxAgeMs, ageJitter } = this.#opts;
    const jitter = 1 + ageJitter * (2 * this.#opts.random() - 1);
    const c: Tracked = {
      id,
      port,
      endpoint,
      openedAt,
      protocol: 'pending',
      draining: false,
      closed: false,
      ageDeadline: maxAgeMs > 0 ? openedAt + maxAgeMs * jitter : Number.POSITIVE_INFINITY,
    };
    this.#conns.set(id, c);
    setAdd(port.byEndpoint, endpoint, c);
    port.total++;
    if (maxAgeMs > 0) this.#ages.push(c);
  }

  /** The protocol of connection `id` became known. */
  setProtocol(id: number, protocol: ConnProtocol, now: number): void {
    const c = this.#conns.get(id);
    if (c === undefined || c.protocol === protocol) return;
    if (c.protocol === 'h2c') c.port.h2c--;
    if (protocol === 'h2c') c.port.h2c++;
    c.protocol = protocol;
    if (protocol === 'h2c' && !c.draining) setAdd(c.port.activeH2c, c.endpoint, c);
    // A connection whose age came due while its protocol was unknown was set aside: look again.
    if (protocol === 'h2c' && c.ageDeadline <= now && !c.draining) this.#ages.push(c);
  }

  /** Connection `id` closed. */
  remove(id: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    this.#conns.delete(id);
    c.closed = true;
    const port = c.port;
    port.total--;
    if (c.protocol === 'h2c') port.h2c--;
    if (c.draining) port.draining--;
    setDelete(port.byEndpoint, c.endpoint, c);
    setDelete(port.activeH2c, c.endpoint, c);
  }

  /** Connection `id` started draining for a reason decided elsewhere (shutdown). */
  markDraining(id: number): void {
    const c = this.#conns.get(id);
    if (c !== undefined) this.#setDraining(c);
  }

  /** The eligible endpoints of a Service port and their balancer weights. */
  setEndpoints(servicePort: string, endpoints: readonly RebalanceEndpoint[], now: number): void {
    this.#port(servicePort, now).endpoints = endpoints;
  }

  /** Forgets a Service port that has neither connections nor endpoints any more. */
  forgetPort(servicePort: string): void {
    const p = this.#ports.get(servicePort);
    if (p !== undefined && p.total === 0) this.#ports.delete(servicePort);
  }

  /**
   * Endpoint `endpoint` of `servicePort` stopped taking new connections: every connection on
   * it that is not draining yet is to be drained now, whatever its protocol (the caller drains
   * h2c ones with GOAWAY and closes the others after the grace).
   */
  endpointLeaving(servicePort: string, endpoint: string, reason: DrainReason): DrainDecision[] {
    const conns = this.#ports.get(servicePort)?.byEndpoint.get(endpoint);
    if (conns === undefined) return [];
    const out: DrainDecision[] = [];
    for (const c of [...conns]) {
      if (c.draining) continue;
      this.#setDraining(c);
      out.push({ id: c.id, reason });
    }
    return out;
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
      if (c.closed || c.draining || c.protocol === 'opaque') continue;
      // Unknown protocol: setProtocol puts it back once it turns out to be h2c.
      if (c.protocol === 'pending') continue;
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
      for (const port of this.#ports.values()) out.push(...this.#rebalance(port, now));
    }
    return out;
  }

  #rebalance(port: PortState, now: number): DrainDecision[] {
    const counts = port.endpoints.map((e) => ({
      ...e,
      active: port.activeH2c.get(e.key)?.size ?? 0,
    }));
    const plan = planRebalance(counts, port.h2c, this.#opts.rebalanceThreshold, port.rebalancing);
    port.rebalancing = plan.rebalancing;
    if (plan.excess.size === 0) return [];
    let n = port.budget.available(now, port.draining, port.total);
    const out: DrainDecision[] = [];
    for (const [endpoint, excess] of plan.excess) {
      const conns = port.activeH2c.get(endpoint);
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
    setDelete(c.port.activeH2c, c.endpoint, c);
  }

  #port(name: string, now: number): PortState {
    let p = this.#ports.get(name);
    if (p === undefined) {
      p = {
        name,
        budget: new DrainBudget(this.#opts.budget, now),
        byEndpoint: new Map(),
        activeH2c: new Map(),
        endpoints: [],
        total: 0,
        h2c: 0,
        draining: 0,
        rebalancing: false,
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
