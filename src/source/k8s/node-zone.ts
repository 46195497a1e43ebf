import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describe } from '../../errors.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import type { NodeStats } from './stats.js';

/** The Node label that names its zone. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Reads one Node by name; must honour `signal`. */
export type ReadNode = (name: string, signal: AbortSignal) => Promise<V1Node>;

/** Settings of a NodeZonePoller. */
export interface NodeZonePollerOptions {
  readonly nodeName: string;
  readonly readNode: ReadNode;
  /** Called with the zone after the first successful read and whenever it changes. */
  readonly onZone: (zone: string | undefined) => void;
  readonly logger: Logger;
  /** Updated in place. */
  readonly stats: NodeStats;
  /** Time between successful reads (default 5 min). */
  readonly refreshMs?: number;
  /** A read that takes longer is aborted and retried (default 30 s). */
  readonly timeoutMs?: number;
  readonly backoff?: Partial<BackoffOptions>;
}

/**
 * Reads this node's zone with `get` on its Node (RBAC grants get on nodes, not watch): at
 * start, then every `refreshMs`; a failed read is retried with back-off and the last known
 * zone is kept meanwhile. Never throws; owned by the K8s source.
 */
export class NodeZonePoller {
  readonly #o: NodeZonePollerOptions;
  readonly #backoff: Backoff;
  #timer: NodeJS.Timeout | undefined;
  #abort: AbortController | undefined;
  #known = false;
  #stopped = false;

  constructor(opts: NodeZonePollerOptions) {
    this.#o = opts;
    this.#backoff = new Backoff(opts.backoff);
  }

  /** Starts polling; the first read goes out at once. */
  start(): void {
    if (this.#stopped || this.#timer !== undefined || this.#abort !== undefined) return;
    void this.#poll();
  }

  /** Stops polling and aborts a read in flight. Idempotent. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#poll();
    }, ms);
  }

  async #poll(): Promise<void> {
    const o = this.#o;
    const abort = new AbortController();
    this.#abort = abort;
    const timeoutMs = o.timeoutMs ?? 30_000;
    const timer = setTimeout(
      () => abort.abort(new DOMException(`node read took over ${timeoutMs} ms`, 'TimeoutError')),
      timeoutMs,
    );
    o.stats.requests++;
    try {
      const node = await o.readNode(o.nodeName, abort.signal);
      if (this.#stopped) return;
      const labels = node?.metadata?.labels;
      const raw = labels && typeof labels === 'object' ? labels[ZONE_LABEL] : undefined;
      const zone = typeof raw === 'string' && raw !== '' ? raw : undefined;
      o.stats.lastSyncTime = Math.floor(Date.now() / 1000);
      this.#backoff.succeeded();
      if (!this.#known || zone !== o.stats.zone) {
        o.logger.info({ node: o.nodeName, zone: zone ?? null }, 'k8s source: node zone');
        this.#known = true;
        o.stats.zone = zone;
        try {
          o.onZone(zone);
        } catch (err) {
          o.logger.error({ err: describe(err) }, 'k8s source: setting the node zone failed');
        }
      }
      this.#schedule(o.refreshMs ?? 300_000);
    } catch (err) {
      if (this.#stopped) return;
      o.stats.errors++;
      const delayMs = this.#backoff.next();
      const e = abort.signal.aborted ? abort.signal.reason : err;
      o.logger.warn(
        { node: o.nodeName, err: describe(e), delayMs },
        'k8s source: reading the node failed; retrying',
      );
      this.#schedule(delayMs);
    } finally {
      clearTimeout(timer);
      if (this.#abort === abort) this.#abort = undefined;
    }
  }
}
