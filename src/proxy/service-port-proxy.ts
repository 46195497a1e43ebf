import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  LeastConnBalancer,
  type EndpointChange,
  type SharedSlots,
} from '../balancer/least-conn.js';
import { EndpointStats } from '../balancer/endpoint-stats.js';
import type { Endpoint, ServicePort } from '../servicetable/types.js';
import {
  Connection,
  type ConnectionHost,
  type DrainEnd,
  type FaultPoint,
  type CloseReason,
  type H2Settings,
} from './connection.js';
import { SOCKET_KEEPALIVE_MS, type ConnectFailureReason } from './dial.js';

/** Settings shared by every Service port. */
export interface ServicePortProxyOptions {
  readonly connectTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly slowStartWindowMs: number;
  /** HTTP/2 tracking and drain settings; undefined turns tracking off. */
  readonly h2: H2Settings | undefined;
  readonly now: () => number;
  readonly random: () => number;
  /** Told about connection events (drain controller, metrics). */
  readonly observer?: ConnectionObserver;
  /**
   * Test seam, never set in production: called at the start of every guarded connection event
   * handler; a throw from it is handled exactly like a bug in that handler (see `faulted`).
   */
  readonly faultHook?: (conn: Connection | undefined, point: FaultPoint) => void;
  /** A connection event handler threw: the connection was closed, the rest go on. */
  readonly onFault?: (owner: ServicePortProxy, point: FaultPoint, err: unknown) => void;
  /**
   * Worker threads: where a Service port's endpoints count, node-wide (see shared-counts.ts).
   * Unset: counts are this thread's.
   */
  readonly sharedSlots?: ((servicePort: string) => SharedSlots | undefined) | undefined;
  /**
   * Worker threads, main thread: the listeners are the workers' (see dataplane/pool.ts); this
   * thread binds only listeners adopted at start, until it hands them over.
   */
  readonly remoteListeners?: RemoteListeners | undefined;
  /** Cluster estimates were set for a Service port (worker threads: they get them too). */
  readonly onCluster?:
    | ((
        servicePort: string,
        others: ReadonlyMap<string, number> | undefined,
        herdStep: number,
        reserved: readonly string[],
      ) => void)
    | undefined;
}

/** Listeners bound elsewhere (in every worker thread), on the main thread's behalf. */
export interface RemoteListeners {
  /** Binds `host:port` for a Service port in every worker; rejects with the bind error. */
  listen(servicePort: string, host: string, port: number): Promise<void>;
  unlisten(servicePort: string): Promise<void>;
}

/** Connections held, at most, by a listener adopted before the first service table. */
const HELD_CONNECTIONS_MAX = 4096;

export interface ConnectionObserver {
  established(conn: Connection, owner: ServicePortProxy): void;
  /** `desync` names why an h2c connection lost sync (bad HTTP/2 input), if it did. */
  protocolKnown?(conn: Connection, owner: ServicePortProxy, desync?: string): void;
  drainEnded?(conn: Connection, owner: ServicePortProxy, end: DrainEnd): void;
  closed(conn: Connection, owner: ServicePortProxy): void;
  /** The listener failed to accept a connection (EMFILE, ENFILE...). */
  acceptError?(code: string, owner: ServicePortProxy): void;
}

/** Plain counters of one Service port, read at scrape time. */
export class ServicePortCounters {
  /** Clients turned away, by reason. */
  readonly turnedAway = new Map<ConnectFailureReason, number>();
  /** Connections by detected protocol. */
  readonly protocols = new Map<'h2c' | 'opaque', number>();
  /** h2c connections that lost sync and went opaque, by reason. */
  readonly desyncs = new Map<string, number>();
  serverGoaways = 0;
  readonly drainsStarted = new Map<string, number>();
  readonly drainsEnded = new Map<string, number>();
  drainedStreamsNormal = 0;
  drainedStreamsReset = 0;
  /** Connections closed, by why (see CloseReason). */
  readonly closes = new Map<CloseReason, number>();
  /** Errors of the listening socket while accepting (EMFILE, ENFILE...), by code. */
  readonly acceptErrors = new Map<string, number>();
  /** Bytes of connections that have ended. Live ones add theirs at read time. */
  bytesClientToServer = 0;
  bytesServerToClient = 0;
}

