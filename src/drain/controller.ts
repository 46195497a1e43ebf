import type { EndpointChange } from '../balancer/least-conn.js';
import type { DrainShare } from './budget.js';
import { DrainPlanner, DrainReason, type DrainDecision } from './planner.js';
import type { Logger } from '../log.js';
import type { Connection } from '../proxy/connection.js';
import { bump, type ServicePortProxy } from '../proxy/service-port-proxy.js';

export interface DrainConfig {
  /** Drain h2c connections older than this (±10%); 0 = off. */
  readonly maxConnectionAgeMs: number;
  /** Every drain is closed by then at the latest. */
  readonly drainGraceMs: number;
  readonly drainMaxConcurrent: DrainShare;
  /** Drains started per second per Service port; 0 = no limit. */
  readonly drainRatePerSec: number;
  /** Rebalance when max/mean active h2c connections passes this; 0 = off. */
  readonly rebalanceThreshold: number;
}

/** The Service ports of the proxy: the current ones by key, and all with retired ones. */
export interface ServicePortDirectory {
  get(servicePort: string): ServicePortProxy | undefined;
  servicePorts(): Iterable<ServicePortProxy>;
}

/**
 * A connection the planner can have drained: one of this thread's, or one a worker thread
 * holds (dataplane/pool.ts), drained there when asked.
 */
export interface DrainHandle {
  readonly id: number;
  /** Starts the drain; false when it was already draining or closed. */
  drain(reason: string, graceMs: number): boolean;
}

/** How often the planner looks for due drains. */
const TICK_MS = 100;

function leavingReason(change: EndpointChange): DrainReason | undefined {
  if (
    change.current === 'ready' ||
    change.previous === change.current ||
    change.previous === undefined
  )
    return undefined;
  if (change.current === 'removed') return DrainReason.ENDPOINT_REMOVED;
  if (change.current === 'terminating') return DrainReason.ENDPOINT_TERMINATING;
  return DrainReason.ENDPOINT_NOT_READY;
}

/**
 * The shell around DrainPlanner: drains the connections of leaving endpoints straight from
 * their Service port's connection set, hands h2c connections to the planner (max age,
 * rebalance, budget), runs its tick on a timer and carries out its decisions. Holds nothing per
 * opaque connection.
 */
