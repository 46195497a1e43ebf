import { describe as describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EndpointChange } from '../balancer/least-conn.js';
import type { ServicePort, ServiceTable } from '../servicetable/types.js';
import { ServicePortProxy, type ServicePortProxyOptions } from './service-port-proxy.js';
import { DEFAULT_PROXY_PORT_RANGE, allocatePort, type PortRange } from './port-allocator.js';
import { closePrebound, type PreboundListener } from './early-bind.js';
import { listeningPorts } from './listening-ports.js';

/**
 * How client traffic reaches the listeners:
 * - `none`: each listener binds the Service's clusterIP:port itself (the address must be local:
 *   127.0.0.0/8 in the demo and tests, or ClusterIPs put on a dummy interface);
 * - `iptables`: each listener binds 0.0.0.0 on a stable port (adopted from the rule already in
 *   place, else from `--proxy-port-range`), and a nat REDIRECT rule per Service port sends
 *   ClusterIP traffic there.
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
  /**
   * First delay before a listener that failed to bind is tried again; doubles per failed round
   * up to `listenRetryMaxMs`. Default 100 ms: during an upgrade from a version without
   * SO_REUSEPORT the port frees as soon as the old process closes it.
   */
  readonly listenRetryMs?: number;
  /** Cap of the retry delay. Default 1 s: a port held by a process about to exit frees soon. */
  readonly listenRetryMaxMs?: number;
  /** Where new listener ports come from (intercept `iptables`). Default 61000-65535. */
  readonly portRange?: PortRange;
  /** Listening TCP ports of the namespace (see listening-ports.ts); tests replace it. */
  readonly listeningPorts?: () => Promise<ReadonlySet<number>>;
}

/** A listener port taken over from the rules of a previous process (intercept `iptables`). */
export interface AdoptedPort {
  readonly servicePort: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly proxyPort: number;
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
  /** Connection handlers that threw, by point, over every Service port ever served. */
  readonly faults = new Map<string, number>();
  /** Proxy ports from the rules of a previous process, by Service port key. */
  readonly #adopted = new Map<string, AdoptedPort>();
  /** Ports that failed with EADDRINUSE: not chosen again for a new Service port. */
  readonly #busyPorts = new Set<number>();
  /**
   * The port ledger of intercept `iptables`: which Service port owns which proxy port, claimed
   * when the port is chosen, before the bind. Binds run concurrently, and with SO_REUSEPORT two
   * of our own listeners on one port both succeed, so a port must never be chosen twice: two
   * REDIRECT rules to one port would mix two Services' clients. Released when the Service port
   * is retired (or its adopted rule is gone), or when its bind found the port busy.
   */
  readonly #portOwner = new Map<number, string>();
  readonly #portOf = new Map<string, number>();
  /** Service port keys (and error codes) whose bind failure was logged, until they bind. */
  readonly #loggedFailures = new Set<string>();
  #retryRound = 0;
  #holdTimer: NodeJS.Timeout | undefined;
  /** Faults already logged (by point and message), so a fault repeated per chunk logs once. */
  readonly #loggedFaults = new Set<string>();

  readonly #portOpts: ServicePortProxyOptions;

