/**
 * The drain budget of one Service port: at most `maxConcurrent(total)` of its connections
 * draining at once, and at most `ratePerSec` drains started per second (a token bucket with a
 * burst of one second's worth, at least one). Pure; the clock comes in as an argument.
 */

/** A share of the Service port's connections (`10%`) or a fixed count (`5`). */
export type DrainShare = { readonly percent: number } | { readonly count: number };

export interface BudgetOptions {
  readonly maxConcurrent: DrainShare;
  /** Drains started per second; 0 = no rate limit. */
  readonly ratePerSec: number;
}

/** How many of `total` connections may drain at once: the share, rounded down, at least 1. */
export function concurrentLimit(share: DrainShare, total: number): number {
  const n = 'count' in share ? share.count : Math.floor((total * share.percent) / 100);
  return Math.max(1, n);
}

export class DrainBudget {
  readonly #opts: BudgetOptions;
  #tokens: number;
  #last: number;

  constructor(opts: BudgetOptions, now: number) {
    this.#opts = opts;
    this.#tokens = this.#burst();
    this.#last = now;
  }

  /**
   * How many drains may start now, given `draining` already in progress out of `total`
   * connections. Does not take them: call `take` for those actually started.
   */
  available(now: number, draining: number, total: number): number {
    this.#refill(now);
    const byConcurrency = concurrentLimit(this.#opts.maxConcurrent, total) - draining;
    const byRate = this.#opts.ratePerSec > 0 ? Math.floor(this.#tokens) : Number.POSITIVE_INFINITY;
    return Math.max(0, Math.min(byConcurrency, byRate));
  }

  /** Records `n` drains started now. */
  take(now: number, n: number): void {
    this.#refill(now);
    if (this.#opts.ratePerSec > 0) this.#tokens -= n;
  }

  #burst(): number {
    return Math.max(1, this.#opts.ratePerSec);
  }

  #refill(now: number): void {
    if (this.#opts.ratePerSec <= 0) return;
    const elapsed = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#tokens = Math.min(this.#burst(), this.#tokens + elapsed * this.#opts.ratePerSec);
  }
}
