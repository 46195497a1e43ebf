import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { LeastConnBalancer, type EndpointChange } from '../balancer/least-conn.js';
import type { ServicePort } from '../servicetable/types.js';
import { Connection, type ConnectionHost } from './connection.js';
import { SOCKET_KEEPALIVE_MS, type ConnectFailureReason } from './dial.js';

/** Settings shared by every Service port. */
export interface ServicePortProxyOptions {
  readonly connectTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly slowStartWindowMs: number;
  readonly now: () => number;
  readonly random: () => number;
  /** Told about every established and closed connection (drain controller, tests). */
  readonly observer?: ConnectionObserver;
}

export interface ConnectionObserver {
  established(conn: Connection, owner: ServicePortProxy): void;
  closed(conn: Connection, owner: ServicePortProxy): void;
}

/**
 * One Service port: its listener, its balancer and its open connections.
 * Counters are plain fields, read at scrape time.
 */
export class ServicePortProxy implements ConnectionHost {
  #servicePort: ServicePort;
  readonly balancer: LeastConnBalancer;
  readonly connectTimeoutMs: number;
  readonly maxConnectAttempts: number;
  /** Open connections (established, not yet closed). */
  readonly connections = new Set<Connection>();
  /** Clients turned away, by reason. */
  readonly turnedAwayByReason = new Map<ConnectFailureReason, number>();
  /** Bytes of connections that have ended. Live ones add theirs at read time. */
  bytesClientToServer = 0;
  bytesServerToClient = 0;
  /** Where the listener is bound, once it is. */
  address: AddressInfo | undefined;
  readonly #opts: ServicePortProxyOptions;
  #server: Server | undefined;

  constructor(servicePort: ServicePort, opts: ServicePortProxyOptions) {
    this.#servicePort = servicePort;
    this.#opts = opts;
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.maxConnectAttempts = Math.max(1, opts.maxConnectAttempts);
    this.balancer = new LeastConnBalancer({
      now: opts.now,
      random: opts.random,
      slowStartWindowMs: opts.slowStartWindowMs,
    });
    this.balancer.update(servicePort.endpoints);
  }

  get servicePort(): string {
    return this.#servicePort.key;
  }

  get spec(): ServicePort {
    return this.#servicePort;
  }

  get listening(): boolean {
    return this.#server?.listening ?? false;
  }

  /** Applies a newer version of this Service port. Returns the endpoints whose status changed. */
  update(servicePort: ServicePort): EndpointChange[] {
    this.#servicePort = servicePort;
    return this.balancer.update(servicePort.endpoints);
  }

  /** Binds the listener. Rejects with the socket error (EADDRINUSE, EADDRNOTAVAIL, ...). */
  listen(host: string, port: number): Promise<AddressInfo> {
    const server = createServer(
      {
        allowHalfOpen: true,
        pauseOnConnect: true,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: SOCKET_KEEPALIVE_MS,
      },
      this.#onConnection,
    );
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.removeListener('error', reject);
        // After listening, an accept error (EMFILE...) must not crash the daemon; Node keeps
        // accepting once descriptors free up.
        server.on('error', () => {});
        this.#server = server;
        this.address = server.address() as AddressInfo;
        resolve(this.address);
      });
    });
  }

  /**
   * Stops accepting. Open connections are not touched. Resolves once the listening socket is
   * closed, not when the connections it accepted end (which is when net.Server's own close
   * callback would run).
   */
  stopListening(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return Promise.resolve();
    server.close();
    return new Promise((resolve) => setImmediate(resolve));
  }

  #onConnection = (client: Socket): void => {
    // A client that is gone before we look at it has no address; nothing to do.
    if (client.remoteAddress === undefined) {
      client.destroy();
      return;
    }
    new Connection(client, this, this.#opts.now());
  };

  established(conn: Connection): void {
    this.connections.add(conn);
    this.#opts.observer?.established(conn, this);
  }

  turnedAway(_conn: Connection, reason: ConnectFailureReason): void {
    this.turnedAwayByReason.set(reason, (this.turnedAwayByReason.get(reason) ?? 0) + 1);
  }

  closed(conn: Connection): void {
    this.connections.delete(conn);
    this.bytesClientToServer += conn.bytesClientToServer;
    this.bytesServerToClient += conn.bytesServerToClient;
    this.#opts.observer?.closed(conn, this);
  }
}
