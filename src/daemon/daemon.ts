import { randomBytes } from 'node:crypto';
import { describe } from '../errors.js';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { Histogram } from 'prom-client';
import { createMetrics, type Metrics } from '../metrics/registry.js';
import { MetricsServer } from '../metrics/server.js';
import { debugState, type DebugState } from '../metrics/state.js';
import type { Connection } from '../proxy/connection.js';
import { Proxier, type InterceptMode } from '../proxy/proxier.js';
import { ConnectionLog } from '../proxy/connection-log.js';
import { TimeoutSweeper } from '../proxy/timeouts.js';
import type { ServicePortProxy } from '../proxy/service-port-proxy.js';
import { ServiceTableBuilder } from '../servicetable/builder.js';
import type { ServiceTable } from '../servicetable/types.js';
import type { Source } from '../source/types.js';
import { saveNat, syncFirewall, type IptablesOptions } from '../iptables/apply.js';
import { adoptRedirects } from '../iptables/adopt.js';
import type { Connection as ProxiedConnection, FaultPoint } from '../proxy/connection.js';
import { DEFAULT_PROXY_PORT_RANGE, type PortRange } from '../proxy/port-allocator.js';
import { enableTcpMigrateReq, type SysctlOutcome } from './sysctl.js';
import type { EarlyAdoption } from '../proxy/early-bind.js';
import { IptablesSync } from '../iptables/listener-sync.js';
import { DrainController, type DrainConfig } from '../drain/controller.js';
import { TableSink } from '../servicetable/table-sink.js';
import { ClusterSync, type PeerAddress } from '../cluster/sync.js';
import { withCluster } from '../cluster/debug.js';
import { LeaseElector } from '../cluster/elector.js';
import { holderIdentity } from '../cluster/lease.js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { LevelWithSilent } from 'pino';
import { SharedCounts, SlotTable } from '../balancer/shared-counts.js';
import { WorkerPool } from '../dataplane/pool.js';
import type { H2Event, WorkerSnapshot } from '../dataplane/protocol.js';
import { portStats, type PortStats } from '../metrics/port-stats.js';
import { mergeWorkerSnapshots } from '../dataplane/merge.js';

/** Everything `run` configures, already validated (see cli/config.ts). */
export interface DaemonConfig extends DrainConfig {
  /** Track HTTP/2 (h2c) connections and drain them with GOAWAY; off: every connection is opaque. */
  readonly h2Drain: boolean;
  readonly intercept: InterceptMode;
  /** Where /metrics etc. listen; undefined serves nothing (library use). */
  readonly metricsAddress: { readonly host: string; readonly port: number } | undefined;
  readonly nodeName: string | undefined;
  readonly shutdownGraceMs: number;
  readonly connectTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly slowStartWindowMs: number;
  /** Shortest time between two iptables syncs (intercept `iptables`). */
  readonly syncMinIntervalMs: number;
  /** Where new listener ports come from (intercept `iptables`). Default 61000-65535. */
  readonly proxyPortRange?: PortRange;
  /**
   * Set `net.ipv4.tcp_migrate_req=1` at start with intercept `iptables` (see sysctl.ts). Default
   * false for library use; `run` sets it unless `--no-set-tcp-migrate-req`.
   */
  readonly setTcpMigrateReq?: boolean;
  /** Per-endpoint metric series for every Service port (see metrics/registry.ts). Default off. */
  readonly metricsPerEndpoint?: boolean;
  /** The cluster view (issue 9); undefined: off, node-local counts only. */
  readonly cluster?: DaemonClusterConfig | undefined;
  /** After one side's FIN, close the connection at most this long later; 0 = never. */
  readonly halfClosedTimeoutMs: number;
  /** No byte either way for this long: close (opaque) or drain (h2c); 0 = never. */
  readonly idleTimeoutMs: number;
  /**
   * Worker threads for the data path (issue 11); 0 or unset: the data path runs on the main
   * thread (library use). `run` defaults to the CPUs the container may use.
   */
  readonly workers?: number;
  /** V8 old-space limit of each worker, in MiB; a worker past it is replaced. */
  readonly workerHeapLimitMb?: number;
}

/** Default of `workerHeapLimitMb`. */
export const DEFAULT_WORKER_HEAP_LIMIT_MB = 512;

