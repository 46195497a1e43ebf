import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { DebugState } from './state.js';

export interface MetricsServerOptions {
  readonly registry: Registry;
  readonly ready: () => boolean;
  readonly state: () => DebugState;
  readonly logger: Logger;
  /** The cluster view's peer routes (`/cluster/...`), when the view is on. */
  readonly cluster?: {
    handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  };
}

/**
 * The observability endpoint: `/metrics` (Prometheus text), `/healthz` (200 while the event loop
 * answers), `/readyz` (200 once the first table is applied, else 503), `/debug/state` (JSON).
 * GET and HEAD only. A failing scrape answers 500 and is logged; it never affects proxying.
 */
export class MetricsServer {
  readonly #opts: MetricsServerOptions;
  readonly #server: Server;

  constructor(opts: MetricsServerOptions) {
    this.#opts = opts;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    // Scrapes are short; keep idle keep-alive sockets from holding shutdown up.
    this.#server.keepAliveTimeout = 5_000;
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      // SO_REUSEPORT: during an upgrade the new process serves the same address next to the
      // old one (both pods have the node's network), which closes its own at shutdown.
      this.#server.listen({ host, port, reusePort: true }, () => {
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
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    }
    const path = (req.url ?? '/').split('?')[0];
    try {
      switch (path) {
        case '/metrics':
          return send(
            res,
            200,
            this.#opts.registry.contentType,
            await this.#opts.registry.metrics(),
          );
        case '/healthz':
          return send(res, 200, 'text/plain', 'ok\n');
        case '/readyz':
          return this.#opts.ready()
            ? send(res, 200, 'text/plain', 'ready\n')
            : send(res, 503, 'text/plain', 'not ready: no service table applied yet\n');
        case '/debug/state':
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
