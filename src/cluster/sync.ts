import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { ServicePortProxy } from '../proxy/service-port-proxy.js';
import { planClusterRebalanceAll } from '../drain/cluster-rebalance.js';
import { answerFor, parseAnswer, type AggregateAnswer, type AggregatePort } from './aggregate.js';
import { HEADER_SIGNATURE, HEADER_TIMESTAMP, signRequest, signResponse, verify } from './auth.js';
import { REPORT_PATH, handleClusterRequest, type ClusterEndpoint } from './handler.js';
import { BodyTooLarge, post } from './http.js';
import { BadReport, buildReport, parseReport, type NodeReport } from './report.js';
import { ClusterStats, bumpStat } from './stats.js';
import { ClusterView, sumActive } from './view.js';

/** A peer of the static list (`--peers`): the address of its metrics server. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface ClusterSyncOptions {
  /** This node's name (`--node-name`). */
  readonly node: string;
  readonly peers: readonly PeerAddress[];
  readonly secret: Buffer;
  /** How often this node exchanges reports with every peer. */
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly now: () => number;
  readonly random: () => number;
  /** The Service ports this node serves now (not retired ones). */
  readonly servicePorts: () => Iterable<ServicePortProxy>;
  /**
   * Lease mode (`--source k8s`): who the aggregator is now (see LeaseElector); `peers` is then
   * unused. Undefined: static peers, a full mesh.
   */
  readonly aggregator?: () =>
    | {
        readonly node: string;
        readonly host: string;
        readonly port: number;
        readonly self: boolean;
      }
    | undefined;
  /** Lease mode: an exchange with the aggregator failed (the elector reads the Lease soon). */
  readonly onAggregatorLost?: () => void;
  /** Hands this node's share of the cluster rebalance to the drain planner (undefined: local). */
  readonly setClusterDrains: (
    servicePort: string,
    drains: ReadonlyMap<string, number> | undefined,
  ) => void;
}

/** The view after a sync, per Service port, for status and metrics. */
export interface ClusterPortState {
  /** max/mean of the cluster's connections per endpoint (weighted); 1 when idle. */
  readonly skew: number;
  /** Connections per endpoint over the whole cluster (this node's included). */
  readonly counts: ReadonlyMap<string, number>;
  /** Drains the last plan gave this node. */
  readonly drains: number;
}

/** The cluster part of /debug/state. */
export interface ClusterState {
  readonly node: string;
  /** `cluster`: picks and rebalance use the view; `local`: fallback to this node's counts. */
  readonly mode: 'cluster' | 'local';
  /** Milliseconds since the newest peer report arrived; null before the first. */
  readonly viewAgeMs: number | null;
  readonly intervalMs: number;
  readonly fallbacks: number;
  readonly peers: readonly {
    readonly node: string;
    readonly ageMs: number;
    readonly fresh: boolean;
  }[];
  /** Lease mode: the aggregator (`node@host:port`, `self` when it is this proxy), null when unknown. */
  readonly aggregator?: string | null;
  /** Configured peer addresses and whether they answered last time. */
  readonly peerAddresses: readonly { readonly address: string; readonly up: boolean }[];
}

/** A view older than this many intervals no longer counts: the node falls back. */
export const STALE_AFTER_INTERVALS = 3;
/** Refusals are logged at most this often per peer. */
const LOG_EVERY_MS = 60_000;

/**
 * The cluster view over a static peer list (file source, bare metal, tests, demo): a full mesh.
 * Every interval (±10% jitter) this node POSTs its report to every peer and takes each peer's
 * report from the answer; a peer that POSTs here gets this node's report back the same way. After
 * each round it hands the balancers the other nodes' counts (picks) and the drain planner this
 * node's share of the cluster rebalance. When no peer report is fresh (older than 3 intervals),
 * every Service port falls back to its node-local counts, which is counted and logged. The data
 * path never waits on any of this: it reads the estimates set here.
 *
 * A full mesh costs N−1 requests per node per interval: fine for tens of nodes (docs/design.md).
 */
