import { describe as describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EndpointChange } from '../balancer/least-conn.js';
import type { ServicePort, ServiceTable } from '../servicetable/types.js';
import { ServicePortProxy, type ServicePortProxyOptions } from './service-port-proxy.js';

/**
 * How client traffic reaches the listeners:
 * - `none`: each listener binds the Service's clusterIP:port itself (the address must be local:
 *   127.0.0.0/8 in the demo and tests, or ClusterIPs put on a dummy interface);
 * - `iptables`: each listener binds 0.0.0.0 on a port the kernel chooses, and a nat REDIRECT
 *   rule per Service port sends ClusterIP traffic there.
 */
export type InterceptMode = 'none' | 'iptables';

export interface ProxierOptions extends ServicePortProxyOptions {
  readonly intercept: InterceptMode;
  readonly logger: Logger;
  /** Host the listeners bind in `iptables` mode. Default 0.0.0.0. */
  readonly redirectListenHost?: string;
  /** A Service port's endpoints changed status (drain triggers). */
  readonly onEndpointChanges?: (
    owner: ServicePortProxy,
    changes: readonly EndpointChange[],
  ) => void;
  /** The set of bound listeners changed (iptables rules must follow). */
  readonly onListenersChanged?: () => void;
  /** How often a listener that failed to bind is tried again. Default 10 s. */
  readonly listenRetryMs?: number;
}

/** Endpoint changes listed in one log line (the count says how many there were). */
const LOGGED_CHANGES_MAX = 20;

/** Connections older than this get TCP keepalive; a sweep runs this often. */
const KEEPALIVE_AFTER_MS = 10_000;
const KEEPALIVE_SWEEP_MS = 5_000;

/** A redirect from a Service's ClusterIP:port to the local listener port. */
export interface ListenerBinding {
  readonly servicePort: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly proxyPort: number;
}

/**
 * Owns every Service port's proxy and reconciles them with each new service table: new ports
 * get a listener, changed ones get their endpoints swapped, removed ones stop listening while
 * their open connections live on ("retired") until they end. Applies run one at a time, in
 * order; the data path never waits for them.
 */
export class Proxier {
  readonly #opts: ProxierOptions;
  readonly #ports = new Map<string, ServicePortProxy>();
  readonly #retired = new Set<ServicePortProxy>();
  #queue: Promise<void> = Promise.resolve();
  #retryTimer: NodeJS.Timeout | undefined;
  #keepAliveTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Listener binds that failed, by error code. */
  readonly listenFailures = new Map<string, number>();

  readonly #portOpts: ServicePortProxyOptions;

