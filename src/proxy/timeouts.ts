import type { ConnectionTimeouts } from './connection.js';
import type { Connection } from './connection.js';
import type { ServicePortProxy } from './service-port-proxy.js';

export interface TimeoutSweeperOptions extends ConnectionTimeouts {
  readonly servicePorts: () => Iterable<ServicePortProxy>;
  readonly now: () => number;
  /** An h2c connection went idle: drain it with GOAWAY (the drain controller counts it). */
  readonly drainIdle: (conn: Connection, owner: ServicePortProxy) => void;
}

/** Longest and shortest time between two sweeps. */
const SWEEP_MAX_MS = 1_000;
const SWEEP_MIN_MS = 50;

/**
 * Enforces `--half-closed-timeout` and `--idle-timeout` with one coarse sweep over the open
 * connections (about once a second), in the manner of kube-proxy's conntrack timeouts rather
 * than a timer per connection or per chunk: the data path does nothing for it. A connection is
 * closed at most one sweep interval after its limit.
 */
export class TimeoutSweeper {
  readonly #opts: TimeoutSweeperOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: TimeoutSweeperOptions) {
    this.#opts = opts;
  }

  /** Sweep interval: a tenth of the shortest limit, between 50 ms and 1 s. */
  get intervalMs(): number {
    const limits = [this.#opts.halfClosedMs, this.#opts.idleMs].filter((ms) => ms > 0);
    if (limits.length === 0) return 0;
    return Math.max(SWEEP_MIN_MS, Math.min(SWEEP_MAX_MS, Math.min(...limits) / 10));
  }

  start(): void {
    const every = this.intervalMs;
    if (every === 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sweep(), every);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass over every open connection (normally run by the timer). */
  sweep(): void {
    const now = this.#opts.now();
    for (const owner of this.#opts.servicePorts()) {
      // Closing is asynchronous ('close' events): the set does not change under this loop.
      for (const conn of owner.connections) {
        if (conn.sweep(now, this.#opts) === 'drain-idle') this.#opts.drainIdle(conn, owner);
      }
    }
  }
}