  constructor(opts: ProxierOptions) {
    this.#opts = opts;
    const observer = opts.observer;
    this.#portOpts = {
      ...opts,
      onFault: (owner, point, err) => this.#onFault(owner, point, err),
      observer: {
        established: (conn, owner) => observer?.established(conn, owner),
        protocolKnown: (conn, owner, desync) => observer?.protocolKnown?.(conn, owner, desync),
        drainEnded: (conn, owner, end) => observer?.drainEnded?.(conn, owner, end),
        acceptError: (code, owner) => observer?.acceptError?.(code, owner),
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

  /**
   * The ports the firewall must close to non-redirected connections (it covers those outside
   * the range one by one): every bound listener's, and every adopted port not yet bound (one a
   * running process still serves during a handover).
   */
  listenerPorts(): number[] {
    const out = new Set<number>();
    for (const p of this.#ports.values()) if (p.address !== undefined) out.add(p.address.port);
    for (const a of this.#adopted.values()) out.add(a.proxyPort);
    return [...out];
  }

  /** Service ports whose listener is not bound (a failed bind being retried). */
  get unbound(): number {
    let n = 0;
    for (const p of this.#ports.values()) if (!p.listening) n++;
    return n;
  }

  /**
   * Binds the listeners of `ports` (read from the REDIRECT rules of a previous process) before
   * any service table is known, so the refused window of a restart ends as soon as this process
   * runs. Their clients are held (see ServicePortProxy.hold) until the first `apply` says where
   * the endpoints are, or until `holdMs` has passed (then they are turned away like any client
   * of a Service port without endpoints). The first `apply` keeps the ones its table still has,
   * with the same port; the others close. Call once, before the first `apply`. Resolves with
   * the number bound.
   */
  adopt(
    ports: readonly AdoptedPort[],
    holdMs: number,
    prebound: readonly PreboundListener[] = [],
  ): Promise<number> {
    const run = this.#queue.then(async () => {
      for (const a of ports) {
        this.#adopted.set(a.servicePort, a);
        this.#claimPort(a.servicePort, a.proxyPort);
      }
      const early = new Map(prebound.map((l) => [l.rule.servicePort, l]));
      // Ports a running process listens on (a handover) are left to it: they are bound at the
      // first `apply`, with their endpoints known, instead of holding clients meanwhile.
      const busy = await (this.#opts.listeningPorts ?? listeningPorts)();
      const proxies: ServicePortProxy[] = [];
      for (const a of ports) {
        if (this.#ports.has(a.servicePort)) continue;
        if (!early.has(a.servicePort) && busy.has(a.proxyPort)) continue;
        const proxy = new ServicePortProxy(
          {
            name: { namespace: '', name: a.servicePort, port: '', protocol: 'TCP' },
            key: a.servicePort,
            clusterIP: a.clusterIP,
            family: 'IPv4',
            port: a.port,
            internalTrafficPolicy: 'Cluster',
            endpoints: [],
          },
          this.#portOpts,
        );
        proxy.hold();
        this.#ports.set(a.servicePort, proxy);
        proxies.push(proxy);
      }
      const results = await Promise.all(
        proxies.map((p) => {
          const l = early.get(p.servicePort);
          // Bound in this thread even with worker threads: the workers know no table yet. The
          // first `apply` hands these listeners to them (see ServicePortProxy.handOver).
          if (l === undefined || l.address.port !== this.#adopted.get(p.servicePort)?.proxyPort)
            return this.#bind(p, true);
          early.delete(p.servicePort);
          const addr = p.adoptServer(l.server, l.held);
          this.#opts.logger.info(
            { servicePort: p.servicePort, listen: `${addr.address}:${addr.port}`, adopted: true },
            'service port listening',
          );
          return true;
        }),
      );
      // Listeners bound early for a rule this adoption does not keep: close them.
      closePrebound([...early.values()]);
      const bound = results.filter(Boolean).length;
      if (ports.length > 0) {
        this.#holdTimer = setTimeout(() => this.#releaseHeld(), holdMs);
        this.#holdTimer.unref();
        this.#opts.logger.info(
          {
            adopted: ports.length,
            bound,
            leftToRunningProcess: ports.length - proxies.length,
            holdMs,
          },
          'listener ports adopted from the rules in place',
        );
      }
      this.#scheduleRetry();
      return bound;
    });
    this.#queue = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  #releaseHeld(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    for (const p of this.#ports.values()) p.release();
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
    clearTimeout(this.#holdTimer);
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
    // An adopted port whose Service port is gone is free for others again.
    for (const [key, a] of this.#adopted) {
      if (table.ports.has(key)) continue;
      this.#adopted.delete(key);
      this.#releasePort(key, a.proxyPort);
    }
    const bound = await Promise.all(toBind.map((p) => this.#bind(p)));
    if (bound.some(Boolean)) listenersChanged = true;
    // Adopted listeners now know their endpoints (or were retired): their clients go on.
    this.#releaseHeld();
    if (this.#opts.remoteListeners !== undefined) await this.#handOver();
    if (listenersChanged) this.#opts.onListenersChanged?.();
    this.#scheduleRetry();
  }

  async #retire(proxy: ServicePortProxy): Promise<void> {
    this.#ports.delete(proxy.servicePort);
    await proxy.stopListening();
    const port = this.#portOf.get(proxy.servicePort);
    // An adopted port stays reserved for its Service port until its rule is gone (apply).
    if (port !== undefined && this.#adopted.get(proxy.servicePort)?.proxyPort !== port)
      this.#releasePort(proxy.servicePort, port);
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

  /**
   * The port a Service port's listener binds (intercept `iptables`): the adopted one when a rule
   * of a previous process names this Service port at the same ClusterIP:port, else a free one
   * of the range (see port-allocator.ts). `undefined` when the range is full.
   */
  #proxyPortFor(proxy: ServicePortProxy): number | undefined {
    const sp = proxy.spec;
    const adopted = this.#adopted.get(sp.key);
    if (adopted !== undefined && adopted.clusterIP === sp.clusterIP && adopted.port === sp.port)
      return adopted.proxyPort;
    const held = this.#portOf.get(sp.key);
    if (held !== undefined && held !== adopted?.proxyPort) {
      if (!this.#busyPorts.has(held)) return held;
      this.#releasePort(sp.key, held);
    }
    // Ports of adopted rules stay in the ledger for their Service ports until those are gone.
    const port = allocatePort(
      sp.key,
      this.#opts.portRange ?? DEFAULT_PROXY_PORT_RANGE,
      this.#portOwner,
      this.#busyPorts,
    );
    if (port !== undefined) this.#claimPort(sp.key, port);
    return port;
  }

  #claimPort(key: string, port: number): void {
    this.#portOwner.set(port, key);
    this.#portOf.set(key, port);
  }

  #releasePort(key: string, port: number): void {
    if (this.#portOwner.get(port) === key) this.#portOwner.delete(port);
    if (this.#portOf.get(key) === port) this.#portOf.delete(key);
  }

  /** Worker threads: listeners this thread bound at start go to the workers. */
  async #handOver(): Promise<void> {
    await Promise.all(
      [...this.#ports.values()]
        .filter((p) => p.listeningHere)
        .map((p) =>
          p.handOver().catch((err: unknown) => {
            // This thread keeps serving the port; the next table tries again.
            this.#opts.logger.error(
              { servicePort: p.servicePort, err: describeError(err) },
              'cannot hand an adopted listener to the workers; this thread keeps it',
            );
          }),
        ),
    );
  }

  async #bind(proxy: ServicePortProxy, here = false): Promise<boolean> {
    const sp = proxy.spec;
    const none = this.#opts.intercept === 'none';
    const host = none ? sp.clusterIP : (this.#opts.redirectListenHost ?? '0.0.0.0');
    const port = none ? sp.port : this.#proxyPortFor(proxy);
    const logged = `${proxy.servicePort}\u0000`;
    try {
      if (port === undefined) {
        throw Object.assign(new Error('no free port left in --proxy-port-range'), {
          code: 'ERANGEFULL',
        });
      }
      const addr = await proxy.listen(host, port, here);
      const recovered = [...this.#loggedFailures].some((k) => k.startsWith(logged));
      for (const k of [...this.#loggedFailures])
        if (k.startsWith(logged)) this.#loggedFailures.delete(k);
      this.#opts.logger.info(
        {
          servicePort: proxy.servicePort,
          listen: `${addr.address}:${addr.port}`,
          endpoints: sp.endpoints.length,
          ...(proxy.holding ? { adopted: true } : {}),
          ...(recovered ? { afterFailures: true } : {}),
        },
        'service port listening',
      );
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'other';
      this.listenFailures.set(code, (this.listenFailures.get(code) ?? 0) + 1);
      const adopted = this.#adopted.get(sp.key)?.proxyPort === port;
      // A new port someone else holds: choose another at the next try. An adopted port stays:
      // it is most likely held by the previous process, about to close it.
      if (code === 'EADDRINUSE' && !none && !adopted && port !== undefined)
        this.#busyPorts.add(port);
      // Logged once per Service port and error code until it binds; the metric counts each try.
      if (!this.#loggedFailures.has(logged + code)) {
        this.#loggedFailures.add(logged + code);
        this.#opts.logger.error(
          { servicePort: proxy.servicePort, listen: `${host}:${port}`, err: describeError(err) },
          'cannot listen; retrying (logged once)',
        );
      }
      return false;
    }
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#retryTimer !== undefined) return;
    if (![...this.#ports.values()].some((p) => !p.listening)) {
      this.#retryRound = 0;
      return;
    }
    const first = this.#opts.listenRetryMs ?? 100;
    const max = Math.max(first, this.#opts.listenRetryMaxMs ?? 1_000);
    const delay = Math.min(max, first * 2 ** this.#retryRound);
    this.#retryRound = Math.min(this.#retryRound + 1, 30);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#queue = this.#queue.then(async () => {
        if (this.#stopped) return;
        const unbound = [...this.#ports.values()].filter((p) => !p.listening);
        const bound = await Promise.all(unbound.map((p) => this.#bind(p)));
        if (bound.some(Boolean)) this.#opts.onListenersChanged?.();
        this.#scheduleRetry();
      });
    }, delay);
    this.#retryTimer.unref();
  }

  #onFault(owner: ServicePortProxy, point: string, err: unknown): void {
    this.faults.set(point, (this.faults.get(point) ?? 0) + 1);
    const message = err instanceof Error ? err.message : String(err);
    const key = `${point} ${message}`;
    if (this.#loggedFaults.has(key) || this.#loggedFaults.size >= 1000) return;
    this.#loggedFaults.add(key);
    this.#opts.logger.error(
      { servicePort: owner.servicePort, point, err: describeError(err) },
      'connection handler failed; that connection was closed, the others go on (logged once)',
    );
  }
}

function sameAddress(a: ServicePort, b: ServicePort): boolean {
  return a.clusterIP === b.clusterIP && a.port === b.port;
}
