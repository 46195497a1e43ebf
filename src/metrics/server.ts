import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { DebugState } from './state.js';

export interface MetricsServerOptions {
  /**
   * Brings in figures kept elsewhere (the worker threads') before /metrics and /debug/state
   * are rendered. Resolves even when some are missing.
   */
  readonly refresh?: () => Promise<void>;
  readonly registry: Registry;
  readonly ready: () => boolean;
  readonly state: () => DebugState;
  readonly logger: Logger;
  /** The cluster view's peer routes (`/cluster/...`), when the view is on. */
  readonly cluster?: {
    handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  };
  /**
   * Open sockets at most; more are closed at accept. Default 1024: peers of the cluster view
   * keep a socket each to the aggregator.
   */
  readonly maxConnections?: number;
  /** Requests handled at once at most; more are answered 503 at once. Default 16. */
  readonly maxInFlight?: number;
}

/** A /metrics text is reused while another scrape runs, for at most this long. */
export const SNAPSHOT_MAX_AGE_MS = 1_000;

/** More scrapes than this in a second is a flood, not a scraper: they share snapshots. */
const BUSY_SCRAPES_PER_SECOND = 10;

/** Counters of the server itself; plain fields. */
export interface MetricsServerStats {
  /** Requests answered 503 because too many were in flight. */
  shed: number;
  /** /metrics texts rendered (the rest were served from a snapshot). */
  renders: number;
}

/**
 * The observability endpoint: `/metrics` (Prometheus text), `/healthz` (200 while the event loop
 * answers), `/readyz` (200 once the first table is applied, else 503), `/debug/state` (JSON).
 * GET and HEAD only. A failing scrape answers 500 and is logged; it never affects proxying.
 *
 * A flood of requests cannot starve the data path on the same event loop: sockets are capped
 * (`maxConnections`), requests in flight are capped (503 past it), idle and slow sockets are
 * closed after a few seconds, and scrapes that overlap or come more than 10 a second share one
 * rendered text (at most SNAPSHOT_MAX_AGE_MS old) instead of each walking every connection. An
 * ordinary scraper always gets a fresh text.
 */
export class MetricsServer {
  readonly #opts: MetricsServerOptions;
  readonly #server: Server;
  readonly #maxInFlight: number;
  readonly stats: MetricsServerStats = { shed: 0, renders: 0 };
  #inFlight = 0;
  #windowStart = 0;
  #windowScrapes = 0;
  #snapshot: { text: string; at: number } | undefined;
  #rendering: Promise<string> | undefined;

  constructor(opts: MetricsServerOptions) {
    this.#opts = opts;
    this.#maxInFlight = opts.maxInFlight ?? 16;
    this.#server = createServer(
      // Check header and request deadlines every second, not every 30 s (the default).
      { connectionsCheckingInterval: 1_000 },
      (req, res) => void this.#handle(req, res),
    );
    this.#server.maxConnections = opts.maxConnections ?? 1024;
    // Scrapes are short: an idle keep-alive socket goes after 5 s, a client that sends its
    // headers or request slowly after 5 s or 10 s, any socket with no traffic after 15 s.
    this.#server.keepAliveTimeout = 5_000;
    this.#server.headersTimeout = 5_000;
    this.#server.requestTimeout = 10_000;
    this.#server.timeout = 15_000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      // SO_REUSEPORT: during an upgrade the new process serves the same address next to the
      // old one (both pods have the node's network), which closes its own at shutdown.
      // A short accept queue: past the socket cap, connects wait in the kernel (SYN retries)
      // instead of being accepted and closed by the event loop one by one.
      this.#server.listen({ host, port, reusePort: true, backlog: 64 }, () => {
        this.#server.removeListener('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const cluster = this.#opts.cluster;
    if (cluster !== undefined && (req.url ?? '').startsWith('/cluster/')) {
      return cluster
        .handle(req, res, (req.url ?? '/').split('?')[0] as string)
        .catch((err: unknown) => {
          this.#opts.logger.error({ err }, 'cluster request failed');
          if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
          else res.destroy();
        });
    }
    if (this.#inFlight >= this.#maxInFlight) {
      this.stats.shed++;
      return send(res, 503, 'text/plain', 'busy: too many requests at once\n', {
        'retry-after': '1',
        connection: 'close',
      });
    }
    this.#inFlight++;
    try {
      await this.#route(req, res);
    } finally {
      this.#inFlight--;
    }
  }

  /**
   * The /metrics text: the one being rendered, if any; under load (other requests in flight, or
   * more than a few scrapes in the last second) the last one if it is recent; else a fresh one,
   * so that an ordinary scraper always reads current values.
   */
  #metricsText(): Promise<string> {
    const snap = this.#snapshot;
    const now = Date.now();
    if (now - this.#windowStart >= SNAPSHOT_MAX_AGE_MS) {
      this.#windowStart = now;
      this.#windowScrapes = 0;
    }
    this.#windowScrapes++;
    if (this.#rendering !== undefined) return this.#rendering;
    const busy = this.#inFlight > 1 || this.#windowScrapes > BUSY_SCRAPES_PER_SECOND;
    if (snap !== undefined && busy && now - snap.at < SNAPSHOT_MAX_AGE_MS)
      return Promise.resolve(snap.text);
    this.stats.renders++;
    const refresh = this.#opts.refresh?.() ?? Promise.resolve();
    const rendering = refresh
      .then(() => this.#opts.registry.metrics())
      .then(
        (text) => {
          this.#snapshot = { text, at: now };
          this.#rendering = undefined;
          return text;
        },
        (err: unknown) => {
          this.#rendering = undefined;
          throw err;
        },
      );
    this.#rendering = rendering;
    return rendering;
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    }
    const path = (req.url ?? '/').split('?')[0];
    try {
      switch (path) {
        case '/metrics':
          return send(res, 200, this.#opts.registry.contentType, await this.#metricsText());
        case '/healthz':
          return send(res, 200, 'text/plain', 'ok\n');
        case '/readyz':
          return this.#opts.ready()
            ? send(res, 200, 'text/plain', 'ready\n')
            : send(res, 503, 'text/plain', 'not ready: no service table applied yet\n');
        case '/debug/state':
          await this.#opts.refresh?.();
          return send(
            res,
            200,
            'application/json',
            `${JSON.stringify(this.#opts.state(), null, 2)}\n`,
          );
        default:
          return send(
            res,
            404,
            'text/plain',
            'not found: try /metrics, /healthz, /readyz, /debug/state\n',
          );
      }
    } catch (err) {
      this.#opts.logger.error({ err, path }, 'metrics request failed');
      send(res, 500, 'text/plain', 'internal error\n');
    }
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