/** Counter figures of a Service port: ServicePortCounters, or a worker's snapshot of them. */
export interface CounterFigures {
  readonly turnedAway: Iterable<readonly [string, number]>;
  readonly protocols: Iterable<readonly [string, number]>;
  readonly desyncs: Iterable<readonly [string, number]>;
  readonly drainsStarted: Iterable<readonly [string, number]>;
  readonly drainsEnded: Iterable<readonly [string, number]>;
  readonly closes: Iterable<readonly [string, number]>;
  readonly acceptErrors: Iterable<readonly [string, number]>;
  readonly serverGoaways: number;
  readonly drainedStreamsNormal: number;
  readonly drainedStreamsReset: number;
  readonly bytesClientToServer: number;
  readonly bytesServerToClient: number;
}

function addEntries(into: Map<string, number>, from: Iterable<readonly [string, number]>): void {
  for (const [k, n] of from) into.set(k, (into.get(k) ?? 0) + n);
}

/** Adds `from` to `into` (node-wide figures summed over threads). */
export function addCounters(into: ServicePortCounters, from: CounterFigures): void {
  addEntries(into.turnedAway as Map<string, number>, from.turnedAway);
  addEntries(into.protocols as Map<string, number>, from.protocols);
  addEntries(into.desyncs, from.desyncs);
  addEntries(into.drainsStarted, from.drainsStarted);
  addEntries(into.drainsEnded, from.drainsEnded);
  addEntries(into.closes as Map<string, number>, from.closes);
  addEntries(into.acceptErrors, from.acceptErrors);
  into.serverGoaways += from.serverGoaways;
  into.drainedStreamsNormal += from.drainedStreamsNormal;
  into.drainedStreamsReset += from.drainedStreamsReset;
  into.bytesClientToServer += from.bytesClientToServer;
  into.bytesServerToClient += from.bytesServerToClient;
}

/**
 * Accept queue of each listener (the kernel caps it at net.core.somaxconn). Node's default, 511,
 * overflows under a burst of a few thousand connects; an overflowing queue drops handshakes, and
 * with SYN cookies some connections then exist on the proxy's side only, established and silent,
 * long after their client left (found by a churn of 2,000 clients).
 */
export const LISTEN_BACKLOG = 4096;

export function bump<K>(map: Map<K, number>, key: K, n = 1): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

/**
 * A row for an endpoint of a Service port that has no balancer yet: zeros, or the node-wide
 * counts when they are shared (worker threads count connections this thread has no balancer for).
 */
function idleStats(ep: Endpoint, shared?: SharedSlots): EndpointStats {
  const stats = new EndpointStats(ep);
  stats.eligible = ep.eligible;
  const slot = shared?.slotOf(ep.key);
  if (shared !== undefined && slot !== undefined)
    stats.share({ counts: shared.counts, slot, region: shared.region });
  return stats;
}

/**
 * What the balancer's `update` would report for a Service port without connections: endpoints
 * whose state changed, new ones (previous undefined) and removed ones.
 */
function tableChanges(before: readonly Endpoint[], after: readonly Endpoint[]): EndpointChange[] {
  const old = new Map(before.map((ep) => [ep.key, ep]));
  const changes: EndpointChange[] = [];
  for (const ep of after) {
    const previous = old.get(ep.key)?.state;
    old.delete(ep.key);
    if (previous !== ep.state) changes.push({ stats: idleStats(ep), previous, current: ep.state });
  }
  for (const ep of old.values()) {
    const stats = idleStats(ep);
    stats.status = 'removed';
    stats.eligible = false;
    changes.push({ stats, previous: ep.state, current: 'removed' });
  }
  return changes;
}

