import type { CoordinationV1Api, KubeConfig, V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { fnv1a } from '../drain/cluster-rebalance.js';
import {
  electionStep,
  LEASE_DURATION_MS,
  parseHolder,
  RENEW_DEADLINE_MS,
  RETRY_PERIOD_MS,
  TAKE_SPREAD_MS,
  type ElectionMemory,
  type LeaseRecord,
} from './lease.js';

/** The Lease the proxies elect their aggregator with. */
export const AGGREGATOR_LEASE = 'kube-lc-proxy-aggregator';

export interface ElectorOptions {
  readonly kc: KubeConfig;
  readonly namespace: string;
  /** This proxy's holder identity (`node@host:port`, see lease.ts). */
  readonly identity: string;
  readonly node: string;
  readonly logger: Logger;
  readonly now: () => number;
  /**
   * Whether exchanges with the current aggregator succeed: a follower that hears from it reads
   * the Lease once per lease duration, one that does not every retry period.
   */
  readonly aggregatorAnswers: () => boolean;
}

/** Requests to the API server, by verb and result, for the metrics. */
export class ElectorStats {
  readonly requests = new Map<string, number>();
}

/**
 * The shell around `electionStep`: reads the Lease, creates, renews or takes it, and tells
 * who the aggregator is. The leader renews with an optimistic update every retry period and
 * stops counting itself leader once the renew deadline passes without success; followers read
 * it as ElectorOptions.aggregatorAnswers says. Errors are logged, counted and retried; none
 * stops the daemon.
 */
/** The API client and the Lease time type, loaded on first use (see `#client`). */
interface LeaseClient {
  readonly api: CoordinationV1Api;
  readonly MicroTime: typeof V1MicroTime;
}

export class LeaseElector {
  readonly stats = new ElectorStats();
  readonly #o: ElectorOptions;
  #clientP: Promise<LeaseClient> | undefined;
  readonly #takeDelayMs: number;
  #memory: ElectionMemory = { observed: undefined, observedAt: 0 };
  #holder: string | undefined;
  #lastRenew = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;

  constructor(o: ElectorOptions) {
    this.#o = o;
    this.#takeDelayMs = fnv1a(o.node) % TAKE_SPREAD_MS;
  }

  /**
   * @kubernetes/client-node, imported when the elector first talks to the API server rather
   * than when this module loads: the daemon imports this module for every source, and the
   * library costs tens of MiB of resident memory that `--source file` never uses.
   */
  #client(): Promise<LeaseClient> {
    return (this.#clientP ??= import('@kubernetes/client-node').then((k8s) => ({
      api: this.#o.kc.makeApiClient(k8s.CoordinationV1Api),
      MicroTime: k8s.V1MicroTime,
    })));
  }

  /** Whether this proxy is the aggregator now. */
  get isLeader(): boolean {
    return (
      this.#holder === this.#o.identity && this.#o.now() - this.#lastRenew <= RENEW_DEADLINE_MS
    );
  }

  /** The aggregator as the Lease names it (this proxy included); undefined when unknown. */
  get aggregator(): { node: string; host: string; port: number; self: boolean } | undefined {
    if (this.#holder === undefined) return undefined;
    if (this.#holder === this.#o.identity)
      return this.isLeader
        ? {
            ...(parseHolder(this.#holder) as { node: string; host: string; port: number }),
            self: true,
          }
        : undefined;
    const h = parseHolder(this.#holder);
    return h === undefined ? undefined : { ...h, self: false };
  }

  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  /**
   * Stops, and releases the Lease when this proxy holds it (client-go's ReleaseOnCancel: an
   * empty holder), so that another proxy takes over at its next read instead of after the
   * lease duration.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    const observed = this.#memory.observed;
    if (!this.isLeader || observed === undefined) return;
    this.#holder = undefined;
    const { api, MicroTime } = await this.#client();
    // Bounded: an API server that does not answer must not hold the shutdown up.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer in 2 s')), 2_000);
    });
    try {
      await Promise.race([
        timeout,
        api.replaceNamespacedLease({
          name: AGGREGATOR_LEASE,
          namespace: this.#o.namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: {
              name: AGGREGATOR_LEASE,
              namespace: this.#o.namespace,
              resourceVersion: observed.resourceVersion,
            },
            spec: {
              holderIdentity: '',
              leaseDurationSeconds: 1,
              renewTime: new MicroTime(this.#o.now()),
              leaseTransitions: observed.transitions,
            },
          },
        }),
      ]);
      this.#count('release_ok');
      this.#o.logger.info('aggregator lease released');
    } catch (err) {
      this.#count('error');
      this.#o.logger.warn({ err: describe(err) }, 'aggregator lease: release failed');
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The aggregator stopped answering: read the Lease soon rather than at the calm follower's
   * pace (at most once per retry period).
   */
  nudge(): void {
    if (this.#stopped || this.#running !== undefined) return;
    if (this.#o.now() - this.#lastTick < RETRY_PERIOD_MS) return;
    clearTimeout(this.#timer);
    this.#schedule(0);
  }

  #lastTick = Number.NEGATIVE_INFINITY;

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
        const leaderish = this.#holder === this.#o.identity;
        const calm = !leaderish && this.#holder !== undefined && this.#o.aggregatorAnswers();
        this.#schedule(calm ? LEASE_DURATION_MS : RETRY_PERIOD_MS);
      });
    }, ms);
    this.#timer.unref();
  }

  #count(what: string): void {
    this.stats.requests.set(what, (this.stats.requests.get(what) ?? 0) + 1);
  }

  async #read(): Promise<{ record: LeaseRecord | undefined; lease: V1Lease | undefined }> {
    try {
      const { api } = await this.#client();
      const lease = await api.readNamespacedLease({
        name: AGGREGATOR_LEASE,
        namespace: this.#o.namespace,
      });
      this.#count('get_ok');
      return { record: toRecord(lease), lease };
    } catch (err) {
      if ((err as { code?: number }).code === 404) {
        this.#count('get_not_found');
        return { record: undefined, lease: undefined };
      }
      throw err;
    }
  }

  async #tick(): Promise<void> {
    const now = this.#o.now();
    this.#lastTick = now;
    try {
      // The leader renews without reading first (client-go does the same); a conflict reads.
      if (this.#holder === this.#o.identity && this.#memory.observed !== undefined) {
        if (
          await this.#write(
            'renew',
            this.#memory.observed.resourceVersion,
            this.#memory.observed.transitions,
          )
        )
          return;
      }
      const { record } = await this.#read();
      const { step, memory } = electionStep(
        this.#o.identity,
        record,
        this.#memory,
        this.#o.now(),
        this.#takeDelayMs,
      );
      this.#memory = memory;
      switch (step.kind) {
        case 'create':
          await this.#write('create', undefined, 0);
          return;
        case 'renew':
          await this.#write('renew', step.resourceVersion, step.transitions);
          return;
        case 'take':
          this.#o.logger.info(
            { previous: record?.holder ?? null },
            'aggregator lease expired: taking it',
          );
          await this.#write('take', step.resourceVersion, step.transitions);
          return;
        case 'follow':
          this.#setHolder(step.holder);
          return;
      }
    } catch (err) {
      this.#count('error');
      this.#o.logger.warn(
        { err: describe(err), elapsedMs: this.#o.now() - now },
        'aggregator lease: request failed',
      );
    }
  }

  /** Creates, renews or takes the Lease; true when it now holds it. */
  async #write(
    kind: 'create' | 'renew' | 'take',
    resourceVersion: string | undefined,
    transitions: number,
  ): Promise<boolean> {
    const { api, MicroTime } = await this.#client();
    const now = this.#o.now();
    const time = new MicroTime(now);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: AGGREGATOR_LEASE,
        namespace: this.#o.namespace,
        ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.#o.identity,
        leaseDurationSeconds: LEASE_DURATION_MS / 1000,
        renewTime: time,
        leaseTransitions: transitions,
        ...(kind === 'renew' ? { acquireTime: this.#acquireTime ?? time } : { acquireTime: time }),
      },
    };
    try {
      const lease =
        kind === 'create'
          ? await api.createNamespacedLease({ namespace: this.#o.namespace, body })
          : await api.replaceNamespacedLease({
              name: AGGREGATOR_LEASE,
              namespace: this.#o.namespace,
              body,
            });
      this.#count(`${kind}_ok`);
      if (kind !== 'renew') {
        this.#acquireTime = time;
        this.#o.logger.info(
          { lease: AGGREGATOR_LEASE, namespace: this.#o.namespace },
          'this proxy is the aggregator',
        );
      }
      this.#memory = { observed: toRecord(lease), observedAt: now };
      this.#lastRenew = now;
      this.#setHolder(this.#o.identity);
      return true;
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 409) {
        // Someone else wrote first: read again at the next tick.
        this.#count(`${kind}_conflict`);
        if (kind === 'renew' && !this.isLeader) this.#stepDown();
        return false;
      }
      throw err;
    } finally {
      if (this.#holder === this.#o.identity && !this.isLeader) this.#stepDown();
    }
  }

  #acquireTime: V1MicroTime | undefined;

  #stepDown(): void {
    if (this.#holder !== this.#o.identity) return;
    this.#o.logger.warn('aggregator lease not renewed within the renew deadline: stepping down');
    this.#holder = undefined;
    this.#memory = { observed: undefined, observedAt: this.#o.now() };
  }

  #setHolder(holder: string): void {
    if (holder !== this.#holder) this.#o.logger.info({ holder }, 'aggregator');
    this.#holder = holder;
  }
}

function toRecord(lease: V1Lease): LeaseRecord {
  const renew = lease.spec?.renewTime as unknown;
  return {
    holder: lease.spec?.holderIdentity ?? '',
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    renewTime: renew instanceof Date ? renew.toISOString() : String(renew ?? ''),
    transitions: lease.spec?.leaseTransitions ?? 0,
  };
}
