import {
  CoreV1Api,
  DiscoveryV1Api,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type KubernetesObject,
  type ObservableMiddleware,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describe } from '../errors.js';
import type { BackoffOptions, RateLimitOptions } from './k8s/backoff.js';
import { loadKubeConfig } from './k8s/config.js';
import { NodeZonePoller } from './k8s/node-zone.js';
import { ResilientInformer, type ListFunction } from './k8s/resilient-informer.js';
import { labelSelectorFor } from './k8s/selectors.js';
import { newK8sSourceStats, type K8sSourceStats } from './k8s/stats.js';
import type { Source, SourceSink, SourceStats } from './types.js';

export { loadKubeConfig } from './k8s/config.js';
export type { KubeConfigOptions, KubeConfigSource, LoadedKubeConfig } from './k8s/config.js';
export { DEFAULT_BACKOFF, DEFAULT_RATE_LIMIT } from './k8s/backoff.js';
export type { BackoffOptions, RateLimitOptions } from './k8s/backoff.js';
export { WATCH_RESTART_REASONS } from './k8s/stats.js';
export type { InformerStats, K8sSourceStats, NodeStats, WatchRestartReason } from './k8s/stats.js';
export { ALL_SERVICES_SELECTOR, DEFAULT_PROXY_NAME, labelSelectorFor } from './k8s/selectors.js';
export { ZONE_LABEL } from './k8s/node-zone.js';

/** Options of K8sSource. Only `logger` is required. */
export interface K8sSourceOptions {
  readonly logger: Logger;
  /** A kubeconfig file (`--kubeconfig` or `$KUBECONFIG`); else in-cluster, else defaults. */
  readonly kubeconfig?: string;
  /** Service-account files prefix for the in-cluster config (tests). Default ''. */
  readonly inClusterPathPrefix?: string;
  /** A ready KubeConfig; skips loading (kubeconfig/inClusterPathPrefix are then ignored). */
  readonly kubeConfig?: KubeConfig;
  /** Take every Service kube-proxy would (`!service-proxy-name,!headless`). Default false. */
  readonly allServices?: boolean;
  /** Value of `service.kubernetes.io/service-proxy-name` selected otherwise. */
  readonly proxyName?: string;
  /** This node's name: its zone label is read at start and every `nodeRefreshMs`. */
  readonly nodeName?: string;
  /** Default 5 min. */
  readonly nodeRefreshMs?: number;
  /** Restart back-off of the informers and the node read (default 500 ms → 30 s, ±20 %). */
  readonly backoff?: Partial<BackoffOptions>;
  /** Request-rate cap per informer, lists and watches together (default 3 + 2/s). */
  readonly rateLimit?: Partial<RateLimitOptions>;
  /** Timeout of each list and node read (default 60 s for lists, 30 s for the node read). */
  readonly requestTimeoutMs?: number;
}

/**
 * Attaches an AbortSignal to a generated API call (the object-parameter API takes observable
 * middleware), so a hung list is really aborted, not just abandoned.
 */
function withSignal(signal: AbortSignal): ConfigurationOptions {
  const abortable: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (res) => new Observable(Promise.resolve(res)),
  };
  return { middleware: [abortable], middlewareMergeStrategy: 'append' };
}

type ListResult = Awaited<ReturnType<ListFunction>>;

/**
 * The Kubernetes source: Services and EndpointSlices of every namespace through client-node
 * 2.x informers made resilient (see ResilientInformer), plus this node's zone.
 *
 * Guarantees to the sink: objects are passed as decoded, in the watch (wire) shape; no
 * deletion is ever emitted because the API server is unreachable (only a relist that no longer
 * contains an object removes it); `commit(true)` only once both kinds have been listed in full,
 * and `commit` follows every burst of changes (coalesced with setImmediate). Never throws
 * after `start()` resolved, whatever the server sends. `stats` is updated in place for the
 * metrics module, which must only read it.
 */
export class K8sSource implements Source {
  readonly kind = 'k8s';
  /** Live counters; see K8sSourceStats. */
  readonly stats: K8sSourceStats = newK8sSourceStats();
  readonly #statsView: SourceStats = { kind: 'k8s', k8s: this.stats };
  readonly #o: K8sSourceOptions;
  readonly #informers: ResilientInformer[] = [];
  #poller: NodeZonePoller | undefined;
  #sink: SourceSink | undefined;
  #commitPending: NodeJS.Immediate | undefined;
  #syncedLogged = false;
  #state: 'new' | 'running' | 'stopped' = 'new';