  constructor(opts: ProxierOptions) {
    this.#opts = opts;
    const observer = opts.observer;
    this.#portOpts = {
      ...opts,
      observer: {
        established: (conn, owner) => observer?.established(conn, owner),
        protocolKnown: (conn, owner) => observer?.protocolKnown?.(conn, owner),
        drainEnded: (conn, owner, end) => observer?.drainEnded?.(conn, owner, end),
        closed: (conn, owner) => {
          observer?.closed(conn, owner);
          if (owner.connections.size === 0) this.#retired.delete(owner);
        },
      },
    };
  }

  /** Current Service ports, then retired ones that still hold connections. */
  *servicePorts(): IterableIterator<ServicePortProxy> {
    yield* this.#ports.values();
    yield* this.#retired;
  }

  get(key: string): ServicePortProxy | undefined {
    return this.#ports.get(key);
  }

  /** Open connections over every Service port, retired ones included. */
  get connectionCount(): number {
    let n = 0;
    for (const p of this.servicePorts()) n += p.connections.size;
    return n;
  }

  /** Where ClusterIP traffic must be redirected, for the bound listeners (iptables mode). */
  bindings(): ListenerBinding[] {
    const out: ListenerBinding[] = [];
    for (const p of this.#ports.values()) {
      if (p.address === undefined) continue;
      out.push({
        servicePort: p.servicePort,
        clusterIP: p.spec.clusterIP,
        port: p.spec.port,
        proxyPort: p.address.port,
      });
    }
    return out;
  }

  /** Reconciles with `table`. Resolves once every listener has been bound or has failed. */
  apply(table: ServiceTable): Promise<void> {
    const run = this.#queue.then(() => this.#apply(table));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Closes every listener and stops retrying. Open connections stay. */
  async stopListening(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#keepAliveTimer);
    await this.#queue;
    await Promise.all([...this.#ports.values()].map((p) => p.stopListening()));
  }

  /** Destroys every open connection (shutdown deadline). */
  destroyAll(): void {
    for (const p of this.servicePorts()) for (const c of p.connections) c.destroy();
  }

  async #apply(table: ServiceTable): Promise<void> {
    if (this.#stopped) return;
    // Connections that last get TCP keepalive (see Connection.enableKeepAlive).
    this.#keepAliveTimer ??= setInterval(() => {
      const now = this.#opts.now();
      for (const p of this.servicePorts()) p.keepAliveSweep(now, KEEPALIVE_AFTER_MS);
    }, KEEPALIVE_SWEEP_MS).unref();
    const log = this.#opts.logger;
    let listenersChanged = false;
    const toBind: ServicePortProxy[] = [];
    for (const [key, sp] of table.ports) {
      const current = this.#ports.get(key);
      if (current !== undefined && sameAddress(current.spec, sp)) {
        if (current.spec === sp) continue;
        this.#reportChanges(current, current.update(sp));
        continue;
      }
      if (current !== undefined) {
        log.info(
          { servicePort: key, clusterIP: sp.clusterIP, port: sp.port },
          'service port address changed',
        );
        await this.#retire(current);
        listenersChanged = true;
      }
      const proxy = new ServicePortProxy(sp, this.#portOpts);
      this.#ports.set(key, proxy);
      toBind.push(proxy);
    }
    for (const [key, proxy] of this.#ports) {
      if (table.ports.has(key)) continue;
      log.info({ servicePort: key }, 'service port removed');
      await this.#retire(proxy);
      listenersChanged = true;
    }
    const bound = await Promise.all(toBind.map((p) => this.#bind(p)));
    if (bound.some(Boolean)) listenersChanged = true;
    if (listenersChanged) this.#opts.onListenersChanged?.();
    this.#scheduleRetry();
  }

  async #retire(proxy: ServicePortProxy): Promise<void> {
    this.#ports.delete(proxy.servicePort);
    await proxy.stopListening();
    const changes = proxy.update({ ...proxy.spec, endpoints: [] });
    this.#reportChanges(proxy, changes);
    if (proxy.connections.size > 0) this.#retired.add(proxy);
  }

  #reportChanges(proxy: ServicePortProxy, changes: readonly EndpointChange[]): void {
    if (changes.length === 0) return;
    // One line per table change, of bounded size even when a large Service rolls at once.
    this.#opts.logger.info(
      {
        servicePort: proxy.servicePort,
        count: changes.length,
        changes: changes
          .slice(0, LOGGED_CHANGES_MAX)
          .map((c) => `${c.stats.key} ${c.previous ?? 'new'}->${c.current}`),
      },
      'endpoints changed',
    );
    this.#opts.onEndpointChanges?.(proxy, changes);
  }

  async #bind(proxy: ServicePortProxy): Promise<boolean> {
    const sp = proxy.spec;
    const none = this.#opts.intercept === 'none';
    const host = none ? sp.clusterIP : (this.#opts.redirectListenHost ?? '0.0.0.0');
    const port = none ? sp.port : 0;
    try {
      const addr = await proxy.listen(host, port);
      this.#opts.logger.info(
        {
          servicePort: proxy.servicePort,
          listen: `${addr.address}:${addr.port}`,
          endpoints: sp.endpoints.length,
        },
        'service port listening',
      );
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'other';
      this.listenFailures.set(code, (this.listenFailures.get(code) ?? 0) + 1);
      this.#opts.logger.error(
        { servicePort: proxy.servicePort, listen: `${host}:${port}`, err: describeError(err) },
        'cannot listen; will retry',
      );
      return false;
    }
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#retryTimer !== undefined) return;
    if (![...this.#ports.values()].some((p) => !p.listening)) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#queue = this.#queue.then(async () => {
        if (this.#stopped) return;
        const unbound = [...this.#ports.values()].filter((p) => !p.listening);
        const bound = await Promise.all(unbound.map((p) => this.#bind(p)));
        if (bound.some(Boolean)) this.#opts.onListenersChanged?.();
        this.#scheduleRetry();
      });
    }, this.#opts.listenRetryMs ?? 10_000);
    this.#retryTimer.unref();
  }
}

function sameAddress(a: ServicePort, b: ServicePort): boolean {
  return a.clusterIP === b.clusterIP && a.port === b.port;
}
