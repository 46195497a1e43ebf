import {
  ListWatch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describe } from '../../errors.js';
import {
  Backoff,
  TokenBucket,
  UNREACHABLE_MAX_MS,
  type BackoffOptions,
  type RateLimitOptions,
} from './backoff.js';
import { GatedWatch, type WatchHooks } from './gated-watch.js';
import { objectKey, toWireShape } from './normalize.js';
import { classifyError, type InformerStats, type WatchRestartReason } from './stats.js';

/** Lists one kind with a label selector; must honour `signal`. */
export type ListFunction = (
  labelSelector: string,
  signal: AbortSignal,
) => Promise<KubernetesListObject<KubernetesObject>>;

/** Where an informer delivers changes. Called synchronously; exceptions are caught and logged. */
export interface InformerHandlers {
  /** An object was added or changed (wire shape, see normalize.ts). */
  upsert(obj: KubernetesObject): void;
  /** An object is gone. */
  remove(namespace: string, name: string): void;
  /** A full list has just been applied (the first one, and every relist). */
  listed(): void;
}

/** Settings of one ResilientInformer. */
export interface ResilientInformerOptions {
  readonly kc: KubeConfig;
  /** `services` or `endpointslices`: names the informer in logs. */
  readonly name: 'services' | 'endpointslices';
  /** API path of the all-namespaces collection, e.g. `/api/v1/services`. */
  readonly path: string;
  /** `kind` and `apiVersion` of the objects, for the wire shape of listed items. */
  readonly kind: string;
  readonly apiVersion: string;
  readonly list: ListFunction;
  /** Sent on the list AND the watch. */
  readonly labelSelector: string;
  readonly handlers: InformerHandlers;
  readonly logger: Logger;
  /** Updated in place. */
  readonly stats: InformerStats;
  readonly backoff?: Partial<BackoffOptions>;
  readonly rateLimit?: Partial<RateLimitOptions>;
  /** A list that takes longer is aborted and retried (default 60 s). */
  readonly listTimeoutMs?: number;
}

class StoppedError extends Error {
  override readonly name = 'StoppedError';
}

/**
 * client-node 2.x's ListWatch (the real informer), plus what it lacks, as pinned by
 * test/k8s/informer*.test.ts:
 * - restarts after EVERY 'error' (2.x stops for good after any failure but 410), with
 *   exponential back-off and jitter, so it is never left stopped while running;
 * - caps the request rate of lists and watches together (token bucket), whatever the server
 *   does: closing every watch at once, failing every request, answering 410 in a loop;
 * - sends the label selector on the list too (makeInformer gives it only to the watch);
 * - converts listed items to the watch shape and drops items and events that would throw
 *   inside client-node (see GatedWatch), counting them;
 * - aborts a list that hangs, and makes `stop()` final even during client-node's own
 *   reconnect delay (2.x opens the delayed watch anyway).
 * The cache survives restarts; only a relist's diff (after 410) emits removals, so an API
 * server outage never deletes anything. Owned by the K8s source.
 */
export class ResilientInformer {
  readonly #o: ResilientInformerOptions;
  readonly #backoff: Backoff;
  readonly #bucket: TokenBucket;
  readonly #informer: ListWatch<KubernetesObject>;
  readonly #sleepers = new Set<NodeJS.Timeout>();
  #restartTimer: NodeJS.Timeout | undefined;
  #listAbort: AbortController | undefined;
  #listPending = false;
  #started = false;
  #stopping = false;

  constructor(opts: ResilientInformerOptions) {
    this.#o = opts;
    this.#backoff = new Backoff(opts.backoff);
    this.#bucket = new TokenBucket(opts.rateLimit);
    const watch = new GatedWatch(opts.kc, this.#watchHooks());
    this.#informer = new ListWatch<KubernetesObject>(
      opts.path,
      watch,
      () => this.#list(),
      false,
      opts.labelSelector,
      undefined,
      { delayFn: (ms) => this.#delay(ms) },
    );
    const guard =
      (what: string, fn: (o: KubernetesObject) => void) =>
      (o: KubernetesObject): void => {
        if (this.#stopping) return;
        try {
          fn(o);
        } catch (err) {
          this.#o.logger.error(
            {
              kind: opts.name,
              object: `${o.metadata?.namespace}/${o.metadata?.name}`,
              err: describe(err),
            },
            `k8s source: handling ${what} failed`,
          );
        }
      };
    const upsert = guard('upsert', (o) => opts.handlers.upsert(o));
    this.#informer.on('add', upsert);
    this.#informer.on('update', upsert);
    this.#informer.on(
      'delete',
      guard('delete', (o) =>
        opts.handlers.remove(o.metadata?.namespace ?? '', o.metadata?.name ?? ''),
      ),
    );
    this.#informer.on('error', (err: unknown) => this.#failed(err));
  }

