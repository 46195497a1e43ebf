/** Exponential back-off settings. */
export interface BackoffOptions {
  /** First delay. */
  readonly initialMs: number;
  /** Largest delay before jitter. */
  readonly maxMs: number;
  /** Growth per consecutive failure. */
  readonly factor: number;
  /** Relative jitter: each delay is multiplied by a uniform factor in [1-jitter, 1+jitter]. */
  readonly jitter: number;
  /** After this long without a failure since the last success, the next delay starts over. */
  readonly resetAfterMs: number;
}

/** 500 ms doubling to 30 s, ±20 %, reset after a healthy minute. */
export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.2,
  resetAfterMs: 60_000,
};

/**
 * Largest retry delay while the API server cannot be reached at all (connection refused or
 * reset, DNS or TLS failure). Such a retry costs the server nothing (a refused SYN), and a short
 * cap brings changes made during an outage in within a few seconds of its return. A server that
 * answers with errors (HTTP 5xx, 429) gets the full back-off instead.
 */
export const UNREACHABLE_MAX_MS = 3_000;

/**
 * Exponential back-off with jitter. `next()` after each failure gives the delay before the
 * next attempt; `succeeded()` after each sign of health. The delay starts over once the
 * client has been healthy (`succeeded()` with no failure since) for `resetAfterMs`, so a
 * server that accepts requests and fails them soon after keeps backing off. Clock and random
 * source are injected; the object is owned by one retry loop.
 */
export class Backoff {
  readonly #opts: BackoffOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  #attempt = 0;
  #healthySince: number | undefined;

  constructor(
    opts: Partial<BackoffOptions> = {},
    now: () => number = Date.now,
    random: () => number = Math.random,
  ) {
    this.#opts = { ...DEFAULT_BACKOFF, ...opts };
    this.#now = now;
    this.#random = random;
  }

  /** Consecutive failures counted since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /**
   * Records a failure; returns the delay (ms, ≥ 0) before the next attempt. `capMs` lowers the
   * largest delay for this failure (see UNREACHABLE_MAX_MS).
   */
  next(capMs?: number): number {
    const now = this.#now();
    if (this.#healthySince !== undefined && now - this.#healthySince >= this.#opts.resetAfterMs) {
      this.#attempt = 0;
    }
    this.#healthySince = undefined;
    const { initialMs, factor, jitter } = this.#opts;
    const maxMs = Math.min(this.#opts.maxMs, capMs ?? Number.POSITIVE_INFINITY);
    const base = Math.min(maxMs, initialMs * factor ** this.#attempt);
    this.#attempt++;
    const spread = 1 + jitter * (2 * this.#random() - 1);
    return Math.max(0, Math.round(base * spread));
  }

  /** Records a sign of health (a successful reply or event). */
  succeeded(): void {
    this.#healthySince ??= this.#now();
  }

  /** Starts over at once. */
  reset(): void {
    this.#attempt = 0;
    this.#healthySince = undefined;
  }
}

/** Request-rate cap settings: at most `burst + perSecond × t` requests in any t seconds. */
export interface RateLimitOptions {
  readonly burst: number;
  readonly perSecond: number;
}

/** 3 at once, then 2 per second: never more than 5 in any one second. */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { burst: 3, perSecond: 2 };

/**
 * A token bucket that callers await before each request. Waiters are served in call order.
 * `close()` makes every pending and future `take()` resolve false at once. Owned by one
 * informer.
 */
export class TokenBucket {
  readonly #opts: RateLimitOptions;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #sleepers = new Map<NodeJS.Timeout, () => void>();

  constructor(opts: Partial<RateLimitOptions> = {}, now: () => number = Date.now) {
    this.#opts = { ...DEFAULT_RATE_LIMIT, ...opts };
    if (!(this.#opts.perSecond > 0) || !(this.#opts.burst >= 1)) {
      throw new RangeError('rate limit needs perSecond > 0 and burst >= 1');
    }
    this.#now = now;
    this.#tokens = this.#opts.burst;
    this.#last = now();
  }

  /** Resolves true when a request may go out, false if the bucket was closed meanwhile. */
  take(): Promise<boolean> {
    const turn = this.#queue.then(() => this.#takeOne());
    this.#queue = turn;
    return turn;
  }

  /** Releases every waiter (with false); later takes resolve false too. */
  close(): void {
    this.#closed = true;
    for (const [t, wake] of this.#sleepers) {
      clearTimeout(t);
      wake();
    }
    this.#sleepers.clear();
  }

  async #takeOne(): Promise<boolean> {
    for (;;) {
      if (this.#closed) return false;
      const now = this.#now();
      const refill = ((now - this.#last) / 1000) * this.#opts.perSecond;
      this.#tokens = Math.min(this.#opts.burst, this.#tokens + refill);
      this.#last = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return true;
      }
      await this.#sleep(Math.ceil(((1 - this.#tokens) * 1000) / this.#opts.perSecond));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#sleepers.delete(t);
        resolve();
      }, ms);
      this.#sleepers.set(t, resolve);
    });
  }
}
