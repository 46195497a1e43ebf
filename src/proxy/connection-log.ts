import type { Logger } from '../log.js';
import type { Connection } from './connection.js';
import type { ServicePortProxy } from './service-port-proxy.js';

/** A problem of one kind is logged at most once per this long (the count says how many). */
export const PROBLEM_LOG_INTERVAL_MS = 60_000;

/**
 * Connection events as log lines, for a ConnectionObserver:
 * - bad HTTP/2 input (an h2c connection that lost sync) and accept errors (EMFILE, ENFILE) at
 *   `warn`, once per reason per minute, with the connection's endpoint and how many were not
 *   logged since (a flood of bad input cannot flood the log);
 * - at `debug`, each connection's open, protocol and close reason. The level is read once: at
 *   `info` and above nothing is formatted per connection.
 */
export class ConnectionLog {
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #debug: boolean;
  /** Per problem key: when it was last logged and how many happened since. */
  readonly #problems = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: Logger, now: () => number = Date.now) {
    this.#log = logger;
    this.#now = now;
    this.#debug = logger.isLevelEnabled('debug');
  }

  established(conn: Connection, owner: ServicePortProxy): void {
    if (!this.#debug) return;
    this.#log.debug(
      {
        conn: conn.id,
        servicePort: owner.servicePort,
        client: `${conn.client.remoteAddress}:${conn.client.remotePort}`,
        endpoint: conn.endpoint?.key,
      },
      'connection open',
    );
  }

  protocolKnown(conn: Connection, owner: ServicePortProxy, desync?: string): void {
    if (desync !== undefined) {
      this.#problem(`h2 ${desync}`, (suppressed) =>
        this.#log.warn(
          {
            servicePort: owner.servicePort,
            endpoint: conn.endpoint?.key,
            client: `${conn.client.remoteAddress}:${conn.client.remotePort}`,
            reason: desync,
            suppressed,
          },
          'bad HTTP/2 input: connection no longer tracked (opaque from here on)',
        ),
      );
    }
    if (!this.#debug) return;
    this.#log.debug(
      { conn: conn.id, servicePort: owner.servicePort, protocol: conn.protocol, desync },
      'connection protocol',
    );
  }

  closed(conn: Connection, owner: ServicePortProxy): void {
    if (!this.#debug) return;
    this.#log.debug(
      {
        conn: conn.id,
        servicePort: owner.servicePort,
        endpoint: conn.endpoint?.key,
        protocol: conn.protocol,
        reason: conn.closeReason,
        seconds: (this.#now() - conn.openedAt) / 1000,
      },
      'connection closed',
    );
  }

  acceptError(code: string, owner: ServicePortProxy): void {
    this.#problem(`accept ${code}`, (suppressed) =>
      this.#log.warn(
        { servicePort: owner.servicePort, code, suppressed },
        code === 'EMFILE' || code === 'ENFILE'
          ? 'cannot accept: out of file descriptors; connections are being shed'
          : 'cannot accept a connection',
      ),
    );
  }

  #problem(key: string, log: (suppressed: number) => void): void {
    const now = this.#now();
    const p = this.#problems.get(key);
    if (p !== undefined && now - p.at < PROBLEM_LOG_INTERVAL_MS) {
      p.suppressed++;
      return;
    }
    // The keys are a closed set (desync reasons, errno codes): the map stays small.
    this.#problems.set(key, { at: now, suppressed: 0 });
    log(p?.suppressed ?? 0);
  }
}