export class DrainController {
  readonly #config: DrainConfig;
  readonly #planner: DrainPlanner;
  readonly #now: () => number;
  readonly #log: Logger;
  /** h2c connections the planner tracks, to carry out its decisions. */
  readonly #conns = new Map<number, { conn: DrainHandle; owner: ServicePortProxy }>();
  readonly #ports: ServicePortDirectory;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    config: DrainConfig,
    deps: { now: () => number; random: () => number; logger: Logger; ports: ServicePortDirectory },
  ) {
    this.#config = config;
    this.#ports = deps.ports;
    this.#now = deps.now;
    this.#log = deps.logger;
    this.#planner = new DrainPlanner({
      maxAgeMs: config.maxConnectionAgeMs,
      ageJitter: 0.1,
      budget: { maxConcurrent: config.drainMaxConcurrent, ratePerSec: config.drainRatePerSec },
      rebalanceThreshold: config.rebalanceThreshold,
      random: deps.random,
    });
  }

  /** Starts the periodic tick. */
  start(): void {
    this.#timer ??= setInterval(() => this.tick(), TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  isRebalancing(servicePort: string): boolean {
    return this.#planner.isRebalancing(servicePort);
  }

  /**
   * The cluster view's share of the rebalance for this node (see DrainPlanner.setClusterDrains);
   * undefined switches the Service port back to the node-local rebalance.
   */
  setClusterDrains(servicePort: string, drains: ReadonlyMap<string, number> | undefined): void {
    this.#planner.setClusterDrains(servicePort, drains, this.#now());
  }

  // ---- ConnectionObserver ----

  protocolKnown(conn: Connection, owner: ServicePortProxy): void {
    if (conn.protocol !== 'h2c' || conn.endpoint === undefined) {
      // Opaque (or an h2c connection that lost sync): neither aged nor rebalanced.
      this.#forget(conn);
      return;
    }
    this.#conns.set(conn.id, { conn, owner });
    this.#planner.add(conn.id, owner.servicePort, conn.endpoint.key, conn.openedAt, this.#now());
    if (conn.draining) this.#planner.markDraining(conn.id);
  }

  /**
   * An h2c connection a worker thread holds (worker threads on): planned here on node-wide
   * counts like this thread's own, drained there (`handle.drain`). Its id must not collide with
   * this thread's connection ids (the pool makes them negative).
   */
  trackRemote(
    handle: DrainHandle,
    servicePort: string,
    endpoint: string,
    openedAt: number,
    draining: boolean,
  ): void {
    const owner = this.#ports.get(servicePort);
    // A Service port already gone from the table is neither aged nor rebalanced.
    if (owner === undefined) return;
    this.#conns.set(handle.id, { conn: handle, owner });
    this.#planner.add(handle.id, servicePort, endpoint, openedAt, this.#now());
    if (draining) this.#planner.markDraining(handle.id);
  }

  /** A worker drained one of its tracked connections itself (leaving endpoint, idle, shutdown). */
  remoteDraining(id: number): void {
    if (this.#conns.has(id)) this.#planner.markDraining(id);
  }

  /** A worker's tracked connection closed or went opaque. */
  forgetRemote(id: number): void {
    const entry = this.#conns.get(id);
    if (entry === undefined) return;
    this.#conns.delete(id);
    this.#planner.remove(id);
    // The last tracked connection of a Service port that is gone: the planner forgets it (it
    // keeps a port that still has tracked connections, here or in a worker).
    const name = entry.owner.servicePort;
    if (this.#ports.get(name) !== entry.owner) this.#planner.forgetPort(name);
  }

  closed(conn: Connection, owner: ServicePortProxy): void {
    this.#forget(conn);
    // The last connection of a Service port that is gone: the planner forgets it.
    if (owner.connections.size === 0 && this.#ports.get(owner.servicePort) === undefined) {
      this.#planner.forgetPort(owner.servicePort);
    }
  }

  /**
   * Endpoints of a Service port changed state: drain every connection of those that left, at
   * once and whatever the budget (h2c ones get GOAWAY, the others close at the grace).
   */
  endpointChanges(owner: ServicePortProxy, changes: readonly EndpointChange[]): void {
    const leaving = new Map<string, DrainReason>();
    for (const change of changes) {
      const reason = leavingReason(change);
      if (reason !== undefined) leaving.set(change.stats.key, reason);
    }
    if (leaving.size > 0) {
      const counts = new Map<string, number>();
      for (const conn of owner.connections) {
        const key = conn.endpoint?.key;
        const reason = key === undefined ? undefined : leaving.get(key);
        if (reason === undefined || key === undefined) continue;
        if (this.#drain(conn, owner, reason)) counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      for (const [endpoint, connections] of counts) {
        this.#log.info(
          { servicePort: owner.servicePort, endpoint, reason: leaving.get(endpoint), connections },
          'draining the connections of a leaving endpoint',
        );
      }
    }
    // A Service port without h2c connections gets its endpoints at its first tick with one.
    if (this.#planner.tracks(owner.servicePort)) this.#updateEndpoints(owner);
  }

  /** One planning round (normally run by the timer). */
  tick(): void {
    const now = this.#now();
    if (this.#config.rebalanceThreshold > 0) {
      // Only Service ports with h2c connections can be rebalanced: with 10,000 idle ports a
      // walk over all of them ten times a second was most of the proxy's idle work (issue 13).
      for (const name of this.#planner.ports()) {
        const owner = this.#ports.get(name);
        if (owner !== undefined) this.#updateEndpoints(owner, now);
      }
    }
    this.#execute(this.#planner.tick(now, this.#wouldReturn));
  }

  /** Would a client drained from `endpoint` now come straight back? (See the balancer.) */
  #wouldReturn = (servicePort: string, endpoint: string): boolean =>
    this.#ports.get(servicePort)?.balancer.wouldPickAgain(endpoint) ?? false;

  /** Drains an h2c connection that went idle (`--idle-timeout`), bypassing the budget. */
  drainIdle(conn: Connection, owner: ServicePortProxy): boolean {
    return this.#drain(conn, owner, DrainReason.IDLE);
  }

  /** Drains every open connection for shutdown, bypassing the budget. */
  shutdown(graceMs: number): number {
    let n = 0;
    for (const owner of this.#ports.servicePorts()) {
      for (const conn of owner.connections)
        if (this.#drain(conn, owner, DrainReason.SHUTDOWN, graceMs)) n++;
    }
    return n;
  }

  #drain(
    conn: DrainHandle,
    owner: ServicePortProxy,
    reason: DrainReason,
    graceMs = this.#config.drainGraceMs,
  ): boolean {
    if (!conn.drain(reason, graceMs)) return false;
    this.#planner.markDraining(conn.id);
    bump(owner.counters.drainsStarted, reason);
    return true;
  }

  #forget(conn: Connection): void {
    if (this.#conns.delete(conn.id)) this.#planner.remove(conn.id);
  }

  #updateEndpoints(owner: ServicePortProxy, now = this.#now()): void {
    owner.balancer.refreshWeights();
    const eps = [];
    for (const ep of owner.balancer.endpoints())
      if (ep.eligible) eps.push({ key: ep.key, weight: ep.weight });
    this.#planner.setEndpoints(owner.servicePort, eps, now);
  }

  #execute(decisions: readonly DrainDecision[]): void {
    for (const d of decisions) {
      const entry = this.#conns.get(d.id);
      if (entry !== undefined) this.#drain(entry.conn, entry.owner, d.reason);
    }
  }
}
