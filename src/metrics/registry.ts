import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EndpointRow, PortStats } from './port-stats.js';
import type { IptablesSyncStats } from '../iptables/listener-sync.js';
import type { K8sSourceStats } from '../source/k8s/stats.js';
import type { ClusterSync } from '../cluster/sync.js';
import type { LeaseElector } from '../cluster/elector.js';
import { skewOf } from './state.js';

/**
 * Every metric of the daemon, in one registry (kube-proxy keeps its metrics in one file the
 * same way). The data path counts in plain fields; values are read here at scrape time through
 * `MetricsView`. Only events that happen once per connection or per sync (durations) are
 * observed directly, never anything per chunk.
 *
 * Cardinality (issue 13): by default a Service port has series only once a client connected to
 * it, and they are summed over its endpoints (no `endpoint` label), so a node's series grow with
 * the Service ports in use, not with every Service of the cluster. Node-level summaries (Service
 * ports by state, the skew distribution) are always there. `perEndpoint` brings back one series
 * per endpoint for every Service port, idle ones included. /debug/state keeps the full detail.
 */

/** What the metrics read at scrape time. Implemented by the daemon. */
export interface MetricsView {
  servicePorts(): Iterable<PortStats>;
  readonly ready: boolean;
  readonly tableApplies: number;
  /** Rejected updates by source (`file`, `k8s`) and kind (`Service`, `EndpointSlice`, `file`). */
  rejectedUpdates(): Iterable<[{ source: string; kind: string }, number]>;
  /** Listener binds that failed, by error code. */
  listenFailures(): Iterable<[string, number]>;
  /** Connection event handlers that threw (contained), by point. */
  connectionFaults?(): Iterable<[string, number]>;
  /** Whether net.ipv4.tcp_migrate_req is on; undefined before start. */
  tcpMigrateReq?(): boolean | undefined;
  /** Present with worker threads (issue 11). */
  readonly workers?: WorkersView | undefined;
  /** Present with intercept `iptables`. */
  readonly iptables?: IptablesSyncStats | undefined;
  /** Present with the k8s source. */
  readonly k8s?: K8sSourceStats | undefined;
  /** Present when the cluster view is on. */
  readonly cluster?: ClusterSync | undefined;
  /** Present when the cluster view elects its aggregator with a Lease. */
  readonly clusterElector?: LeaseElector | undefined;
}

/** The data-path worker threads, as the metrics read them. */
export interface WorkersView {
  /** Workers configured. */
  readonly size: number;
  /** Workers running and ready now. */
  readonly ready: number;
  /** Workers replaced, by reason (exception, heap_limit, exit). */
  readonly restarts: ReadonlyMap<string, number>;
  /** Connections lost with the replaced workers. */
  readonly lostConnections: number;
  /** Open connections per worker, as of the last refresh. */
  connections(): readonly number[];
}

type Labels = Record<string, string>;

/** What `createMetrics` exports. */
export interface MetricsOptions {
  /** prom-client's process and Node.js metrics. Default true. */
  readonly defaultMetrics?: boolean;
  /** One series per endpoint, for every Service port (idle ones included). Default false. */
  readonly perEndpoint?: boolean;
}

/** Upper bounds of `service_port_skew` (Service ports with skew at most `le`). */
export const SKEW_BUCKETS = [1.1, 1.2, 1.5, 2, 3, 5] as const;

export interface Metrics {
  readonly registry: Registry;
  /** Age of connections when they close, by protocol. */
  readonly connectionAge: Histogram<'protocol'>;
  /** Seconds from drain start to close, by outcome. */
  readonly drainDuration: Histogram<'outcome'>;
  /** Seconds an iptables sync took. */
  readonly syncDuration: Histogram;
}

const PREFIX = 'kube_lc_proxy_';

/** Sums values per label set (a retired Service port and its successor share labels). */
function summed(rows: Iterable<[Labels, number]>): Map<string, [Labels, number]> {
  const out = new Map<string, [Labels, number]>();
  for (const [labels, v] of rows) {
    const key = JSON.stringify(labels);
    const cur = out.get(key);
    if (cur === undefined) out.set(key, [labels, v]);
    else cur[1] += v;
  }
  return out;
}

