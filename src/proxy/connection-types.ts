import type { LeastConnBalancer } from '../balancer/least-conn.js';
import type { ConnectFailureReason } from './dial.js';
import type { Connection } from './connection.js';

/** How a drain ended; a metric label, so a closed set. */
export const DrainOutcome = {
  /** The client processed our GOAWAY, its streams ended, and we closed. */
  GRACEFUL: 'graceful',
  /** Still open at the grace deadline: closed anyway. */
  FORCED: 'forced',
  /** The client closed or half-closed first (grpc-go does at once when idle). */
  CLIENT_CLOSED: 'client_closed',
  /** The server closed first (its own GOAWAY, a restart). */
  SERVER_CLOSED: 'server_closed',
} as const;
export type DrainOutcome = (typeof DrainOutcome)[keyof typeof DrainOutcome];

export type Protocol = 'pending' | 'h2c' | 'opaque';

/**
 * Where a connection's event handler threw; a metric label, so a closed set. `accept`: taking
 * the client on; `dial`: an endpoint answered or failed; `client-data`/`server-data`: bytes in;
 * `end`, `close`, `error`, `drain`: the other socket events.
 */
export const FaultPoints = [
  'accept',
  'dial',
  'client-data',
  'server-data',
  'end',
  'close',
  'error',
  'drain',
] as const;
export type FaultPoint = (typeof FaultPoints)[number];
/** Why an established connection closed; a metric label, so a closed set. */
export const CloseReason = {
  /** Both sides ended with FIN, no error. */
  NORMAL: 'normal',
  /** The client reset its side (or a write to it failed): the server side was reset too. */
  CLIENT_RESET: 'client_reset',
  /** The server reset its side (or a write to it failed): the client side was reset too. */
  SERVER_RESET: 'server_reset',
  /** One side sent FIN and the connection stayed open past `--half-closed-timeout`. */
  HALF_CLOSED_TIMEOUT: 'half_closed_timeout',
  /** No byte either way for `--idle-timeout` (opaque, or protocol still unknown). */
  IDLE_TIMEOUT: 'idle_timeout',
  /** A drain ended it (GOAWAY and streams done, or the grace deadline). */
  DRAINED: 'drained',
  /** Closed by the proxy at once (shutdown deadline, second signal). */
  DESTROYED: 'destroyed',
} as const;
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

/** Time limits the sweep enforces; 0 turns one off. */
export interface ConnectionTimeouts {
  /** After the first FIN (or one side gone), close at most this long later. */
  readonly halfClosedMs: number;
  /** No byte read from either side for this long: close (opaque) or drain (h2c). */
  readonly idleMs: number;
}

/** What a timeout sweep asks of the caller for one connection. */
export type SweepVerdict = 'drain-idle' | undefined;

/** A finished drain, reported once per drained connection when it closes. */
export interface DrainEnd {
  readonly reason: string;
  readonly outcome: DrainOutcome;
  readonly seconds: number;
  /** Streams that ended after the drain started, normally and by RST_STREAM. */
  readonly streamsNormal: number;
  readonly streamsReset: number;
}

/** HTTP/2 tracking settings; absent when tracking is off (every connection is opaque). */
export interface H2Settings {
  readonly pingPayload: Uint8Array;
  readonly pingAckWaitMaxMs: number;
  /** After our FIN, how long to keep reading and discarding before destroying the sockets. */
  readonly lingerMs: number;
}

/** What a connection needs from the Service port that accepted it. */
export interface ConnectionHost {
  readonly servicePort: string;
  readonly balancer: LeastConnBalancer;
  readonly connectTimeoutMs: number;
  /** Endpoints tried per client connection before giving up (at least 1). */
  readonly maxConnectAttempts: number;
  readonly h2: H2Settings | undefined;
  readonly now: () => number;
  /** The connection reached an endpoint and is copying bytes. */
  established(conn: Connection): void;
  /** The client was turned away: no endpoint, or every attempt failed. */
  turnedAway(conn: Connection, reason: ConnectFailureReason): void;
  /** Protocol detection finished (h2c or opaque). */
  protocolKnown(conn: Connection, protocol: 'h2c' | 'opaque', desync: string | undefined): void;
  /** The server sent its own GOAWAY on an h2c connection. */
  serverGoaway(conn: Connection): void;
  /** A drained connection closed. */
  drainEnded(conn: Connection, end: DrainEnd): void;
  /** The connection ended, whatever way; called exactly once per established connection. */
  closed(conn: Connection): void;
  /** Test seam (see ServicePortProxyOptions.faultHook); undefined in production. */
  readonly faultHook?: ((conn: Connection | undefined, point: FaultPoint) => void) | undefined;
  /** One of this connection's event handlers threw; the connection has been closed. */
  faulted?(conn: Connection | undefined, point: FaultPoint, err: unknown): void;
  /**
   * The endpoint reset the connection before sending a byte (accept-then-reset): an outlier,
   * reported to the balancer like a refused dial. The client is not replayed elsewhere.
   */
  earlyReset?(conn: Connection): void;
}