/** The cluster view over a static peer list. */
export interface DaemonClusterConfig {
  readonly node: string;
  readonly peers: readonly PeerAddress[];
  readonly secret: Buffer;
  readonly intervalMs: number;
  /** `--source k8s`: the aggregator is elected with a Lease (needs DaemonDeps.kubeConfig). */
  readonly lease?: { readonly namespace: string; readonly advertise: string } | undefined;
}

export const DEFAULT_DAEMON_CONFIG: DaemonConfig = {
  intercept: 'none',
  metricsAddress: { host: '127.0.0.1', port: 9901 },
  nodeName: undefined,
  shutdownGraceMs: 30_000,
  connectTimeoutMs: 1_000,
  maxConnectAttempts: 3,
  slowStartWindowMs: 0,
  syncMinIntervalMs: 1_000,
  h2Drain: true,
  maxConnectionAgeMs: 600_000,
  drainGraceMs: 30_000,
  drainMaxConcurrent: { percent: 10 },
  drainRatePerSec: 20,
  rebalanceThreshold: 1.2,
  // kube-proxy's conntrack defaults (tcpCloseWaitTimeout 1h, tcpEstablishedTimeout 24h): a flow
  // that would have survived kube-proxy survives here.
  halfClosedTimeoutMs: 3_600_000,
  idleTimeoutMs: 86_400_000,
};

const children = new WeakMap<Histogram<string>, Map<string, Observer>>();

/**
 * A histogram's child for one label value, made once: observing through it skips hashing the
 * labels on every connection close.
 */
function child<L extends string>(h: Histogram<L>, label: L, value: string): Observer {
  let byValue = children.get(h as Histogram<string>);
  if (byValue === undefined) children.set(h as Histogram<string>, (byValue = new Map()));
  let c = byValue.get(value);
  if (c === undefined)
    byValue.set(value, (c = h.labels({ [label]: value } as Partial<Record<L, string>>)));
  return c;
}

interface Observer {
  observe(value: number): void;
}

/** After our FIN on a drained connection, reading goes on this long before the sockets go. */
const DRAIN_LINGER_MS = 2_000;
/** Longest wait for a server PING ACK to inject after (keepalive timing, see H2Tap). */
const PING_ACK_WAIT_MAX_MS = 10_000;

export interface DaemonDeps {
  readonly source: Source;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
  /** Also export Node's default process metrics. Default true. */
  readonly defaultMetrics?: boolean;
  /** API client configuration for the cluster view's Lease (lease mode only). */
  readonly kubeConfig?: KubeConfig | undefined;
  /** iptables binaries and spawn (intercept `iptables`); tests run them in a namespace. */
  readonly iptables?: Partial<IptablesOptions>;
  /**
   * Test seam, never set by the CLI: called at the start of every guarded connection event
   * handler; a throw from it is a fault in that handler (see ServicePortProxyOptions).
   */
  readonly faultHook?: (conn: ProxiedConnection | undefined, point: FaultPoint) => void;
  /**
   * Test seam, never set by the CLI: workers obey `WorkerPool.injectFault` and
   * `Daemon.drainEvery` works.
   */
  readonly testSeams?: boolean;
  /** Where tcp_migrate_req lives; tests point it elsewhere. */
  readonly sysctlPath?: string;
  /**
   * Listeners `run` bound for the rules in place before it loaded the daemon
   * (proxy/early-bind.ts); adopted in place of reading the rules again.
   */
  readonly prebound?: EarlyAdoption;
}

/**
 * How long clients of listeners adopted at start are held while the first service table is
 * awaited; after that they are turned away like clients of a Service port without endpoints.
 */
const ADOPT_HOLD_MS = 10_000;

/**
 * The proxy daemon, wired but not started: constructing it binds nothing, so tests can build one
 * and start only what they need. Data flows one way: source → TableSink → ServiceTable →
 * Proxier (listeners, balancers). The data path never waits on the source.
 */