type Read = () => Iterable<[Labels, number]>;

/**
 * A metric whose values are read from `read` at scrape time: all series are dropped and set
 * again on each scrape, so series of things that are gone disappear.
 */
function scraped(
  kind: 'counter' | 'gauge',
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: Read,
): void {
  const config = { name: PREFIX + name, help, labelNames, registers: [registry] };
  if (kind === 'counter') {
    new Counter({
      ...config,
      collect() {
        this.reset();
        for (const [labels, v] of summed(read()).values()) this.inc(labels, v);
      },
    });
  } else {
    new Gauge({
      ...config,
      collect() {
        this.reset();
        for (const [labels, v] of summed(read()).values()) this.set(labels, v);
      },
    });
  }
}

const counter = (
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: Read,
): void => scraped('counter', registry, name, help, labelNames, read);
const gauge = (
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: Read,
): void => scraped('gauge', registry, name, help, labelNames, read);

/** Creates the registry with every metric wired to `view`. */
export function createMetrics(view: MetricsView, opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const all = opts.perEndpoint === true;

  /** The Service ports that get series: every one with `perEndpoint`, else those in use. */
  function* ports(): Iterable<PortStats> {
    for (const p of view.servicePorts()) if (all || p.used) yield p;
  }

  /** A value per endpoint, or its sum per Service port (see the module comment). */
  function* perEndpoint(value: (ep: EndpointRow) => number): Iterable<[Labels, number]> {
    for (const p of ports()) {
      if (all) {
        for (const ep of p.endpoints)
          yield [{ service_port: p.servicePort, endpoint: ep.key }, value(ep)];
        continue;
      }
      let sum = 0;
      for (const ep of p.endpoints) sum += value(ep);
      yield [{ service_port: p.servicePort }, sum];
    }
  }

  gauge(
    registry,
    'ready',
    '1 once the first full service table is applied, else 0.',
    [],
    function* () {
      yield [{}, view.ready ? 1 : 0];
    },
  );
  gauge(
    registry,
    'active_connections',
    'Open connections that are not draining, per Service port (and endpoint with --metrics-per-endpoint); dials in progress included.',
    ['service_port', 'endpoint'],
    () => perEndpoint((ep) => ep.active),
  );
  gauge(
    registry,
    'draining_connections',
    'Connections being drained, per Service port (and endpoint with --metrics-per-endpoint).',
    ['service_port', 'endpoint'],
    () => perEndpoint((ep) => ep.draining),
  );
  counter(
    registry,
    'connections_total',
    'Connections established, per Service port (and endpoint with --metrics-per-endpoint).',
    ['service_port', 'endpoint'],
    () => perEndpoint((ep) => ep.total),
  );
  counter(
    registry,
    'connect_failures_total',
    'Failed dials to endpoints by reason, per Service port (and endpoint with --metrics-per-endpoint).',
    ['service_port', 'endpoint', 'reason'],
    function* () {
      for (const p of ports()) {
        for (const ep of p.endpoints) {
          for (const [reason, n] of ep.connectFailures) {
            const labels: Labels = all
              ? { service_port: p.servicePort, endpoint: ep.key, reason }
              : { service_port: p.servicePort, reason };
            yield [labels, n];
          }
        }
      }
    },
  );
  counter(
    registry,
    'clients_turned_away_total',
    'Client connections reset because no endpoint could take them, per Service port and reason.',
    ['service_port', 'reason'],
    function* () {
      for (const p of ports()) {
        if (!p.used) continue;
        for (const [reason, n] of p.counters.turnedAway)
          yield [{ service_port: p.servicePort, reason }, n];
      }
    },
  );
  counter(
    registry,
    'bytes_total',
    'Bytes copied, per Service port and direction.',
    ['service_port', 'direction'],
    function* () {
      for (const p of ports()) {
        if (!p.used) {
          yield [{ service_port: p.servicePort, direction: 'client_to_server' }, 0];
          yield [{ service_port: p.servicePort, direction: 'server_to_client' }, 0];
          continue;
        }
        const [c2s, s2c] = p.bytes;
        yield [{ service_port: p.servicePort, direction: 'client_to_server' }, c2s];
        yield [{ service_port: p.servicePort, direction: 'server_to_client' }, s2c];
      }
    },
  );
  gauge(
    registry,
    'endpoints',
    'Endpoints per Service port and state (ready, terminating, not-ready, removed with connections left).',
    ['service_port', 'state'],
    function* () {
      for (const p of ports()) {
        const counts: Record<string, number> = {
          ready: 0,
          terminating: 0,
          'not-ready': 0,
          removed: 0,
        };
        for (const ep of p.endpoints) counts[ep.status] = (counts[ep.status] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts))
          yield [{ service_port: p.servicePort, state }, n];
      }
    },
  );
  gauge(
    registry,
    'connection_skew_ratio',
    'Max over mean active connections across the eligible endpoints of a Service port; 1 is perfectly balanced.',
    ['service_port'],
    function* () {
      for (const p of ports()) yield [{ service_port: p.servicePort }, skewOf(p.endpoints)];
    },
  );
  gauge(
    registry,
    'service_ports',
    'Service ports on this node, by state: listening, unbound (its listener could not bind yet), retired (gone from the table, connections left); and in_use, those a client connected to (the ones with per-Service-port series by default).',
    ['state'],
    function* () {
      let listening = 0;
      let unbound = 0;
      let retired = 0;
      let inUse = 0;
      for (const p of view.servicePorts()) {
        if (p.used) inUse++;
        if (p.listening) listening++;
        // A retired port was bound once and has stopped listening; an unbound one never was.
        else if (p.address !== undefined) retired++;
        else unbound++;
      }
      yield [{ state: 'listening' }, listening];
      yield [{ state: 'unbound' }, unbound];
      yield [{ state: 'retired' }, retired];
      yield [{ state: 'in_use' }, inUse];
    },
  );
  gauge(
    registry,
    'service_port_skew',
    'Service ports with active connections whose skew ratio is at most le: a distribution over the node that stays small however many Service ports there are.',
    ['le'],
    function* () {
      const counts = new Array<number>(SKEW_BUCKETS.length + 1).fill(0);
      for (const p of view.servicePorts()) {
        if (!p.used) continue;
        let active = 0;
        for (const ep of p.endpoints) active += ep.active;
        if (active === 0) continue;
        const skew = skewOf(p.endpoints);
        let i = SKEW_BUCKETS.findIndex((b) => skew <= b);
        if (i < 0) i = SKEW_BUCKETS.length;
        for (let j = i; j < counts.length; j++) counts[j] = (counts[j] ?? 0) + 1;
      }
      for (const [i, b] of SKEW_BUCKETS.entries()) yield [{ le: String(b) }, counts[i] ?? 0];
      yield [{ le: '+Inf' }, counts[SKEW_BUCKETS.length] ?? 0];
    },
  );
  counter(
    registry,
    'table_applies_total',
    'Service tables built from the source and applied.',
    [],
    function* () {
      yield [{}, view.tableApplies];
    },
  );
  counter(
    registry,
    'rejected_updates_total',
    'Updates rejected as bad input (objects from the API, or edits of the manifests file), per source and kind.',
    ['source', 'kind'],
    () => view.rejectedUpdates(),
  );
  counter(
    registry,
    'listen_failures_total',
    'Listener binds that failed, by error code.',
    ['reason'],
    function* () {
      for (const [reason, n] of view.listenFailures()) yield [{ reason }, n];
    },
  );

  counter(
    registry,
    'connection_faults_total',
    'Connection event handlers that threw, by point; each closed only its own connection.',
    ['point'],
    function* () {
      for (const [point, n] of view.connectionFaults?.() ?? []) yield [{ point }, n];
    },
  );
  gauge(
    registry,
    'workers',
    'Data-path worker threads by state: configured, and ready (running and listening).',
    ['state'],
    function* () {
      const w = view.workers;
      if (w === undefined) return;
      yield [{ state: 'configured' }, w.size];
      yield [{ state: 'ready' }, w.ready];
    },
  );
  counter(
    registry,
    'worker_restarts_total',
    'Data-path worker threads replaced, by why: exception (uncaught), heap_limit (--worker-heap-limit), exit.',
    ['reason'],
    function* () {
      for (const [reason, n] of view.workers?.restarts ?? []) yield [{ reason }, n];
    },
  );
  counter(
    registry,
    'worker_lost_connections_total',
    'Connections that were open in a worker thread when it failed (they are lost with it).',
    [],
    function* () {
      const w = view.workers;
      if (w !== undefined) yield [{}, w.lostConnections];
    },
  );
  gauge(
    registry,
    'worker_connections',
    'Open connections per data-path worker thread, as of the scrape.',
    ['worker'],
    function* () {
      for (const [i, n] of (view.workers?.connections() ?? []).entries())
        yield [{ worker: String(i) }, n];
    },
  );
  gauge(
    registry,
    'tcp_migrate_req_enabled',
    '1 when net.ipv4.tcp_migrate_req is on in the proxy network namespace (queued connections of a closing listener move to the new process), 0 when it is off and could not be set.',
    [],
    function* () {
      const on = view.tcpMigrateReq?.();
      if (on !== undefined) yield [{}, on ? 1 : 0];
    },
  );

  const perPort = <K extends string>(
    pick: (p: PortStats) => Iterable<[K, number]>,
    label: string,
  ): (() => Iterable<[Labels, number]>) =>
    function* () {
      for (const p of ports()) {
        // An idle port's counters are all zero; reading them would make its (empty) maps.
        if (!p.used) continue;
        for (const [k, n] of pick(p)) yield [{ service_port: p.servicePort, [label]: k }, n];
      }
    };
  gauge(
    registry,
    'open_streams',
    'Open HTTP/2 streams over the h2c connections of each Service port (and endpoint with --metrics-per-endpoint).',
    ['service_port', 'endpoint'],
    () => perEndpoint((ep) => ep.openStreams),
  );
  counter(
    registry,
    'connections_by_protocol_total',
    'Connections by detected protocol: h2c (tracked, drainable) or opaque (TLS, HTTP/1, anything else).',
    ['service_port', 'protocol'],
    perPort((p) => p.counters.protocols, 'protocol'),
  );
  counter(
    registry,
    'drains_started_total',
    'Drains started, by reason (max_age, endpoint_removed, endpoint_terminating, endpoint_not_ready, rebalance, shutdown).',
    ['service_port', 'reason'],
    perPort((p) => p.counters.drainsStarted, 'reason'),
  );
  counter(
    registry,
    'drains_ended_total',
    'Drains ended, by outcome: graceful (closed after the client acknowledged and streams ended), forced (grace deadline), client_closed, server_closed.',
    ['service_port', 'outcome'],
    perPort((p) => p.counters.drainsEnded, 'outcome'),
  );
  counter(
    registry,
    'drained_streams_total',
    'HTTP/2 streams that ended on draining connections, by how: normal (END_STREAM both ways) or reset (RST_STREAM).',
    ['service_port', 'outcome'],
    perPort(
      (p) => [
        ['normal', p.counters.drainedStreamsNormal],
        ['reset', p.counters.drainedStreamsReset],
      ],
      'outcome',
    ),
  );
  counter(
    registry,
    'server_goaways_total',
    'GOAWAY frames sent by servers themselves on h2c connections (the proxy never injects after one).',
    ['service_port'],
    function* () {
      for (const p of ports())
        yield [{ service_port: p.servicePort }, p.used ? p.counters.serverGoaways : 0];
    },
  );
  counter(
    registry,
    'h2_desyncs_total',
    'h2c connections that lost sync (a frame that cannot be valid HTTP/2) and went opaque for good, by reason.',
    ['service_port', 'reason'],
    perPort((p) => p.counters.desyncs, 'reason'),
  );
  const connectionAge = new Histogram({
    name: `${PREFIX}connection_age_seconds`,
    help: 'Age of proxied connections when they close, by protocol.',
    labelNames: ['protocol'],
    buckets: [0.01, 0.1, 1, 10, 60, 300, 600, 900, 1800, 3600, 14400],
    registers: [registry],
  });
  const drainDuration = new Histogram({
    name: `${PREFIX}drain_duration_seconds`,
    help: 'Time from the start of a drain to the close of its connection, by outcome.',
    labelNames: ['outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  counter(
    registry,
    'iptables_syncs_total',
    'iptables syncs run (intercept iptables).',
    [],
    function* () {
      if (view.iptables !== undefined) yield [{}, view.iptables.syncs];
    },
  );
  counter(
    registry,
    'iptables_sync_failures_total',
    'iptables syncs that failed (each is retried with backoff).',
    [],
    function* () {
      if (view.iptables !== undefined) yield [{}, view.iptables.failures];
    },
  );
  gauge(
    registry,
    'iptables_rules',
    'REDIRECT rules in the KUBE-LC-SERVICES chain after the last successful sync.',
    [],
    function* () {
      if (view.iptables !== undefined) yield [{}, view.iptables.rules];
    },
  );
  gauge(
    registry,
    'iptables_skipped_rules',
    'Service ports left out of the last sync, by reason (ipv6, duplicate, ...).',
    ['reason'],
    function* () {
      for (const [reason, n] of view.iptables?.skipped ?? []) yield [{ reason }, n];
    },
  );
  const syncDuration = new Histogram({
    name: `${PREFIX}iptables_sync_duration_seconds`,
    help: 'How long each iptables sync (save, plan, restore) took.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const informers = function* (): Iterable<[string, K8sSourceStats['services']]> {
    if (view.k8s === undefined) return;
    yield ['services', view.k8s.services];
    yield ['endpointslices', view.k8s.endpointslices];
  };
  counter(
    registry,
    'k8s_watch_restarts_total',
    'List/watch cycles of the API server that ended and were started again, by resource and reason (eof, expired, timeout, http-error, network-error, error-event, other).',
    ['resource', 'reason'],
    function* () {
      for (const [resource, st] of informers()) {
        for (const [reason, n] of Object.entries(st.watchRestarts)) yield [{ resource, reason }, n];
      }
    },
  );
  counter(
    registry,
    'k8s_relists_total',
    'Full lists after the first one (after 410 Expired or a restart), by resource.',
    ['resource'],
    function* () {
      for (const [resource, st] of informers()) yield [{ resource }, st.relists];
    },
  );
  counter(
    registry,
    'k8s_requests_total',
    'List and watch requests sent to the API server, by resource and verb.',
    ['resource', 'verb'],
    function* () {
      for (const [resource, st] of informers()) {
        yield [{ resource, verb: 'list' }, st.requests.list];
        yield [{ resource, verb: 'watch' }, st.requests.watch];
      }
    },
  );
  counter(
    registry,
    'k8s_malformed_objects_total',
    'Objects from the API server dropped because they could not be read at all, by resource.',
    ['resource'],
    function* () {
      for (const [resource, st] of informers()) yield [{ resource }, st.malformed];
    },
  );
  gauge(
    registry,
    'k8s_last_sync_timestamp_seconds',
    'When the last successful list or watch event arrived, by resource (Unix seconds; 0 before the first).',
    ['resource'],
    function* () {
      for (const [resource, st] of informers()) yield [{ resource }, st.lastSyncTime];
    },
  );
  counter(
    registry,
    'k8s_node_reads_total',
    "Reads of this node's Node object (for its topology zone), by result (ok, error).",
    ['result'],
    function* () {
      const n = view.k8s?.node;
      if (n === undefined) return;
      yield [{ result: 'ok' }, n.requests - n.errors];
      yield [{ result: 'error' }, n.errors];
    },
  );
  clusterMetrics(registry, view, all);
  // ---- connection limits and timeouts (closes by reason, accept errors) ----
  counter(
    registry,
    'connection_closes_total',
    'Connections closed, per Service port and reason: normal, client_reset, server_reset, half_closed_timeout, idle_timeout, drained, destroyed.',
    ['service_port', 'reason'],
    perPort((p) => p.counters.closes, 'reason'),
  );
  counter(
    registry,
    'accept_errors_total',
    'Errors accepting client connections, per Service port and error code (EMFILE, ENFILE: out of file descriptors; the connection is shed).',
    ['service_port', 'code'],
    perPort((p) => p.counters.acceptErrors, 'code'),
  );
  return { registry, connectionAge, drainDuration, syncDuration };
}

/**
 * The cluster view (issue 9): node-level series and one per Service port or per configured
 * peer (bounded by the peer list). Nothing is exported when the view is off.
 */
function clusterMetrics(registry: Registry, view: MetricsView, all: boolean): void {
  const c = (): ClusterSync | undefined => view.cluster;
  gauge(
    registry,
    'cluster_view_fresh',
    '1 while picks and rebalance use the cluster view (some peer answered within 3 sync intervals); 0 while the proxy falls back to node-local counts.',
    [],
    function* () {
      const s = c();
      if (s !== undefined) yield [{}, s.mode === 'cluster' ? 1 : 0];
    },
  );
  gauge(
    registry,
    'cluster_view_age_seconds',
    'Seconds since the newest peer report arrived (absent before the first).',
    [],
    function* () {
      const s = c();
      const age = s?.view.ageMs(s.now());
      if (age !== undefined) yield [{}, age / 1000];
    },
  );
  counter(
    registry,
    'cluster_fallbacks_total',
    'Times the proxy fell back from the cluster view to node-local counts (no fresh peer report).',
    [],
    function* () {
      const s = c();
      if (s !== undefined) yield [{}, s.stats.fallbacks];
    },
  );
  gauge(
    registry,
    'cluster_peer_up',
    'Whether the last exchange with each configured peer (--peers address) succeeded.',
    ['peer'],
    function* () {
      for (const [peer, up] of c()?.stats.peerUp ?? []) yield [{ peer }, up ? 1 : 0];
    },
  );
  gauge(
    registry,
    'cluster_peers_fresh',
    'Peers whose report is fresh (counted in the view); for a follower of an aggregator, 1 while the aggregator answers.',
    [],
    function* () {
      const s = c();
      if (s !== undefined) yield [{}, s.state().peers.filter((p) => p.fresh).length];
    },
  );
  counter(
    registry,
    'cluster_exchanges_total',
    'Report exchanges this proxy started with a peer, by result (ok, timeout, error, unauthorized, bad_report).',
    ['result'],
    function* () {
      for (const [result, n] of c()?.stats.exchanges ?? []) yield [{ result }, n];
    },
  );
  counter(
    registry,
    'cluster_auth_failures_total',
    'Peer messages refused for authentication, by reason: missing, bad_signature, stale (requests to this proxy), response (a peer answer whose signature failed).',
    ['reason'],
    function* () {
      for (const [reason, n] of c()?.stats.authFailures ?? []) yield [{ reason }, n];
    },
  );
  counter(
    registry,
    'cluster_bad_reports_total',
    'Authenticated peer reports that could not be used, by reason (json, shape, limit, too_large).',
    ['reason'],
    function* () {
      for (const [reason, n] of c()?.stats.badReports ?? []) yield [{ reason }, n];
    },
  );
  gauge(
    registry,
    'cluster_skew_ratio',
    'Max over mean active connections per endpoint of a Service port over the whole cluster (weighted), from the last sync; 1 is balanced. Absent while the view is stale.',
    ['service_port'],
    function* () {
      // Like the other per-Service-port series: only Service ports with connections somewhere
      // in the cluster, unless --metrics-per-endpoint (issue 13).
      for (const [sp, st] of c()?.portStates() ?? [])
        if (all || clusterTotal(st.counts) > 0) yield [{ service_port: sp }, st.skew];
    },
  );
  gauge(
    registry,
    'cluster_aggregator',
    '1 while this proxy holds the Lease of the aggregator (--source k8s), else 0.',
    [],
    function* () {
      const e = view.clusterElector;
      if (e !== undefined) yield [{}, e.isLeader ? 1 : 0];
    },
  );
  counter(
    registry,
    'cluster_lease_requests_total',
    'Requests to the API server for the Lease of the aggregator, by result (get_ok, get_not_found, create_ok, renew_ok, take_ok, release_ok, *_conflict, error).',
    ['result'],
    function* () {
      for (const [result, n] of view.clusterElector?.stats.requests ?? []) yield [{ result }, n];
    },
  );
  gauge(
    registry,
    'cluster_connections',
    'Active connections of a Service port over the whole cluster, from the last sync.',
    ['service_port'],
    function* () {
      for (const [sp, st] of c()?.portStates() ?? []) {
        const n = clusterTotal(st.counts);
        if (all || n > 0) yield [{ service_port: sp }, n];
      }
    },
  );
}

/** Sum of a Service port's cluster-wide counts per endpoint. */
function clusterTotal(counts: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}