export class ClusterSync implements ClusterEndpoint {
  readonly stats = new ClusterStats();
  readonly view: ClusterView;
  readonly secret: Buffer;
  readonly #opts: ClusterSyncOptions;
  readonly #ports = new Map<string, ClusterPortState>();
  readonly #lastLog = new Map<string, number>();
  #mode: 'cluster' | 'local' = 'local';
  /** The view after the last round, per Service port (this node's plans come from it). */
  #cache = new Map<string, AggregatePort>();
  /** Follower in lease mode: the aggregator's last answer. */
  #answer:
    | {
        readonly answer: AggregateAnswer;
        readonly receivedAt: number;
        readonly requestedAt: number;
      }
    | undefined;
  /** Follower in lease mode: when (own clock, request time) it last drained, per Service port. */
  readonly #lastDrainAt = new Map<string, number>();
  #aggregatorOk = false;
  #seq: number;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: ClusterSyncOptions) {
    this.#opts = opts;
    this.secret = opts.secret;
    this.view = new ClusterView(opts.node, STALE_AFTER_INTERVALS * opts.intervalMs);
    // Starts from the clock so a restarted process continues above its predecessor.
    this.#seq = opts.now();
    for (const p of opts.peers) this.stats.peerUp.set(address(p), false);
  }

  get mode(): 'cluster' | 'local' {
    return this.#mode;
  }

  now(): number {
    return this.#opts.now();
  }

  /** Starts exchanging; the first round runs at once. */
  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Stops the timer and waits for a round in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  /** The per-Service-port view after the last round (for status and metrics). */
  portStates(): ReadonlyMap<string, ClusterPortState> {
    return this.#ports;
  }

  state(): ClusterState {
    const now = this.now();
    return {
      node: this.#opts.node,
      mode: this.#mode,
      viewAgeMs: this.#viewAgeMs(now) ?? null,
      intervalMs: this.#opts.intervalMs,
      fallbacks: this.stats.fallbacks,
      peers: this.#peerInfo(now),
      peerAddresses: [...this.stats.peerUp].map(([a, up]) => ({ address: a, up })),
      ...(this.#opts.aggregator !== undefined
        ? { aggregator: aggregatorName(this.#opts.aggregator()) }
        : {}),
    };
  }

  /** The /cluster/ routes of the metrics server. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    return handleClusterRequest(this, req, res, path);
  }

  /** Lease mode: whether the last exchange with the aggregator succeeded (or this is it). */
  aggregatorAnswers(): boolean {
    return this.#aggregatorOk;
  }

  ownReport(): NodeReport {
    const ports = [];
    for (const p of this.#opts.servicePorts())
      ports.push({ servicePort: p.servicePort, endpoints: p.balancer.endpoints() });
    return buildReport(this.#opts.node, ++this.#seq, ports);
  }

  receive(report: NodeReport, sentAt: number): unknown {
    const agg = this.#opts.aggregator;
    if (agg === undefined) {
      this.view.accept(report, sentAt, this.now());
      return this.ownReport();
    }
    if (agg()?.self !== true) return undefined;
    this.view.accept(report, sentAt, this.now());
    return answerFor(
      report.node,
      this.#opts.node,
      ++this.#seq,
      this.#cache,
      Object.keys(report.ports),
    );
  }

  refused(peer: string, reason: string, detail: string): void {
    const auth = reason === 'missing' || reason === 'bad_signature' || reason === 'stale';
    bumpStat(auth ? this.stats.authFailures : this.stats.badReports, reason);
    const key = `${peer} ${auth ? 'auth' : 'report'}`;
    const now = this.now();
    const last = this.#lastLog.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    this.#lastLog.set(key, now);
    this.#opts.logger.warn(
      { peer, reason, detail },
      auth ? 'refused a peer request: not authenticated' : 'refused a bad report from a peer',
    );
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.syncOnce().finally(() => {
        this.#round = undefined;
        const jitter = 1 + 0.2 * (this.#opts.random() - 0.5);
        this.#schedule(this.#opts.intervalMs * jitter);
      });
    }, delayMs);
    this.#timer.unref();
  }

  /** One round: exchange with every peer, then apply the view. Never rejects. */
  async syncOnce(): Promise<void> {
    try {
      await this.#syncOnce();
    } catch (err) {
      // A bug, not bad input (peers' input is checked where it is read): keep the daemon.
      this.#opts.logger.error({ err: describe(err) }, 'cluster view round failed');
    }
  }

  async #syncOnce(): Promise<void> {
    const body = Buffer.from(JSON.stringify(this.ownReport()));
    const timeoutMs = Math.max(200, Math.min(2_000, this.#opts.intervalMs));
    const aggregator = this.#opts.aggregator;
    if (aggregator === undefined) {
      await Promise.all(this.#opts.peers.map((p) => this.#exchange(p, body, timeoutMs)));
      this.apply();
      return;
    }
    const agg = aggregator();
    if (agg?.self === true) {
      this.#aggregatorOk = true;
      this.#answer = undefined;
      this.apply();
      return;
    }
    this.view.prune(this.now());
    if (agg === undefined) {
      this.#aggregatorOk = false;
    } else {
      const ts = this.now();
      const addr = address(agg);
      if (!this.stats.peerUp.has(addr)) {
        this.stats.peerUp.clear();
        this.stats.peerUp.set(addr, false);
      }
      this.#aggregatorOk = await this.#exchange(agg, body, timeoutMs, ts);
      if (!this.#aggregatorOk) this.#opts.onAggregatorLost?.();
    }
    this.#applyAnswer();
  }

  async #exchange(
    peer: PeerAddress,
    body: Buffer,
    timeoutMs: number,
    ts = this.now(),
  ): Promise<boolean> {
    const addr = address(peer);
    const signature = signRequest(this.secret, 'POST', REPORT_PATH, ts, body);
    let ok = false;
    try {
      const res = await post(
        peer.host,
        peer.port,
        REPORT_PATH,
        { [HEADER_TIMESTAMP]: String(ts), [HEADER_SIGNATURE]: signature },
        body,
        timeoutMs,
      );
      if (res.status === 401) {
        bumpStat(this.stats.exchanges, 'unauthorized');
        this.#logPeer(addr, 'unauthorized', 'the peer refused our signature (different secret?)');
        return false;
      }
      if (res.status !== 200) {
        bumpStat(this.stats.exchanges, 'error');
        this.#logPeer(addr, 'error', `HTTP ${res.status}`);
        return false;
      }
      const h = (n: string): string | undefined => {
        const v = res.headers[n];
        return Array.isArray(v) ? v[0] : v;
      };
      const failure = verify(
        { timestamp: h(HEADER_TIMESTAMP), signature: h(HEADER_SIGNATURE) },
        (t) => signResponse(this.secret, signature, 200, t, res.body),
        this.now(),
      );
      if (failure !== undefined) {
        bumpStat(this.stats.authFailures, 'response');
        bumpStat(this.stats.exchanges, 'unauthorized');
        this.#logPeer(addr, 'unauthorized', `the peer's answer is not authenticated (${failure})`);
        return false;
      }
      if (this.#opts.aggregator !== undefined) {
        const answer = parseAnswer(res.body.toString('utf8'));
        this.#answer = { answer, receivedAt: this.now(), requestedAt: ts };
      } else {
        const report = parseReport(res.body.toString('utf8'));
        this.view.accept(report, Number(h(HEADER_TIMESTAMP)), this.now());
      }
      bumpStat(this.stats.exchanges, 'ok');
      ok = true;
    } catch (err) {
      if (err instanceof BadReport || err instanceof BodyTooLarge) {
        const reason = err instanceof BadReport ? err.reason : 'too_large';
        bumpStat(this.stats.badReports, reason);
        bumpStat(this.stats.exchanges, 'bad_report');
        this.#logPeer(addr, 'bad_report', err.message);
      } else {
        const timeout = /no answer in/.test((err as Error).message);
        bumpStat(this.stats.exchanges, timeout ? 'timeout' : 'error');
        this.#logPeer(addr, 'unreachable', describe(err));
      }
    } finally {
      const was = this.stats.peerUp.get(addr);
      this.stats.peerUp.set(addr, ok);
      if (ok && was === false) this.#opts.logger.info({ peer: addr }, 'peer answers');
    }
    return ok;
  }

  #logPeer(addr: string, what: string, detail: string): void {
    if (this.stats.peerUp.get(addr) === false && this.#lastLog.has(`${addr} out`)) {
      const last = this.#lastLog.get(`${addr} out`) as number;
      if (this.now() - last < LOG_EVERY_MS) return;
    }
    this.#lastLog.set(`${addr} out`, this.now());
    this.#opts.logger.warn({ peer: addr, result: what, detail }, 'peer exchange failed');
  }

  /**
   * Applies the view to every Service port: the other nodes' counts to the balancer, this node's
   * share of the cluster rebalance to the drain planner and its destinations to the balancer;
   * or, when the view is stale, node-local counts everywhere.
   */
  apply(): void {
    const now = this.now();
    this.view.prune(now);
    const fresh = this.view.isFresh(now);
    this.#setMode(fresh, now);
    this.#ports.clear();
    this.#cache = new Map();
    const basis = new Map<string, number>();
    for (const e of this.view.freshEntries(now)) basis.set(e.report.node, e.sentAt);
    for (const sp of this.#opts.servicePorts()) {
      if (!fresh) {
        sp.setCluster(undefined);
        this.#opts.setClusterDrains(sp.servicePort, undefined);
        continue;
      }
      const rows = this.view.perNode(sp.servicePort, now);
      // Planning counts active connections only: a drained connection lingers as draining for
      // a while after its client has reconnected elsewhere, and counting it would count that
      // client twice. The window in which a drained client is counted nowhere (drain to
      // reconnect) is a few round trips.
      const counts = new Map<string, Map<string, number>>();
      for (const [node, row] of rows)
        counts.set(node, new Map(Object.entries(row).map(([ep, c]) => [ep, c[0]])));
      sp.balancer.refreshWeights();
      const own = new Map<string, number>();
      const eligible = [];
      for (const ep of sp.balancer.endpoints()) {
        own.set(ep.key, ep.active);
        if (ep.eligible) eligible.push({ key: ep.key, weight: ep.weight });
      }
      counts.set(this.#opts.node, own);
      const plan = planClusterRebalanceAll(eligible, counts);
      const totals = new Map<string, number>();
      for (const row of counts.values())
        for (const [ep, n] of row) totals.set(ep, (totals.get(ep) ?? 0) + n);
      // Followers (lease mode) read their part of this from the answers to their reports.
      this.#cache.set(sp.servicePort, { counts, totals, plan, basis });
      const mine = plan.nodes.get(this.#opts.node);
      sp.setCluster(sumActive(rows.values()), rows.size, mine?.destinations ?? []);
      this.#opts.setClusterDrains(sp.servicePort, mine?.drains ?? new Map());
      let drains = 0;
      for (const n of mine?.drains.values() ?? []) drains += n;
      this.#ports.set(sp.servicePort, { skew: plan.skew, counts: totals, drains });
    }
  }

  /**
   * Lease mode, follower: applies the aggregator's last answer, or falls back when it is older
   * than 3 intervals. A plan whose basis is a report sent before this node's last drain on
   * that Service port is not carried out: it does not show that drain yet.
   */
  #applyAnswer(): void {
    const now = this.now();
    const a = this.#answer;
    const fresh = a !== undefined && now - a.receivedAt <= this.view.staleAfterMs;
    this.#setMode(fresh, now);
    this.#ports.clear();
    for (const sp of this.#opts.servicePorts()) {
      const entry = fresh ? a.answer.ports[sp.servicePort] : undefined;
      if (entry === undefined) {
        sp.setCluster(undefined);
        this.#opts.setClusterDrains(sp.servicePort, undefined);
        continue;
      }
      const act = entry.basis > (this.#lastDrainAt.get(sp.servicePort) ?? -1);
      const drains = new Map(act ? Object.entries(entry.drains) : []);
      if (drains.size > 0 && a !== undefined) this.#lastDrainAt.set(sp.servicePort, a.requestedAt);
      const others = new Map(Object.entries(entry.others));
      sp.setCluster(others, Math.max(0, entry.nodes - 1), act ? entry.destinations : []);
      this.#opts.setClusterDrains(sp.servicePort, drains);
      const totals = new Map(others);
      for (const ep of sp.balancer.endpoints())
        totals.set(ep.key, (totals.get(ep.key) ?? 0) + ep.active);
      let n = 0;
      for (const d of drains.values()) n += d;
      this.#ports.set(sp.servicePort, { skew: entry.skew, counts: totals, drains: n });
    }
    // One answer, one plan: the next round brings the next.
    if (a !== undefined)
      this.#answer = { ...a, answer: { ...a.answer, ports: stripPlans(a.answer.ports) } };
  }

  #setMode(fresh: boolean, now: number): void {
    if (fresh === (this.#mode === 'cluster')) return;
    if (!fresh) {
      this.stats.fallbacks++;
      this.#opts.logger.warn(
        { viewAgeMs: this.#viewAgeMs(now) ?? null },
        'cluster view stale: falling back to node-local counts',
      );
    } else {
      this.#opts.logger.info('cluster view fresh');
    }
    this.#mode = fresh ? 'cluster' : 'local';
  }

  /** The peers whose reports count: every peer, or for a follower the aggregator alone. */
  #peerInfo(now: number): ClusterState['peers'] {
    const a = this.#answer;
    if (this.#opts.aggregator === undefined || this.#opts.aggregator()?.self === true)
      return this.view.peers(now);
    if (a === undefined) return [];
    const ageMs = now - a.receivedAt;
    return [{ node: a.answer.aggregator, ageMs, fresh: ageMs <= this.view.staleAfterMs }];
  }

  #viewAgeMs(now: number): number | undefined {
    if (this.#opts.aggregator !== undefined && this.#answer !== undefined)
      return now - this.#answer.receivedAt;
    return this.view.ageMs(now);
  }
}

/** The same answer without its one-shot parts (drains and destinations). */
function stripPlans(ports: AggregateAnswer['ports']): AggregateAnswer['ports'] {
  const out: Record<string, AggregateAnswer['ports'][string]> = {};
  for (const [sp, p] of Object.entries(ports)) out[sp] = { ...p, drains: {}, destinations: [] };
  return out;
}

function aggregatorName(
  a: { node: string; host: string; port: number; self: boolean } | undefined,
): string | null {
  if (a === undefined) return null;
  return a.self ? 'self' : `${a.node}@${address(a)}`;
}

function address(p: PeerAddress): string {
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}
