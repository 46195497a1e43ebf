import { connect, type Socket } from 'node:net';

/** Why a dial to an endpoint failed; a metric label, so a closed set. */
export const ConnectFailureReason = {
  REFUSED: 'refused',
  TIMEOUT: 'timeout',
  UNREACHABLE: 'unreachable',
  RESET: 'reset',
  /** Accepted, then reset by the endpoint before it sent any byte (counted after the dial). */
  EARLY_RESET: 'early_reset',
  OTHER: 'other',
  /** No endpoint was eligible, or every one failed: the client was turned away. */
  NO_ENDPOINTS: 'no_endpoints',
} as const;
export type ConnectFailureReason = (typeof ConnectFailureReason)[keyof typeof ConnectFailureReason];

/** Maps a socket error to a failure reason. */
export function failureReason(err: unknown): ConnectFailureReason {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'ECONNREFUSED':
      return ConnectFailureReason.REFUSED;
    case 'ETIMEDOUT':
      return ConnectFailureReason.TIMEOUT;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return ConnectFailureReason.UNREACHABLE;
    case 'ECONNRESET':
    case 'EPIPE':
      return ConnectFailureReason.RESET;
    default:
      return ConnectFailureReason.OTHER;
  }
}

/** Idle time before TCP keepalive probes, once a connection has keepalive (see Connection). */
export const SOCKET_KEEPALIVE_MS = 30_000;

/**
 * Where a dialed socket reads into (`net.connect`'s documented `onread`): `buffer` gives the
 * buffer for the next read (Node calls it when the socket is created and after every callback),
 * `callback` gets each chunk as (bytes read, that buffer) and returns false to pause the socket.
 * The socket then emits no 'data'.
 */
export interface ReadInto {
  readonly buffer: () => Uint8Array;
  readonly callback: (n: number, buf: Uint8Array) => boolean;
}

/**
 * Opens a TCP connection to `host:port`. Calls `done(undefined, socket)` once connected, or
 * `done(reason)` once it failed or `timeoutMs` passed (the socket is then destroyed). `done` is
 * called exactly once. The returned function cancels the dial (no callback afterwards). With
 * `onread`, the socket reads through it (see ReadInto).
 */
export function dial(
  host: string,
  port: number,
  timeoutMs: number,
  done: (failure: ConnectFailureReason | undefined, socket: Socket | undefined) => void,
  onread?: ReadInto,
): () => void {
  let finished = false;
  const socket = connect({
    host,
    port,
    allowHalfOpen: true,
    noDelay: true,
    onread,
  });
  const finish = (failure: ConnectFailureReason | undefined): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('connect', onConnect);
    socket.removeListener('error', onError);
    if (failure !== undefined) {
      socket.on('error', ignore);
      socket.destroy();
      done(failure, undefined);
    } else {
      done(undefined, socket);
    }
  };
  const onConnect = (): void => finish(undefined);
  const onError = (err: Error): void => finish(failureReason(err));
  const timer = setTimeout(finish, timeoutMs, ConnectFailureReason.TIMEOUT);
  // `on`, not `once`: finish removes both, and `once` would wrap each in two more objects.
  socket.on('connect', onConnect);
  socket.on('error', onError);
  return () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.on('error', ignore);
    socket.destroy();
  };
}

function ignore(): void {}