/** What the worker threads report of one Service port, summed over them. */
export interface RemotePortFigures {
  readonly counters: ServicePortCounters;
  /** Connections open in the workers. */
  readonly connections: number;
  readonly faults: ReadonlyMap<string, number>;
  /** Per endpoint: connections established, connect failures by reason, bytes (live included). */
  readonly endpoints: ReadonlyMap<
    string,
    {
      readonly total: number;
      readonly connectFailures: ReadonlyMap<string, number>;
      readonly bytesClientToServer: number;
      readonly bytesServerToClient: number;
    }
  >;
}

/** The connections of a Service port that never had one (one shared empty set). */
const NO_CONNECTIONS: ReadonlySet<Connection> = new Set();

/**
 * One Service port: its listener, its balancer and its open connections.
 *
 * Memory: a node may carry 10,000 Service ports that never see a connection (issue 13), so an
 * idle one holds only its listener and the table entry. Its balancer is made when something
 * needs it (the first connection; at once with slow start, which needs each endpoint's history),
 * its counters and its connection set at its first connection. Until then `endpointStats` gives
 * zero rows made from the table, and `update` reports changes from the table alone.
 */
export class ServicePortProxy implements ConnectionHost {
  #servicePort: ServicePort;
  #balancer: LeastConnBalancer | undefined;
  readonly connectTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly h2: H2Settings | undefined;
  readonly now: () => number;
  #connections: Set<Connection> | undefined;
  #counters: ServicePortCounters | undefined;
  /** Where the listener is bound, once it is. */
  address: AddressInfo | undefined;
  /** The workers listen for this Service port (worker threads, main thread). */
  #remoteListening = false;
  /**
   * Figures of this Service port in the worker threads, summed, as of the last snapshot (main
   * thread, worker threads on). Read by the stats view (metrics/port-stats.ts).
   */
  remote: RemotePortFigures | undefined;
  readonly #opts: ServicePortProxyOptions;
  #server: Server | undefined;
  /** Accepted, paused clients waiting for the first service table (adopted listener). */
  #held: Socket[] | undefined;
  /** Connection handlers that threw, by point (contained: only that connection closed). */
  readonly faults = new Map<FaultPoint, number>();
  readonly faultHook: ((conn: Connection | undefined, point: FaultPoint) => void) | undefined;

  constructor(servicePort: ServicePort, opts: ServicePortProxyOptions) {
    this.#servicePort = servicePort;
    this.#opts = opts;
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.maxConnectAttempts = Math.max(1, opts.maxConnectAttempts);
    this.h2 = opts.h2;
    this.now = opts.now;
    this.faultHook = opts.faultHook;
    if (opts.slowStartWindowMs > 0) this.#makeBalancer();
  }

  /** The balancer of this Service port, made (with the current endpoints) on first use. */
  get balancer(): LeastConnBalancer {
    return this.#balancer ?? this.#makeBalancer();
  }

  #makeBalancer(): LeastConnBalancer {
    const b = new LeastConnBalancer({
      now: this.#opts.now,
      random: this.#opts.random,
      slowStartWindowMs: this.#opts.slowStartWindowMs,
      shared: this.#opts.sharedSlots?.(this.#servicePort.key),
    });
    b.update(this.#servicePort.endpoints);
    this.#balancer = b;
    return b;
  }