  /** Starts listing and watching; returns at once. Idempotent. */
  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    this.#run();
  }

  /** Stops for good: no request goes out after this resolves. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#bucket.close();
    for (const t of this.#sleepers) clearTimeout(t);
    this.#sleepers.clear();
    this.#listAbort?.abort();
    await this.#informer.stop();
  }

  #run(): void {
    this.#informer.start().catch((err: unknown) => this.#failed(err));
  }

  /** Every failure ends 2.x's loop: log, back off, start again (resuming from the last RV). */
  #failed(err: unknown): void {
    if (this.#stopping || this.#restartTimer !== undefined) return;
    const reason = classifyError(err);
    const delayMs = this.#backoff.next(reason === 'network-error' ? UNREACHABLE_MAX_MS : undefined);
    this.#o.logger.warn(
      { kind: this.#o.name, reason, err: describe(err), delayMs },
      'k8s list/watch failed; restarting',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopping) this.#run();
    }, delayMs);
  }

  #count(reason: WatchRestartReason): void {
    if (!this.#stopping) this.#o.stats.watchRestarts[reason]++;
  }

  #synced(): void {
    this.#o.stats.lastSyncTime = Math.floor(Date.now() / 1000);
    this.#backoff.succeeded();
  }

  /** The informer applies a list synchronously, then waits (delayFn) or watches. */
  #checkListed(): void {
    if (!this.#listPending || this.#stopping) return;
    this.#listPending = false;
    this.#o.stats.synced = true;
    try {
      this.#o.handlers.listed();
    } catch (err) {
      this.#o.logger.error({ kind: this.#o.name, err: describe(err) }, 'k8s source: listed failed');
    }
  }

  #delay(ms: number): Promise<void> {
    this.#checkListed();
    // After stop() the promise never settles: 2.x would otherwise open the watch anyway.
    return new Promise((resolve) => {
      if (this.#stopping) return;
      const t = setTimeout(() => {
        this.#sleepers.delete(t);
        resolve();
      }, ms);
      this.#sleepers.add(t);
    });
  }

  async #list(): Promise<KubernetesListObject<KubernetesObject>> {
    const o = this.#o;
    if (!(await this.#bucket.take())) throw new StoppedError('stopped');
    o.stats.requests.list++;
    const abort = new AbortController();
    this.#listAbort = abort;
    const timeoutMs = o.listTimeoutMs ?? 60_000;
    const timer = setTimeout(
      () => abort.abort(new DOMException(`list took over ${timeoutMs} ms`, 'TimeoutError')),
      timeoutMs,
    );
    try {
      const reply = await o.list(o.labelSelector, abort.signal);
      if (!Array.isArray(reply?.items)) throw new TypeError('list reply has no items array');
      const items: KubernetesObject[] = [];
      for (const item of reply.items as unknown[]) {
        if (objectKey(item)) items.push(toWireShape(item as object, o.kind, o.apiVersion));
        else this.#malformed('list item without metadata.name/resourceVersion');
      }
      if (o.stats.synced) o.stats.relists++;
      this.#synced();
      this.#listPending = true;
      return { ...reply, items };
    } catch (err) {
      if (abort.signal.aborted && abort.signal.reason !== undefined && !this.#stopping) {
        this.#count(classifyError(abort.signal.reason));
        throw abort.signal.reason;
      }
      this.#count(classifyError(err));
      throw err;
    } finally {
      clearTimeout(timer);
      if (this.#listAbort === abort) this.#listAbort = undefined;
    }
  }

  #malformed(why: string): void {
    this.#o.stats.malformed++;
    this.#o.logger.warn({ kind: this.#o.name, why }, 'k8s source: dropped a malformed object');
  }

  #watchHooks(): WatchHooks {
    const o = this.#o;
    return {
      gate: async () => {
        this.#checkListed();
        return !this.#stopping && (await this.#bucket.take()) && !this.#stopping;
      },
      stopping: () => this.#stopping,
      sent: () => o.stats.requests.watch++,
      opened: () => this.#backoff.succeeded(),
      event: () => this.#synced(),
      malformed: (why) => this.#malformed(why),
      errorEvent: (status) =>
        o.logger.warn({ kind: o.name, status }, 'k8s watch sent an ERROR event; ignored'),
      ended: (reason, err) => {
        if (this.#stopping) return;
        this.#count(reason);
        // Failures are logged once, by #failed(); these ends are routine.
        if (err === null || err === undefined || reason === 'timeout' || reason === 'expired') {
          const level = reason === 'expired' ? 'info' : 'debug';
          o.logger[level]({ kind: o.name, reason }, 'k8s watch ended; re-watching');
        }
      },
      handlerFailed: (err) =>
        o.logger.error({ kind: o.name, err: describe(err) }, 'k8s informer handler failed'),
    };
  }
}
