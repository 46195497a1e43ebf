import type { Socket } from 'node:net';
import type { EndpointStats } from '../balancer/endpoint-stats.js';
import type { LeastConnBalancer } from '../balancer/least-conn.js';
import { ConnectFailureReason, dial } from './dial.js';

/** What a connection needs from the Service port that accepted it. */
export interface ConnectionHost {
  readonly servicePort: string;
  readonly balancer: LeastConnBalancer;
  readonly connectTimeoutMs: number;
  /** Endpoints tried per client connection before giving up (at least 1). */
  readonly maxConnectAttempts: number;
  /** The connection reached an endpoint and is copying bytes. */
  established(conn: Connection): void;
  /** The client was turned away: no endpoint, or every attempt failed. */
  turnedAway(conn: Connection, reason: ConnectFailureReason): void;
  /** The connection ended, whatever way; called exactly once per established connection. */
  closed(conn: Connection): void;
}

let nextId = 1;

/**
 * One proxied TCP connection: dials the best endpoint (the next best on refusal or timeout, a
 * bounded number of times), then copies bytes both ways.
 *
 * Guarantees: the client is read only once an endpoint accepted (the listener pauses it on
 * accept), so nothing is buffered while dialing; a side that half-closes keeps the other
 * direction open; a slow reader pauses the other side (each socket buffers at most its high
 * water mark); the balancer's counts for this connection are released exactly once, whatever
 * way it ends. Owned by its ServicePortProxy; other code only reads its fields.
 */
export class Connection {
  readonly id = nextId++;
  readonly client: Socket;
  readonly openedAt: number;
  upstream: Socket | undefined;
  endpoint: EndpointStats | undefined;
  /** Counted as draining in the balancer. */
  draining = false;
  readonly #host: ConnectionHost;
  #attempts = 0;
  #tried: Set<EndpointStats> | undefined;
  #cancelDial: (() => void) | undefined;
  /** The endpoint being dialed: picked (so counted as active) but not yet connected. */
  #dialing: EndpointStats | undefined;
  #closed = false;

  constructor(client: Socket, host: ConnectionHost, now: number) {
    this.client = client;
    this.#host = host;
    this.openedAt = now;
    client.on('error', this.#onError);
    client.on('close', this.#onClientCloseWhileDialing);
    this.#dialNext();
  }

  /** Bytes client→server and server→client so far. */
  get bytesClientToServer(): number {
    return this.upstream?.bytesWritten ?? 0;
  }
  get bytesServerToClient(): number {
    return this.client.bytesWritten;
  }

  /** Closes both sides at once (FIN, or RST if unread data is pending). Idempotent. */
  destroy(): void {
    this.client.destroy();
    this.upstream?.destroy();
  }

  /** Moves the connection from active to draining in the balancer's counts. Idempotent. */
  markDraining(): void {
    if (this.draining || this.endpoint === undefined || this.#closed) return;
    this.draining = true;
    this.#host.balancer.startDraining(this.endpoint);
  }

  #dialNext(): void {
    const host = this.#host;
    const ep = host.balancer.pick(this.#tried);
    if (ep === undefined) return this.#reject(ConnectFailureReason.NO_ENDPOINTS);
    this.#attempts++;
    this.#dialing = ep;
    this.#cancelDial = dial(
      ep.endpoint.address,
      ep.endpoint.port,
      host.connectTimeoutMs,
      (failure, socket) => {
        this.#cancelDial = undefined;
        this.#dialing = undefined;
        if (failure !== undefined || socket === undefined) {
          host.balancer.connectFailed(ep, failure ?? ConnectFailureReason.OTHER);
          if (this.#attempts >= host.maxConnectAttempts)
            return this.#reject(failure ?? ConnectFailureReason.OTHER);
          (this.#tried ??= new Set()).add(ep);
          return this.#dialNext();
        }
        this.#established(ep, socket);
      },
    );
  }

  #reject(reason: ConnectFailureReason): void {
    this.#closed = true;
    this.client.removeListener('close', this.#onClientCloseWhileDialing);
    // A reset tells the client at once that nobody is there, as a refused connect would.
    if (!this.client.destroyed) this.client.resetAndDestroy();
    this.#host.turnedAway(this, reason);
  }

  #onClientCloseWhileDialing = (): void => {
    // The client left before any endpoint answered: abandon the dial and release its count.
    this.#closed = true;
    this.#cancelDial?.();
    this.#cancelDial = undefined;
    // pick() counted the endpoint being dialed as active; the endpoint did nothing wrong.
    if (this.#dialing !== undefined) this.#host.balancer.closed(this.#dialing, false);
    this.#dialing = undefined;
  };

  #established(ep: EndpointStats, upstream: Socket): void {
    const client = this.client;
    client.removeListener('close', this.#onClientCloseWhileDialing);
    this.endpoint = ep;
    this.upstream = upstream;
    this.#host.balancer.connected(ep);
    upstream.on('error', this.#onError);
    upstream.on('data', this.#onUpstreamData);
    upstream.on('drain', this.#onUpstreamDrain);
    upstream.on('end', this.#onUpstreamEnd);
    upstream.on('close', this.#onClose);
    client.on('data', this.#onClientData);
    client.on('drain', this.#onClientDrain);
    client.on('end', this.#onClientEnd);
    client.on('close', this.#onClose);
    this.#host.established(this);
    // The client may have been reset while the dial was finishing; its 'close' is still to
    // come, and the upstream's follows the destroy, so #onClose runs once both are gone.
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    client.resume();
  }

  #onClientData = (chunk: Buffer): void => {
    if (!(this.upstream as Socket).write(chunk)) this.client.pause();
  };

  #onUpstreamData = (chunk: Buffer): void => {
    if (!this.client.write(chunk)) (this.upstream as Socket).pause();
  };

  #onUpstreamDrain = (): void => {
    this.client.resume();
  };

  #onClientDrain = (): void => {
    this.upstream?.resume();
  };

  // Half-close: a FIN from one side becomes a FIN to the other; the other direction stays open.
  #onClientEnd = (): void => {
    this.upstream?.end();
  };

  #onUpstreamEnd = (): void => {
    this.client.end();
  };

  #onError = (): void => {
    // A reset or write error on one side: reset the other too, so neither waits for ever.
    // Which error it was is visible in the connection's end, not logged per connection.
    if (!this.client.destroyed) this.client.resetAndDestroy();
    if (this.upstream !== undefined && !this.upstream.destroyed) this.upstream.resetAndDestroy();
  };

  #onClose = (): void => {
    if (this.#closed) return;
    const up = this.upstream as Socket;
    // Wait for both sockets: a side that closed cleanly leaves the other flushing its last bytes.
    if (!(this.client.destroyed && up.destroyed)) return;
    this.#closed = true;
    const ep = this.endpoint as EndpointStats;
    ep.bytesClientToServer += up.bytesWritten;
    ep.bytesServerToClient += this.client.bytesWritten;
    this.#host.balancer.closed(ep, this.draining);
    this.#host.closed(this);
  };
}