export class Daemon {
  readonly config: DaemonConfig;
  readonly logger: Logger;
  readonly source: Source;
  readonly proxier: Proxier;
  readonly metrics: Metrics;
  readonly sink: TableSink;
  readonly drains: DrainController;
  /** Present with intercept `iptables`. */
  readonly iptables: IptablesSync | undefined;
  /** Present when the cluster view is on. */
  readonly cluster: ClusterSync | undefined;
  /** Present when the cluster view elects its aggregator with a Lease. */
  readonly elector: LeaseElector | undefined;
  /** Enforces the half-closed and idle timeouts. */
  readonly timeouts: TimeoutSweeper;
  /** The data-path worker threads (config.workers > 0). */
  readonly pool: WorkerPool | undefined;
  /** Worker threads on: ids (as the drain controller knows them) of each worker's h2c connections. */
  readonly #remoteIds = new Map<number, Set<number>>();
  #metricsServer: MetricsServer | undefined;
  #table: ServiceTable | undefined;
  #stopping: Promise<void> | undefined;
  readonly #deps: DaemonDeps;
  #loggedReady = false;
  #firstApplied = false;
  /** The state of net.ipv4.tcp_migrate_req after start. */
  tcpMigrateReq: SysctlOutcome | undefined;

  constructor(config: DaemonConfig, deps: DaemonDeps) {
    this.config = config;
    this.#deps = deps;
    this.logger = deps.logger;
    this.source = deps.source;
    const now = deps.now ?? Date.now;
    const random = deps.random ?? Math.random;
    this.drains = new DrainController(config, {
      now,
      random,
      logger: deps.logger,
      // The Proxier, created next, owns the Service ports; these run only after construction.
      ports: {
        get: (key) => this.proxier.get(key),
        servicePorts: () => this.proxier.servicePorts(),
      },
    });
    const drains = this.drains;
    const connLog = new ConnectionLog(deps.logger, now);
    const workers = Math.max(0, Math.floor(config.workers ?? 0));
    const h2 = config.h2Drain
      ? {
          // Unique to this process: only the ACK of our own PING is removed.
          pingPayload: randomBytes(8),
          pingAckWaitMaxMs: Math.min(PING_ACK_WAIT_MAX_MS, config.drainGraceMs / 2),
          lingerMs: DRAIN_LINGER_MS,
        }
      : undefined;
    // Regions of the shared counts: one per worker, then this thread's (adopted listeners).
    const counts = workers > 0 ? SharedCounts.create(workers + 1) : undefined;
    const slotTable = counts !== undefined ? new SlotTable(counts) : undefined;
    this.pool =
      counts === undefined || slotTable === undefined
        ? undefined
        : new WorkerPool({
            workers,
            counts,
            slots: slotTable,
            logger: deps.logger,
            random,
            heapLimitMb: config.workerHeapLimitMb ?? DEFAULT_WORKER_HEAP_LIMIT_MB,
            settings: {
              logLevel: deps.logger.level as LevelWithSilent,
              connectTimeoutMs: config.connectTimeoutMs,
              maxConnectAttempts: config.maxConnectAttempts,
              slowStartWindowMs: config.slowStartWindowMs,
              h2,
              halfClosedTimeoutMs: config.halfClosedTimeoutMs,
              idleTimeoutMs: config.idleTimeoutMs,
              drainGraceMs: config.drainGraceMs,
              faultSeam: deps.testSeams ?? false,
            },
            onEvents: (worker, events) => this.#onWorkerEvents(worker, events),
            onWorkerLost: (worker) => {
              for (const id of this.#remoteIds.get(worker) ?? []) drains.forgetRemote(id);
              this.#remoteIds.delete(worker);
            },
          });
    const pool = this.pool;
    this.proxier = new Proxier({
      intercept: config.intercept,
      logger: deps.logger,
      connectTimeoutMs: config.connectTimeoutMs,
      maxConnectAttempts: config.maxConnectAttempts,
      slowStartWindowMs: config.slowStartWindowMs,
      now,
      random,
      h2,
      ...(pool !== undefined && counts !== undefined && slotTable !== undefined
        ? {
            remoteListeners: pool,
            sharedSlots: (sp: string) => ({
              counts,
              region: workers,
              slotOf: (ep: string) => slotTable.slotOf(sp, ep),
            }),
            onCluster: (
              sp: string,
              others: ReadonlyMap<string, number> | undefined,
              herdStep: number,
              reserved: readonly string[],
            ) => pool.setCluster(sp, others, herdStep, reserved),
          }
        : {}),
      onListenersChanged: () => this.iptables?.requestSync(),
      portRange: config.proxyPortRange ?? DEFAULT_PROXY_PORT_RANGE,
      ...(deps.faultHook !== undefined ? { faultHook: deps.faultHook } : {}),
      onEndpointChanges: (owner, changes) => drains.endpointChanges(owner, changes),
      observer: {
        established: (conn, owner) => connLog.established(conn, owner),
        acceptError: (code, owner) => connLog.acceptError(code, owner),
        protocolKnown: (conn, owner, desync) => {
          connLog.protocolKnown(conn, owner, desync);
          drains.protocolKnown(conn, owner);
        },
        drainEnded: (_conn, _owner, end) =>
          child(this.metrics.drainDuration, 'outcome', end.outcome).observe(end.seconds),
        closed: (conn: Connection, owner: ServicePortProxy) => {
          connLog.closed(conn, owner);
          drains.closed(conn, owner);
          child(this.metrics.connectionAge, 'protocol', conn.protocol).observe(
            (now() - conn.openedAt) / 1000,
          );
        },
      },
    });
    this.timeouts = new TimeoutSweeper({
      halfClosedMs: config.halfClosedTimeoutMs,
      idleMs: config.idleTimeoutMs,
      now,
      servicePorts: () => this.proxier.servicePorts(),
      drainIdle: (conn, owner) => drains.drainIdle(conn, owner),
    });
    this.iptables =
      config.intercept === 'iptables'
        ? new IptablesSync({
            proxier: this.proxier,
            logger: deps.logger,
            iptables: deps.iptables,
            minIntervalMs: config.syncMinIntervalMs,
            portRange: config.proxyPortRange ?? DEFAULT_PROXY_PORT_RANGE,
            onSync: (r) => {
              this.metrics.syncDuration.observe(r.durationSeconds);
              if (r.ok) this.#checkReady();
            },
          })
        : undefined;
    const currentPorts = function* (proxier: Proxier): Iterable<ServicePortProxy> {
      for (const p of proxier.servicePorts()) if (proxier.get(p.servicePort) === p) yield p;
    };
    const lease = config.cluster?.lease;
    if (lease !== undefined && deps.kubeConfig === undefined)
      throw new Error('the cluster view with a Lease needs an API client configuration');
    this.elector =
      config.cluster === undefined || lease === undefined
        ? undefined
        : new LeaseElector({
            kc: deps.kubeConfig as KubeConfig,
            namespace: lease.namespace,
            identity: holderIdentity(config.cluster.node, lease.advertise),
            node: config.cluster.node,
            logger: deps.logger,
            now,
            aggregatorAnswers: () => this.cluster?.aggregatorAnswers() ?? false,
          });
    const elector = this.elector;
    this.cluster =
      config.cluster === undefined
        ? undefined
        : new ClusterSync({
            ...config.cluster,
            logger: deps.logger,
            now,
            random,
            servicePorts: () => currentPorts(this.proxier),
            setClusterDrains: (sp, d) => drains.setClusterDrains(sp, d),
            ...(elector !== undefined
              ? { aggregator: () => elector.aggregator, onAggregatorLost: () => elector.nudge() }
              : {}),
          });
    this.sink = new TableSink({
      builder: new ServiceTableBuilder({ nodeName: config.nodeName }),
      logger: deps.logger,
      onTable: (table) => this.#applyTable(table),
    });
    const sink = this.sink;
    const proxier = this.proxier;
    const source = this.source;
    this.metrics = createMetrics(
      {
        servicePorts: () => this.#portStats(),
        get ready() {
          return sink.ready;
        },
        get tableApplies() {
          return sink.tableApplies;
        },
        *rejectedUpdates() {
          for (const [kind, n] of sink.rejectedObjects) yield [{ source: source.kind, kind }, n];
          const stats = source.statsView?.();
          if (stats?.kind === 'file')
            yield [{ source: 'file', kind: 'file' }, stats.file.rejectedUpdates];
        },
        listenFailures: () => proxier.listenFailures.entries(),
        connectionFaults: () => sumEntries(proxier.faults, this.#workerFaults),
        tcpMigrateReq: () => this.tcpMigrateReq?.enabled,
        workers:
          pool === undefined
            ? undefined
            : {
                size: pool.size,
                get ready() {
                  return pool.ready;
                },
                restarts: pool.stats.restarts,
                get lostConnections() {
                  return pool.stats.lostConnections;
                },
                connections: () => this.#workerConnections,
              },
        iptables: this.iptables?.stats,
        // Read at scrape time: the k8s source may load its client only once started.
        get k8s() {
          const stats = source.statsView?.();
          return stats?.kind === 'k8s' ? stats.k8s : undefined;
        },
        cluster: this.cluster,
        clusterElector: this.elector,
      },
      {
        defaultMetrics: deps.defaultMetrics ?? true,
        perEndpoint: config.metricsPerEndpoint ?? false,
      },
    );
  }

  /**
   * Ready once the first full table is applied (its listeners bound or being retried) and, with
   * intercept `iptables`, the rules have been synced after it; until shutdown starts. During an
   * upgrade this is what lets the old process go: by then this one listens on every port.
   */
  get ready(): boolean {
    return (
      this.sink.ready &&
      this.#stopping === undefined &&
      (this.iptables === undefined || this.iptables.synced)
    );
  }

  /** Logs `ready` the first time the daemon is ready (a new process next to an old one). */
  #checkReady(): void {
    if (this.#loggedReady || !this.ready) return;
    this.#loggedReady = true;
    this.logger.info(
      { servicePorts: this.#table?.ports.size ?? 0, unbound: this.proxier.unbound },
      'ready',
    );
  }

  state(): DebugState {
    const state = debugState(
      this.ready,
      this.#table?.version ?? 0,
      mapIter(this.proxier.servicePorts(), portStats),
      (sp) => this.drains.isRebalancing(sp),
    );
    const pool = this.pool;
    const withWorkers: DebugState =
      pool === undefined
        ? state
        : {
            ...state,
            workers: {
              configured: pool.size,
              ready: pool.ready,
              restarts: Object.fromEntries(pool.stats.restarts),
              lostConnections: pool.stats.lostConnections,
              perWorker: this.#workerFigures,
            },
          };
    return this.cluster === undefined ? withWorkers : withCluster(withWorkers, this.cluster);
  }

  /** Worker threads on: a worker's h2c connections, for the drain planner (node-wide). */
  #onWorkerEvents(worker: number, events: readonly H2Event[]): void {
    const pool = this.pool as WorkerPool;
    let ids = this.#remoteIds.get(worker);
    if (ids === undefined) this.#remoteIds.set(worker, (ids = new Set()));
    for (const e of events) {
      const id = remoteId(worker, e[1]);
      if (e[0] === 'open') {
        const local = e[1];
        ids.add(id);
        this.drains.trackRemote(
          {
            id,
            drain: (reason, graceMs) => {
              pool.drain(worker, [local], reason, graceMs);
              return true;
            },
          },
          e[2],
          e[3],
          e[4],
          e[5] === 1,
        );
      } else if (e[0] === 'gone') {
        ids.delete(id);
        this.drains.forgetRemote(id);
      } else {
        this.drains.remoteDraining(id);
      }
    }
  }

  /**
   * Brings the workers' figures in (worker threads on): counters for the metrics and
   * /debug/state, and the ages and drain durations observed since the last time. Called before
   * every scrape; connection counts need no call (they are shared).
   */
  async refreshStats(): Promise<void> {
    if (this.pool === undefined) return;
    const snapshots: WorkerSnapshot[] = await this.pool.snapshots();
    const merged = mergeWorkerSnapshots(snapshots);
    for (const p of this.proxier.servicePorts()) p.remote = merged.ports.get(p.servicePort);
    this.#workerFaults = merged.faults;
    this.#workerConnections = snapshots.map((s) => s.connections);
    this.#workerFigures = snapshots.map((s) => ({
      connections: s.connections,
      heapUsedBytes: s.heapUsed,
    }));
    for (const [protocol, ages] of merged.ages) {
      const h = child(this.metrics.connectionAge, 'protocol', protocol);
      for (const a of ages) h.observe(a);
    }
    for (const [outcome, secs] of merged.drainSeconds) {
      const h = child(this.metrics.drainDuration, 'outcome', outcome);
      for (const d of secs) h.observe(d);
    }
  }

  /**
   * Every Service port's stats view, made once per turn of the event loop: one scrape reads
   * them for every metric.
   */
  #portStats(): readonly PortStats[] {
    if (this.#statsCache === undefined) {
      this.#statsCache = [...mapIter(this.proxier.servicePorts(), portStats)];
      setImmediate(() => (this.#statsCache = undefined));
    }
    return this.#statsCache;
  }

  #statsCache: PortStats[] | undefined;
  #workerFaults: ReadonlyMap<string, number> = new Map();
  #workerConnections: number[] = [];
  #workerFigures: { connections: number; heapUsedBytes: number }[] = [];

  /** Open connections in the workers, as of the last refresh, per worker. */
  get workerConnections(): readonly number[] {
    return this.#workerConnections;
  }

  /**
   * Starts serving metrics, then the source. Rejects when the metrics address cannot be bound
   * or the source cannot start (a bad manifests file).
   */
  async start(): Promise<{ metrics: AddressInfo | undefined }> {
    let metrics: AddressInfo | undefined;
    // Stop then start: the rules of the previous process still redirect here. Listen on their
    // ports first, before anything else, so the window in which clients are refused ends now.
    if (this.iptables !== undefined) await this.#adoptListeners();
    await this.pool?.start();
    this.tcpMigrateReq = await enableTcpMigrateReq(this.logger, {
      // Only where the proxy owns the node's network namespace anyway (it writes its iptables);
      // intercept `none` runs in shared namespaces (the demo, tests) and leaves it alone.
      set: (this.config.setTcpMigrateReq ?? false) && this.config.intercept === 'iptables',
      ...(this.#deps.sysctlPath !== undefined ? { path: this.#deps.sysctlPath } : {}),
    });
    const addr = this.config.metricsAddress;
    if (addr !== undefined) {
      this.#metricsServer = new MetricsServer({
        registry: this.metrics.registry,
        refresh: () => this.refreshStats(),
        ready: () => this.ready,
        state: () => this.state(),
        logger: this.logger,
        cluster: this.cluster,
      });
      metrics = await this.#metricsServer.listen(addr.host, addr.port);
      this.logger.info({ address: `${metrics.address}:${metrics.port}` }, 'metrics listening');
    }
    try {
      if (this.iptables !== undefined) await this.#syncFirewall();
      await this.source.start(this.sink);
    } catch (err) {
      await this.#metricsServer?.close();
      await this.proxier.stopListening();
      await this.pool?.terminate();
      throw err;
    }
    this.drains.start();
    this.elector?.start();
    this.cluster?.start();
    this.timeouts.start();
    return { metrics };
  }

  /**
   * Reads the REDIRECT rules a previous process left and binds their ports. A failure to read
   * them is logged and not fatal: the first sync then chooses ports as on a fresh node.
   */
  async #adoptListeners(): Promise<void> {
    const ipt: IptablesOptions = { logger: this.logger, ...this.#deps.iptables };
    const early = this.#deps.prebound;
    if (early?.rules !== undefined) {
      await this.proxier.adopt(early.rules, ADOPT_HOLD_MS, early.listeners);
      return;
    }
    let adopted;
    try {
      adopted = adoptRedirects(await saveNat(ipt));
    } catch (err) {
      this.logger.warn({ err: describe(err) }, 'cannot read the rules in place; adopting no ports');
      return;
    }
    await this.proxier.adopt(adopted, ADOPT_HOLD_MS);
  }

  /**
   * Closes the port range to connections that were not redirected before any new listener
   * binds (the full sync after the first table rewrites it). A failure is logged; the syncer
   * retries it with the rest.
   */
  async #syncFirewall(): Promise<void> {
    const ipt: IptablesOptions = { logger: this.logger, ...this.#deps.iptables };
    try {
      await syncFirewall(
        ipt,
        this.config.proxyPortRange ?? DEFAULT_PROXY_PORT_RANGE,
        this.proxier.listenerPorts(),
      );
    } catch (err) {
      this.logger.error({ err: describe(err) }, 'cannot install the firewall chain; will retry');
    }
  }

  /** Resolves once every table handed over so far is applied. */
  settled(): Promise<void> {
    return this.sink.settled();
  }

  /**
   * Graceful stop: stop the source, close every listener, wait up to the shutdown grace for
   * open connections to end, then close what is left. Idempotent.
   */
  shutdown(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  /**
   * Test seam (DaemonDeps.testSeams): drains every open connection now, in this thread and the
   * workers, as the drain controller would (wire tests drive a drain at a chosen moment).
   */
  drainEvery(reason: string, graceMs: number): void {
    if (this.#deps.testSeams !== true) throw new Error('drainEvery is a test seam');
    for (const p of this.proxier.servicePorts())
      for (const c of p.connections) c.drain(reason, graceMs);
    this.pool?.drainEvery(reason, graceMs);
  }

  /** Closes every connection now (a second signal). */
  forceClose(): void {
    this.proxier.destroyAll();
    this.pool?.destroyAll();
  }

  async #shutdown(): Promise<void> {
    const log = this.logger;
    // Listeners first: from here the kernel sends every new connection to the other process
    // listening on the same ports (an upgrade), and tcp_migrate_req moves the ones queued here.
    await this.proxier.stopListening();
    // Then the cluster view: the aggregator releases its Lease so another takes over at once.
    await this.cluster?.stop();
    await this.elector?.stop();
    this.drains.stop();
    this.timeouts.stop();
    // The workers' open connections, drained below with this thread's.
    const inWorkers = (await this.pool?.snapshots())?.reduce((n, w) => n + w.connections, 0) ?? 0;
    const open = this.proxier.connectionCount + inWorkers;
    // h2c connections get GOAWAY at once, so their clients reconnect (to the new process in an
    // upgrade) and they close when their streams end; the others are closed at the grace
    // deadline unless they end before. Nothing is reset here: streams run to their end.
    const draining = this.drains.shutdown(this.config.shutdownGraceMs) + inWorkers;
    // The workers drain theirs the same way, and end once they have none (or at the grace).
    const workersDone = this.pool?.shutdown(this.config.shutdownGraceMs);
    log.info(
      { openConnections: open, draining, graceMs: this.config.shutdownGraceMs },
      'stopped accepting; draining open connections',
    );
    // The metrics port too, so the kubelet's probes of the new pod reach the new process (the
    // kubelet stops liveness probes of a pod being deleted, so this one is not restarted).
    await this.#metricsServer?.close();
    await this.source.stop();
    // The rules stay: the next process adopts their ports, and `cleanup` removes them.
    await this.iptables?.stop();
    const deadline = Date.now() + this.config.shutdownGraceMs;
    while (this.proxier.connectionCount > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const left = this.proxier.connectionCount;
    if (left > 0) {
      log.warn({ openConnections: left }, 'shutdown grace over; closing the connections left');
      this.proxier.destroyAll();
    }
    const workersLeft = (await workersDone) ?? 0;
    if (workersLeft > 0)
      log.warn(
        { openConnections: workersLeft },
        'shutdown grace over; the workers closed the connections left',
      );
    log.info('stopped');
  }

  async #applyTable(table: ServiceTable): Promise<void> {
    this.#table = table;
    this.logger.info(
      { version: table.version, servicePorts: table.ports.size },
      'service table applied',
    );
    const first = !this.#firstApplied;
    // The workers get the table (and its endpoint slots) before any listener of it binds.
    this.pool?.publish(table);
    await this.proxier.apply(table);
    this.#firstApplied = true;
    // The first table may change no listener (none adopted, none new): sync anyway, since
    // readiness waits for a sync after it.
    if (first) this.iptables?.requestSync();
    // The sink counts this table as applied once this returns.
    setImmediate(() => this.#checkReady());
  }
}

/**
 * The id a worker's connection has in the drain controller: negative, so it never meets one of
 * this thread's (positive) connection ids, and unique per worker index.
 */
function remoteId(worker: number, local: number): number {
  return -(local * 1024 + worker + 1);
}

function* mapIter<A, B>(items: Iterable<A>, f: (a: A) => B): IterableIterator<B> {
  for (const a of items) yield f(a);
}

function* sumEntries(
  a: ReadonlyMap<string, number>,
  b: ReadonlyMap<string, number>,
): IterableIterator<[string, number]> {
  for (const [k, n] of a) yield [k, n + (b.get(k) ?? 0)];
  for (const [k, n] of b) if (!a.has(k)) yield [k, n];
}