  constructor(opts: K8sSourceOptions) {
    this.#o = opts;
  }

  /**
   * Loads the configuration and starts the informers (and the node poller). Rejects with
   * ConfigError or KubeApiError when the configuration is unusable; never waits for the
   * API server.
   */
  async start(sink: SourceSink): Promise<void> {
    if (this.#state !== 'new') throw new Error('K8sSource can be started once');
    const o = this.#o;
    const kc =
      o.kubeConfig ??
      loadKubeConfig({ kubeconfig: o.kubeconfig, inClusterPathPrefix: o.inClusterPathPrefix }).kc;
    this.#state = 'running';
    this.#sink = sink;
    const selector = labelSelectorFor(o);
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const common = {
      kc,
      labelSelector: selector,
      logger: o.logger,
      backoff: o.backoff,
      rateLimit: o.rateLimit,
      listTimeoutMs: o.requestTimeoutMs,
    };
    this.#informers.push(
      new ResilientInformer({
        ...common,
        name: 'services',
        path: '/api/v1/services',
        kind: 'Service',
        apiVersion: 'v1',
        stats: this.stats.services,
        list: async (labelSelector, signal) =>
          (await core.listServiceForAllNamespaces(
            { labelSelector },
            withSignal(signal),
          )) as ListResult,
        handlers: {
          upsert: (obj) => this.#apply((s) => s.upsertService(obj)),
          remove: (ns, name) => this.#apply((s) => s.deleteService(ns, name)),
          listed: () => this.#listed(),
        },
      }),
      new ResilientInformer({
        ...common,
        name: 'endpointslices',
        path: '/apis/discovery.k8s.io/v1/endpointslices',
        kind: 'EndpointSlice',
        apiVersion: 'discovery.k8s.io/v1',
        stats: this.stats.endpointslices,
        list: async (labelSelector, signal) =>
          (await discovery.listEndpointSliceForAllNamespaces(
            { labelSelector },
            withSignal(signal),
          )) as ListResult,
        handlers: {
          upsert: (obj: KubernetesObject) => this.#apply((s) => s.upsertEndpointSlice(obj)),
          remove: (ns, name) => this.#apply((s) => s.deleteEndpointSlice(ns, name)),
          listed: () => this.#listed(),
        },
      }),
    );
    if (o.nodeName) {
      this.#poller = new NodeZonePoller({
        nodeName: o.nodeName,
        readNode: (name, signal) => core.readNode({ name }, withSignal(signal)),
        onZone: (zone) => this.#apply((s) => s.setNodeZone(zone)),
        logger: o.logger,
        stats: this.stats.node,
        refreshMs: o.nodeRefreshMs,
        timeoutMs: o.requestTimeoutMs,
        backoff: o.backoff,
      });
    }
    o.logger.info({ selector, node: o.nodeName ?? null }, 'k8s source: starting informers');
    for (const inf of this.#informers) inf.start();
    this.#poller?.start();
  }

  /** Stops every informer and the node poller; no request and no sink call follow. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    if (this.#commitPending) clearImmediate(this.#commitPending);
    this.#commitPending = undefined;
    this.#poller?.stop();
    await Promise.all(this.#informers.map((i) => i.stop()));
  }

  /** `stats`, for reading only (see Source.statsView). */
  statsView(): SourceStats {
    return this.#statsView;
  }

  /** Both kinds have been listed in full at least once. */
  get synced(): boolean {
    return this.stats.services.synced && this.stats.endpointslices.synced;
  }

  #listed(): void {
    if (this.synced && !this.#syncedLogged) {
      this.#syncedLogged = true;
      this.#o.logger.info('k8s source: initial lists done');
    }
    this.#scheduleCommit();
  }

  /** Calls the sink (never throws) and schedules the commit that ends this burst. */
  #apply(fn: (sink: SourceSink) => void): void {
    const sink = this.#sink;
    if (!sink || this.#state !== 'running') return;
    try {
      fn(sink);
    } catch (err) {
      this.#o.logger.error({ err: describe(err) }, 'k8s source: the sink rejected a change');
    }
    this.#scheduleCommit();
  }

  #scheduleCommit(): void {
    if (this.#commitPending || this.#state !== 'running') return;
    this.#commitPending = setImmediate(() => {
      this.#commitPending = undefined;
      if (this.#state !== 'running' || !this.#sink) return;
      try {
        this.#sink.commit(this.synced);
      } catch (err) {
        this.#o.logger.error({ err: describe(err) }, 'k8s source: commit failed');
      }
    });
  }
}
