import type { Socket } from 'node:net';
import type { EndpointStats } from '../balancer/endpoint-stats.js';
import type { Connection } from './connection.js';
import type { ConnectionHost } from './connection-types.js';
import { ConnectFailureReason, dial, type ReadInto } from './dial.js';

/** What a Dialer tells the connection it dials for (a Connection). */
export interface DialOwner {
  /** An endpoint accepted: `upstream` is connected and counted as active on `ep`. */
  dialed(ep: EndpointStats, upstream: Socket): void;
  /** No endpoint was eligible, or every attempt failed. */
  dialFailed(reason: ConnectFailureReason): void;
  /** The code handling a dial's outcome threw (a bug, or an injected fault). */
  dialFaulted(err: unknown): void;
}

/**
 * The first part of a proxied connection: picks the best endpoint, dials it, and on refusal or
 * timeout the next best not tried yet, at most `maxConnectAttempts` times. Lives only while
 * dialing; the connection drops it once an endpoint accepted or the client was turned away.
 *
 * Counts: `pick` counts the endpoint being dialed as active; a failed dial is reported to the
 * balancer (`connectFailed`, which releases it); `abandon` releases it when the client left.
 */
export class Dialer {
  readonly #owner: DialOwner & Connection;
  readonly #host: ConnectionHost;
  readonly #onread: ReadInto | undefined;
  #attempts = 0;
  #tried: Set<EndpointStats> | undefined;
  #cancel: (() => void) | undefined;
  /** The endpoint being dialed: picked (so counted as active) but not yet connected. */
  #dialing: EndpointStats | undefined;

  constructor(owner: DialOwner & Connection, host: ConnectionHost, onread: ReadInto | undefined) {
    this.#owner = owner;
    this.#host = host;
    this.#onread = onread;
  }

  /** Dials the next endpoint, or tells the owner that none is left. */
  next(): void {
    const host = this.#host;
    const ep = host.balancer.pick(this.#tried);
    if (ep === undefined) return this.#owner.dialFailed(ConnectFailureReason.NO_ENDPOINTS);
    this.#attempts++;
    this.#dialing = ep;
    this.#cancel = dial(
      ep.endpoint.address,
      ep.endpoint.port,
      host.connectTimeoutMs,
      (failure, socket) => this.#done(ep, failure, socket),
      this.#onread,
    );
  }

  #done(ep: EndpointStats, failure: ConnectFailureReason | undefined, socket?: Socket): void {
    try {
      this.#host.faultHook?.(this.#owner, 'dial');
      this.#cancel = undefined;
      this.#dialing = undefined;
      if (failure !== undefined || socket === undefined) {
        this.#host.balancer.connectFailed(ep, failure ?? ConnectFailureReason.OTHER);
        if (this.#attempts >= this.#host.maxConnectAttempts)
          return this.#owner.dialFailed(failure ?? ConnectFailureReason.OTHER);
        (this.#tried ??= new Set()).add(ep);
        return this.next();
      }
      this.#owner.dialed(ep, socket);
    } catch (err) {
      // The connection never took the socket: close it here, or its descriptor stays open.
      if (socket !== undefined && this.#dialing === ep) socket.destroy();
      this.#owner.dialFaulted(err);
    }
  }

  /** Stops a dial in flight (no outcome is reported). The endpoint stays counted. */
  cancel(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /** The client left before any endpoint answered: stop, and release the endpoint's count. */
  abandon(): void {
    this.cancel();
    // pick() counted the endpoint being dialed as active; the endpoint did nothing wrong.
    if (this.#dialing !== undefined) this.#host.balancer.closed(this.#dialing, false);
    this.#dialing = undefined;
  }
}
