/**
 * A coalescing runner for iptables syncs, after kube-proxy's BoundedFrequencyRunner
 * (`pkg/proxy/runner/bounded_frequency_runner.go`): any number of `requestSync()` calls turn into
 * at most one sync per `minIntervalMs`, the first one promptly; a failed sync is retried with
 * exponential backoff and jitter. The sync function reads the latest desired state itself, so
 * a coalesced request loses nothing: the one sync that runs covers every request before it.
 */

/** Timers and a monotonic clock (milliseconds). Injected so tests control time. */
export interface SyncerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock: `performance.now()` and the global timers. */
export const systemClock: SyncerClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** What one sync did, for metrics. `rules` is 0 when the sync failed. */
export interface SyncReport {
  readonly ok: boolean;
  readonly durationSeconds: number;
  readonly rules: number;
  readonly error?: unknown;
}

/** Default of `--sync-min-interval`: at most one iptables-restore per second. */
export const DEFAULT_SYNC_MIN_INTERVAL_MS = 1000;
/** First retry delay after a failure; doubles per consecutive failure. */
export const DEFAULT_RETRY_INITIAL_MS = 1000;
/** Retry delays never grow past this. */
export const DEFAULT_RETRY_MAX_MS = 30_000;

/** Options of `Syncer`. Read once at construction. */
export interface SyncerOptions {
  /** Writes the current desired state; resolves with the number of rules written. */
  readonly sync: () => Promise<number>;
  /** Least time between the starts of two syncs. Default 1000 ms (`--sync-min-interval`). */
  readonly minIntervalMs?: number;
  /**
   * When set, a sync also runs this long after the last one even without a request, repairing
   * rules someone else removed (kube-proxy's periodic sync). Off by default.
   */
  readonly maxIntervalMs?: number;
  /** First retry delay after a failure (default 1 s), doubled per failure up to `retryMaxMs`. */
  readonly retryInitialMs?: number;
  /** Cap of the retry delay (default 30 s). */
  readonly retryMaxMs?: number;
  /** Fraction of random spread on each retry delay, 0..1 (default 0.2: ±20 %). */
  readonly retryJitter?: number;
  /** Defaults to `systemClock`. */
  readonly clock?: SyncerClock;
  /** Returns [0, 1). Defaults to `Math.random`. */
  readonly random?: () => number;
  /** Called after every sync, success or failure. Must not throw (a throw is ignored). */
  readonly onSync?: (report: SyncReport) => void;
}

/**
 * Runs `sync` at most once per `minIntervalMs`, never two at once. Owns its timers; only
 * `requestSync` and `stop` change its state, and both may be called at any time, from any
 * callback (including `onSync`).
 */
export class Syncer {
  readonly #sync: () => Promise<number>;
  readonly #minIntervalMs: number;
  readonly #maxIntervalMs: number | undefined;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  readonly #retryJitter: number;
  readonly #clock: SyncerClock;
  readonly #random: () => number;
  readonly #onSync: ((report: SyncReport) => void) | undefined;

  /** A sync was requested (or is due for retry) and has not started yet. */
  #pending = false;
  /** A sync is in flight (set synchronously, so a sync that throws at once is still seen). */
  #busy = false;
  #running: Promise<void> | undefined;
  #timer: unknown;
  #timerAt = 0;
  #lastStart = Number.NEGATIVE_INFINITY;
  /** Earliest start of the next sync after a failure. */
  #retryAt = Number.NEGATIVE_INFINITY;
  #failures = 0;
  #stopped = false;

  constructor(opts: SyncerOptions) {
    this.#sync = opts.sync;
    this.#minIntervalMs = opts.minIntervalMs ?? DEFAULT_SYNC_MIN_INTERVAL_MS;
    this.#maxIntervalMs = opts.maxIntervalMs;
    this.#retryInitialMs = opts.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS;
    this.#retryMaxMs = opts.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
    this.#retryJitter = Math.min(1, Math.max(0, opts.retryJitter ?? 0.2));
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#onSync = opts.onSync;
  }

  /** Consecutive failed syncs; 0 after a success. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Asks for a sync of the current state. Cheap and idempotent: calls before the sync starts
   * coalesce into it; a call while a sync runs leads to exactly one more sync after it. Ignored
   * after `stop()`.
   */
  requestSync(): void {
    if (this.#stopped) return;
    this.#pending = true;
    this.#schedule();
  }

  /**
   * Cancels timers and pending requests; no sync starts after this. Resolves once a sync that
   * is already running has finished, so the caller may then clean up iptables safely.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#pending = false;
    this.#cancelTimer();
    await this.#running;
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Arms the timer for the earliest allowed start of the next sync, if one is wanted. */
  #schedule(): void {
    if (this.#stopped || this.#busy) return; // #run reschedules when it ends
    const now = this.#clock.now();
    let at: number;
    if (this.#pending) {
      at = Math.max(now, this.#lastStart + this.#minIntervalMs, this.#retryAt);
    } else if (this.#maxIntervalMs !== undefined) {
      at = Math.max(now, this.#lastStart + this.#maxIntervalMs);
    } else {
      return;
    }
    // An armed timer that fires no later is kept: re-arming on every request would let a
    // steady stream of requests postpone the sync for ever.
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#cancelTimer();
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#run();
    }, at - now);
  }

  async #run(): Promise<void> {
    this.#busy = true;
    this.#pending = false;
    const start = this.#clock.now();
    this.#lastStart = start;
    let report: SyncReport;
    try {
      const rules = await this.#sync();
      this.#failures = 0;
      this.#retryAt = Number.NEGATIVE_INFINITY;
      report = { ok: true, durationSeconds: (this.#clock.now() - start) / 1000, rules };
    } catch (error) {
      this.#failures += 1;
      this.#retryAt = this.#clock.now() + this.#retryDelay();
      // A failed sync left the desired state unwritten: it stays wanted.
      this.#pending = true;
      report = { ok: false, durationSeconds: (this.#clock.now() - start) / 1000, rules: 0, error };
    }
    this.#busy = false;
    try {
      this.#onSync?.(report);
    } catch {
      // Metrics hooks must not break syncing.
    }
    this.#schedule();
  }

  /** initial * 2^(failures-1), capped, spread by ±jitter so many nodes do not retry in step. */
  #retryDelay(): number {
    const base = Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** (this.#failures - 1));
    const spread = 1 + this.#retryJitter * (2 * this.#random() - 1);
    return Math.min(this.#retryMaxMs, Math.max(0, base * spread));
  }
}
