import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { Histogram } from 'prom-client';
import { createMetrics, type Metrics } from '../metrics/registry.js';
import { MetricsServer } from '../metrics/server.js';
import { debugState, type DebugState } from '../metrics/state.js';
import type { Connection } from '../proxy/connection.js';
import { Proxier, type InterceptMode } from '../proxy/proxier.js';
import type { ServicePortProxy } from '../proxy/service-port-proxy.js';
import { ServiceTableBuilder } from '../servicetable/builder.js';
import type { ServiceTable } from '../servicetable/types.js';
import type { K8sSourceStats } from '../source/k8s/stats.js';
import type { Source } from '../source/types.js';
import type { IptablesOptions } from '../iptables/apply.js';
import { IptablesSync } from './iptables-sync.js';
import { DrainController, type DrainConfig } from './drain-controller.js';
import { TableSink } from './table-sink.js';

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
  /** iptables binaries and spawn (intercept `iptables`); tests run them in a namespace. */
  readonly iptables?: Partial<IptablesOptions>;
}

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
  #metricsServer: MetricsServer | undefined;
  #table: ServiceTable | undefined;
  #stopping: Promise<void> | undefined;

  constructor(config: DaemonConfig, deps: DaemonDeps) {
    this.config = config;
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
    this.proxier = new Proxier({
      intercept: config.intercept,
      logger: deps.logger,
      connectTimeoutMs: config.connectTimeoutMs,
      maxConnectAttempts: config.maxConnectAttempts,
      slowStartWindowMs: config.slowStartWindowMs,
      now,
      random,
      h2: config.h2Drain
        ? {
            // Unique to this process: only the ACK of our own PING is removed.
            pingPayload: randomBytes(8),
            pingAckWaitMaxMs: Math.min(PING_ACK_WAIT_MAX_MS, config.drainGraceMs / 2),
            lingerMs: DRAIN_LINGER_MS,
          }
        : undefined,
      onListenersChanged: () => this.iptables?.requestSync(),
      onEndpointChanges: (owner, changes) => drains.endpointChanges(owner, changes),
      observer: {
        established: () => {},
        protocolKnown: (conn, owner) => drains.protocolKnown(conn, owner),
        drainEnded: (_conn, _owner, end) =>
          child(this.metrics.drainDuration, 'outcome', end.outcome).observe(end.seconds),
        closed: (conn: Connection, owner: ServicePortProxy) => {
          drains.closed(conn, owner);
          child(this.metrics.connectionAge, 'protocol', conn.protocol).observe(
            (now() - conn.openedAt) / 1000,
          );
        },
      },
    });
    this.iptables =
      config.intercept === 'iptables'
        ? new IptablesSync({
            proxier: this.proxier,
            logger: deps.logger,
            iptables: deps.iptables,
            minIntervalMs: config.syncMinIntervalMs,
            onSync: (r) => this.metrics.syncDuration.observe(r.durationSeconds),
          })
        : undefined;
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
        servicePorts: () => proxier.servicePorts(),
        get ready() {
          return sink.ready;
        },
        get tableApplies() {
          return sink.tableApplies;
        },
        *rejectedUpdates() {
          for (const [kind, n] of sink.rejectedObjects) yield [{ source: source.kind, kind }, n];
          const fileStats = (source as { stats?: { rejectedUpdates?: number } }).stats;
          if (source.kind === 'file' && fileStats?.rejectedUpdates !== undefined) {
            yield [{ source: 'file', kind: 'file' }, fileStats.rejectedUpdates];
          }
        },
        listenFailures: () => proxier.listenFailures.entries(),
        iptables: this.iptables?.stats,
        k8s:
          source.kind === 'k8s'
            ? (source as unknown as { stats: K8sSourceStats }).stats
            : undefined,
      },
      { defaultMetrics: deps.defaultMetrics ?? true },
    );
  }

  /** Ready once the first full table is applied, until shutdown starts. */
  get ready(): boolean {
    return this.sink.ready && this.#stopping === undefined;
  }

  state(): DebugState {
    return debugState(this.ready, this.#table?.version ?? 0, this.proxier.servicePorts(), (sp) =>
      this.drains.isRebalancing(sp),
    );
  }

  /**
   * Starts serving metrics, then the source. Rejects when the metrics address cannot be bound
   * or the source cannot start (a bad manifests file).
   */
  async start(): Promise<{ metrics: AddressInfo | undefined }> {
    let metrics: AddressInfo | undefined;
    const addr = this.config.metricsAddress;
    if (addr !== undefined) {
      this.#metricsServer = new MetricsServer({
        registry: this.metrics.registry,
        ready: () => this.ready,
        state: () => this.state(),
        logger: this.logger,
      });
      metrics = await this.#metricsServer.listen(addr.host, addr.port);
      this.logger.info({ address: `${metrics.address}:${metrics.port}` }, 'metrics listening');
    }
    try {
      await this.source.start(this.sink);
    } catch (err) {
      await this.#metricsServer?.close();
      throw err;
    }
    this.drains.start();
    return { metrics };
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

  /** Closes every connection now (a second signal). */
  forceClose(): void {
    this.proxier.destroyAll();
  }

  async #shutdown(): Promise<void> {
    const log = this.logger;
    await this.source.stop();
    // The REDIRECT rules stay: a restarted proxy rewrites them, and `cleanup` removes them.
    await this.iptables?.stop();
    await this.proxier.stopListening();
    this.drains.stop();
    const open = this.proxier.connectionCount;
    // h2c connections get GOAWAY and close when their streams end; the others are closed at
    // the grace deadline unless they end before.
    const draining = this.drains.shutdown(this.config.shutdownGraceMs);
    log.info(
      { openConnections: open, draining, graceMs: this.config.shutdownGraceMs },
      'stopped accepting; draining open connections',
    );
    const deadline = Date.now() + this.config.shutdownGraceMs;
    while (this.proxier.connectionCount > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const left = this.proxier.connectionCount;
    if (left > 0) {
      log.warn({ openConnections: left }, 'shutdown grace over; closing the connections left');
      this.proxier.destroyAll();
    }
    await this.#metricsServer?.close();
    log.info('stopped');
  }

  async #applyTable(table: ServiceTable): Promise<void> {
    this.#table = table;
    this.logger.info(
      { version: table.version, servicePorts: table.ports.size },
      'service table applied',
    );
    await this.proxier.apply(table);
  }
}