  /**
   * Every endpoint with its counts, for display: the balancer's, or rows of zeros made from the
   * table while no balancer exists (reading them does not make one).
   */
  endpointStats(): Iterable<EndpointStats> {
    if (this.#balancer !== undefined) return this.#balancer.endpoints();
    const shared = this.#opts.sharedSlots?.(this.#servicePort.key);
    return this.#servicePort.endpoints.map((ep) => idleStats(ep, shared));
  }

  /**
   * Cluster estimates for this Service port (see LeastConnBalancer.setCluster), for this
   * thread's balancer and, with worker threads, theirs.
   */
  setCluster(
    others: ReadonlyMap<string, number> | undefined,
    herdStep = 0,
    reserved: readonly string[] = [],
  ): void {
    this.balancer.setCluster(others, herdStep, reserved);
    this.#opts.onCluster?.(this.servicePort, others, herdStep, reserved);
  }

  /** Brings slow-start weights up to date, if there is a balancer (see LeastConnBalancer). */
  refreshWeights(): void {
    this.#balancer?.refreshWeights();
  }

  get servicePort(): string {
    return this.#servicePort.key;
  }

  get spec(): ServicePort {
    return this.#servicePort;
  }

  /** Open connections (established, not yet closed). Changed only by this proxy. */
  get connections(): ReadonlySet<Connection> {
    return this.#connections ?? NO_CONNECTIONS;
  }

  /** Counters of this Service port; made on first use. */
  get counters(): ServicePortCounters {
    return (this.#counters ??= new ServicePortCounters());
  }

  /**
   * Whether a client ever connected to this Service port (since it appeared). Ports that were
   * never used have all-zero counters: the default metrics leave them out.
   */
  get used(): boolean {
    return this.#counters !== undefined || this.remote !== undefined;
  }

  /** Whether this thread counted anything for this Service port (reading `counters` makes them). */
  get hasCounters(): boolean {
    return this.#counters !== undefined;
  }

  get listening(): boolean {
    return this.#remoteListening || (this.#server?.listening ?? false);
  }

  /** Whether this thread holds a listening socket of its own (not the workers'). */
  get listeningHere(): boolean {
    return this.#server?.listening ?? false;
  }

  /** Applies a newer version of this Service port. Returns the endpoints whose status changed. */
  update(servicePort: ServicePort): EndpointChange[] {
    const before = this.#servicePort;
    this.#servicePort = servicePort;
    if (this.#balancer !== undefined) return this.#balancer.update(servicePort.endpoints);
    return tableChanges(before.endpoints, servicePort.endpoints);
  }

  /**
   * Holds accepted clients (paused, not dialed) until `release`: for a listener adopted from the
   * rules of a previous process, which binds before the first service table says where its
   * endpoints are. A client then waits instead of being refused. At most
   * `HELD_CONNECTIONS_MAX` are held; more are reset.
   */
  hold(): void {
    this.#held ??= [];
  }

  /** Whether connections are being held (see `hold`). */
  get holding(): boolean {
    return this.#held !== undefined;
  }

  /** Ends holding: every held client that is still there is handled as if it just arrived. */
  release(): number {
    const held = this.#held;
    this.#held = undefined;
    if (held === undefined) return 0;
    let n = 0;
    for (const client of held) {
      if (client.destroyed) continue;
      n++;
      this.#onConnection(client);
    }
    return n;
  }

  /**
   * Binds the listener, with SO_REUSEPORT so that a second process (an upgrade) can listen on
   * the same address at the same time. Rejects with the socket error (EADDRINUSE,
   * EADDRNOTAVAIL, ...).
   */
  listen(host: string, port: number, here = false): Promise<AddressInfo> {
    const remote = this.#opts.remoteListeners;
    if (remote !== undefined && !here) {
      return remote.listen(this.servicePort, host, port).then(() => {
        this.#remoteListening = true;
        this.address = { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port };
        return this.address;
      });
    }
    const server = createServer(
      {
        allowHalfOpen: true,
        pauseOnConnect: true,
        noDelay: true,
      },
      this.#onConnection,
    );
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, reusePort: true, backlog: LISTEN_BACKLOG }, () => {
        server.removeListener('error', reject);
        // After listening, an accept error (EMFILE...) must not crash the daemon; Node keeps
        // accepting once descriptors free up. Counted, and reported to the observer (logs).
        server.on('error', (err: NodeJS.ErrnoException) => {
          const code = err.code ?? 'other';
          bump(this.counters.acceptErrors, code);
          this.#opts.observer?.acceptError?.(code, this);
        });
        this.#server = server;
        this.address = server.address() as AddressInfo;
        resolve(this.address);
      });
    });
  }

  /**
   * Takes over a listener bound before the daemon started (proxy/early-bind.ts), and the clients
   * it accepted meanwhile, which are held until `release`.
   */
  adoptServer(server: Server, held: readonly Socket[]): AddressInfo {
    server.removeAllListeners('connection');
    server.on('connection', this.#onConnection);
    this.#server = server;
    this.#held = [...held];
    this.address = server.address() as AddressInfo;
    return this.address;
  }

  /**
   * Stops accepting. Open connections are not touched. Resolves once the listening socket is
   * closed, not when the connections it accepted end (which is when net.Server's own close
   * callback would run).
   */
  stopListening(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (this.#remoteListening) {
      this.#remoteListening = false;
      const done = this.#opts.remoteListeners?.unlisten(this.servicePort);
      if (server === undefined) return done ?? Promise.resolve();
    }
    // Held clients never reached an endpoint: reset, as a refused connect would tell them.
    for (const c of this.#held ?? []) if (!c.destroyed) c.resetAndDestroy();
    this.#held = undefined;
    if (server === undefined) return Promise.resolve();
    server.close();
    return new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Worker threads, main thread: a listener this thread bound at start (adopted from the rules
   * of a previous process) is handed to the workers: they bind the same address (SO_REUSEPORT),
   * then this one closes (tcp_migrate_req moves its queue to theirs). Connections it accepted
   * stay here until they end. Rejects, keeping this listener, when the workers cannot bind.
   */
  async handOver(): Promise<void> {
    const remote = this.#opts.remoteListeners;
    const server = this.#server;
    if (remote === undefined || server === undefined || this.holding) return;
    const addr = this.address as AddressInfo;
    await remote.listen(this.servicePort, addr.address, addr.port);
    this.#remoteListening = true;
    this.#server = undefined;
    server.close();
  }

  #onConnection = (client: Socket): void => {
    const held = this.#held;
    if (held !== undefined) {
      // Nothing reads a held socket; an error on it (a reset) must still have a listener.
      client.on('error', () => {});
      if (held.length < HELD_CONNECTIONS_MAX) held.push(client);
      else client.resetAndDestroy();
      return;
    }
    try {
      this.faultHook?.(undefined, 'accept');
      this.#counters ??= new ServicePortCounters();
      // A client already gone shows up as an error or close on the socket; Connection handles
      // both.
      new Connection(client, this, this.now());
    } catch (err) {
      if (!client.destroyed) client.destroy();
      this.faulted(undefined, 'accept', err);
    }
  };

  /** Switches keepalive on for connections open at least `minAgeMs` (see Connection). */
  keepAliveSweep(now: number, minAgeMs: number): void {
    for (const c of this.connections) {
      if (!c.keepAlive && now - c.openedAt >= minAgeMs) c.enableKeepAlive(SOCKET_KEEPALIVE_MS);
    }
  }

  // ---- ConnectionHost ----

  established(conn: Connection): void {
    (this.#connections ??= new Set()).add(conn);
    this.#opts.observer?.established(conn, this);
  }

  turnedAway(_conn: Connection, reason: ConnectFailureReason): void {
    bump(this.counters.turnedAway, reason);
  }

  protocolKnown(conn: Connection, protocol: 'h2c' | 'opaque', desync: string | undefined): void {
    // A connection that loses sync after being h2c was counted as h2c: count the desync only.
    if (desync !== undefined) bump(this.counters.desyncs, desync);
    else bump(this.counters.protocols, protocol);
    this.#opts.observer?.protocolKnown?.(conn, this, desync);
  }

  faulted(conn: Connection | undefined, point: FaultPoint, err: unknown): void {
    bump(this.faults, point);
    this.#opts.onFault?.(this, point, err);
  }

  serverGoaway(): void {
    this.counters.serverGoaways++;
  }

  drainEnded(conn: Connection, end: DrainEnd): void {
    bump(this.counters.drainsEnded, end.outcome);
    this.counters.drainedStreamsNormal += end.streamsNormal;
    this.counters.drainedStreamsReset += end.streamsReset;
    this.#opts.observer?.drainEnded?.(conn, this, end);
  }

  earlyReset(conn: Connection): void {
    if (conn.endpoint !== undefined) this.balancer.earlyReset(conn.endpoint);
  }

  closed(conn: Connection): void {
    this.#connections?.delete(conn);
    bump(this.counters.closes, conn.closeReason ?? 'normal');
    this.counters.bytesClientToServer += conn.bytesClientToServer;
    this.counters.bytesServerToClient += conn.bytesServerToClient;
    this.#opts.observer?.closed(conn, this);
  }
}
