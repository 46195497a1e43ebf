import type { Socket } from 'node:net';
import type { EndpointStats } from '../balancer/endpoint-stats.js';
import {
  CloseReason,
  DrainOutcome,
  type ConnectionHost,
  type ConnectionTimeouts,
  type FaultPoint,
  type H2Settings,
  type Protocol,
  type SweepVerdict,
} from './connection-types.js';
import type { ConnectFailureReason } from './dial.js';
import { Dialer, type DialOwner } from './dialer.js';
import { H2Tap, type TapOwner } from './h2-tap.js';
import { READ_BUFFER_SIZE, upstreamReads } from './read-buffer.js';

// The types of a connection live in their own file; other modules import them from here.
export * from './connection-types.js';

interface DrainState {
  readonly reason: string;
  readonly startedAt: number;
  readonly timer: NodeJS.Timeout;
  outcome: DrainOutcome | undefined;
  readonly streamsNormalAtStart: number;
  readonly streamsResetAtStart: number;
}

let nextId = 1;

/**
 * How a connection's bytes are handled: SNIFF while HTTP/2 tracking is on and no byte has told
 * the protocol yet; TAP through the H2Tap; PLAIN copy (opaque, or tracking off); CLOSING after
 * our FIN on a drained connection (read and discard until the sockets close).
 */
const Mode = { SNIFF: 0, TAP: 1, PLAIN: 2, CLOSING: 3 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/**
 * Closes `socket` with a reset (RST), so the peer knows at once. Not while our FIN is still
 * queued behind unsent data (`end()` called, not finished): there libuv refuses the reset
 * (uv_tcp_close_reset: EINVAL while a shutdown is pending) and Node drops its reference to the
 * handle without closing it, which leaks the descriptor for good. A plain close is used then.
 * Found with a churn of 2,000 clients against backends that stop reading.
 */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded && !socket.writableFinished) socket.destroy();
  else socket.resetAndDestroy();
}

/** A stalled connection has its paused sockets probed once nothing moved for this long. */
const PROBE_AFTER_MS = 2_000;
const EMPTY = Buffer.alloc(0);

/**
 * Finds out whether a paused socket is still connected. Node reads nothing from a paused
 * socket, so a reset or FIN from its peer goes unnoticed; when the other side is paused too
 * (each waits for the other to drain) the connection, and its count, would stay for ever. A
 * write of zero bytes sends nothing but fails at once (EPIPE, ECONNRESET) on a socket the peer
 * has reset, which closes the connection through the usual error path. Only for paused sockets
 * still open for writing: the sweep calls this rarely.
 */
function probe(socket: Socket): void {
  if (socket.isPaused() && !socket.writableEnded && !socket.destroyed) socket.write(EMPTY);
}

/**
 * Ends the writable side of `socket` after the peer already ended its side: once nothing is
 * buffered, closing the descriptor sends the same FIN without a shutdown(2) call of its own.
 */
function finish(socket: Socket): void {
  if (socket.readableEnded && socket.writableLength === 0) socket.destroy();
  else socket.end();
}

/** Where each socket's connection is kept, so that one set of listeners serves every socket. */
const CONN = Symbol('connection');
type Tagged = Socket & { [CONN]: Connection };

function connOf(socket: Socket): Connection {
  return (socket as Tagged)[CONN];
}

/**
 * One proxied TCP connection: a Dialer finds an endpoint (dialer.ts), then this copies bytes
 * both ways, through an H2Tap while the connection may be HTTP/2 and on the plain path once it
 * is known not to be.
 *
 * Guarantees: the client is read only once an endpoint accepted (the listener pauses it on
 * accept), so nothing is buffered while dialing; a side that half-closes keeps the other
 * direction open; a slow reader pauses the other side (each socket buffers at most its high
 * water mark); the balancer's counts for this connection are released exactly once, whatever
 * way it ends; a drain ends within its grace; a throw in any of its event handlers closes this
 * connection only (see `#faulted`). Owned by its ServicePortProxy; other code reads its fields
 * and calls `drain` and `destroy`.
 *
 * Cost: the socket listeners are shared by every connection (static, finding the connection on
 * the socket), so a connection allocates no closures of its own but the upstream read callback;
 * the upstream reads into the thread's shared buffer (read-buffer.ts), not a new one per read.
 */
export class Connection implements TapOwner, DialOwner {
  readonly id = nextId++;
  readonly client: Socket;
  readonly openedAt: number;
  upstream!: Socket;
  endpoint: EndpointStats | undefined;
  /** Counted as draining in the balancer. */
  draining = false;
  protocol: Protocol = 'pending';
  /** TCP keepalive is on for both sockets (switched on for connections that last). */
  keepAlive = false;
  readonly #host: ConnectionHost;
  /** While dialing. */
  #dialer: Dialer | undefined;
  #closed = false;
  #tap: H2Tap | undefined;
  #drain: DrainState | undefined;
  #firstToEnd: 'client' | 'server' | undefined;
  #mode: Mode = Mode.SNIFF;
  #lingerTimer: NodeJS.Timeout | undefined;
  /** Bytes read from both sockets at the last sweep, and when that number last moved. */
  #seenBytes = 0;
  #activeAt: number;
  /** When the first side ended (FIN) or went away; 0 while both are open. */
  #halfClosedAt = 0;
  #closeReason: CloseReason | undefined;
  /** The server sent at least one byte (the endpoint is confirmed healthy). */
  #serverSpoke = false;
  /**
   * The upstream reads into buffers of its own (a new one per read, as Node does by default)
   * while the client's socket has bytes queued; into the shared one otherwise. A connection
   * whose client keeps its socket full would otherwise lend the shared buffer, and copy the
   * queued bytes aside, on nearly every read (see SharedReadBuffer). An upstream that goes quiet
   * in this state keeps its last own buffer (64 KiB) until its next read.
   */
  #ownReads = false;
  /** Whether the buffer the upstream reads into next is its own. */
  #readIsOwn = false;

  constructor(client: Socket, host: ConnectionHost, now: number) {
    this.client = client;
    this.#host = host;
    this.openedAt = now;
    this.#activeAt = now;
    (client as Tagged)[CONN] = this;
    client.on('error', Connection.#clientError);
    client.on('close', Connection.#clientCloseWhileDialing);
    const dialer = new Dialer(this, host, {
      buffer: () => this.#nextReadBuffer(),
      callback: (n, buf) => this.#serverRead(n, buf as Buffer),
    });
    this.#dialer = dialer;
    dialer.next();
  }

  /** Bytes client→server and server→client so far. */
  get bytesClientToServer(): number {
    return this.upstream?.bytesWritten ?? 0;
  }
  get bytesServerToClient(): number {
    return this.client.bytesWritten;
  }

  /**
   * Switches TCP keepalive on for both sockets, so a peer that vanished is noticed. Done for
   * connections that last (a sweep of the Proxier), not at accept: it costs four setsockopt(2)
   * calls per socket, a large share of a short connection's cost.
   */
  enableKeepAlive(initialDelayMs: number): void {
    if (this.keepAlive || this.upstream === undefined) return;
    this.keepAlive = true;
    this.client.setKeepAlive(true, initialDelayMs);
    this.upstream.setKeepAlive(true, initialDelayMs);
  }

  /** Why the connection closed (set once it has). */
  get closeReason(): CloseReason | undefined {
    return this.#closed ? this.#closeReason : undefined;
  }

  /** Closes both sides at once (FIN, or RST if unread data is pending). Idempotent. */
  destroy(reason: CloseReason = CloseReason.DESTROYED): void {
    this.#closeReason ??= reason;
    this.client.destroy();
    this.upstream?.destroy();
  }

  /**
   * One step of the timeout sweep (about once a second, never per chunk): notices activity by
   * comparing the bytes read from both sockets with the last sweep, closes a connection that
   * stayed half-closed or idle too long, and says when an idle h2c connection should be drained
   * instead (the caller starts the drain, which bounds it by its grace).
   */
  sweep(now: number, t: ConnectionTimeouts): SweepVerdict {
    const up = this.upstream;
    if (this.#closed || up === undefined) return undefined;
    const seen = this.client.bytesRead + up.bytesRead;
    if (seen !== this.#seenBytes) {
      this.#seenBytes = seen;
      this.#activeAt = now;
    } else if (now - this.#activeAt >= PROBE_AFTER_MS) {
      probe(this.client);
      probe(up);
    }
    if (
      t.halfClosedMs > 0 &&
      this.#halfClosedAt > 0 &&
      now - this.#halfClosedAt >= t.halfClosedMs
    ) {
      this.destroy(CloseReason.HALF_CLOSED_TIMEOUT);
      return undefined;
    }
    if (t.idleMs > 0 && now - this.#activeAt >= t.idleMs) {
      // An h2c connection is drained with GOAWAY, not cut; one already draining is bounded by
      // its grace. A client that never sent a byte is still `pending`: closed like opaque.
      if (this.protocol === 'h2c') return this.#drain === undefined ? 'drain-idle' : undefined;
      this.destroy(CloseReason.IDLE_TIMEOUT);
    }
    return undefined;
  }

  #noteHalfClosed(): void {
    if (this.#halfClosedAt === 0) this.#halfClosedAt = this.#host.now();
  }

  /**
   * Starts draining: h2c connections get GOAWAY and close once their streams are done; others
   * (opaque, or still undetected) are closed at the grace deadline unless they end before.
   * Every drain is closed by `graceMs` at the latest. Returns false if already draining or closed.
   */
  drain(reason: string, graceMs: number): boolean {
    if (this.#closed || this.#drain !== undefined || this.endpoint === undefined) return false;
    const s = this.#tap?.session;
    this.#drain = {
      reason,
      startedAt: this.#host.now(),
      timer: setTimeout(forceClose, graceMs, this),
      outcome: undefined,
      streamsNormalAtStart: s?.streamsEndedNormally ?? 0,
      streamsResetAtStart: s?.streamsEndedByReset ?? 0,
    };
    this.#drain.timer.unref();
    this.#markDraining();
    if (this.#tap !== undefined && !this.#tap.session.serverGoawaySeen)
      this.#tap.startDrain(reason);
    return true;
  }

  #markDraining(): void {
    if (this.draining || this.endpoint === undefined) return;
    this.draining = true;
    this.#host.balancer.startDraining(this.endpoint);
  }

  /** The grace deadline of a drain passed: close now. */
  forceClose(): void {
    if (this.#drain !== undefined) this.#drain.outcome ??= DrainOutcome.FORCED;
    this.destroy(CloseReason.DRAINED);
  }

  // ---- TapOwner ----

  streamsChanged(delta: number): void {
    if (this.endpoint !== undefined) this.endpoint.addStreams(delta);
  }

  protocolKnown(protocol: 'h2c' | 'opaque'): void {
    const tap = this.#tap;
    this.protocol = protocol;
    let desync: string | undefined;
    if (protocol === 'opaque') {
      if (tap !== undefined) {
        if (tap.session.wasH2c) desync = tap.session.opaqueReason ?? 'unknown';
        // Counters freeze once opaque: give the endpoint its streams back now.
        this.streamsChanged(-tap.reportedStreams);
        tap.dispose();
        this.#tap = undefined;
      }
      if (this.#mode !== Mode.CLOSING) this.#mode = Mode.PLAIN;
    }
    this.#host.protocolKnown(this, protocol, desync);
  }

  serverGoaway(): void {
    this.#host.serverGoaway(this);
  }

  drainDone(): void {
    if (this.#mode === Mode.CLOSING || this.#drain === undefined) return;
    this.#drain.outcome ??=
      this.#firstToEnd === 'client' ? DrainOutcome.CLIENT_CLOSED : DrainOutcome.GRACEFUL;
    this.#closeGracefully();
  }

  /**
   * End both sides with FIN, then keep reading and discarding for a moment before destroying:
   * a reset right away could throw away trailers the client has not read yet.
   */
  #closeGracefully(): void {
    this.#mode = Mode.CLOSING;
    this.#closeReason ??= CloseReason.DRAINED;
    const { client, upstream } = this;
    client.resume();
    upstream.resume();
    upstream.end();
    client.end();
    const linger = this.#host.h2?.lingerMs ?? 1000;
    this.#lingerTimer = setTimeout(destroyDrained, linger, this);
    this.#lingerTimer.unref();
  }

  // ---- DialOwner ----

  dialed(ep: EndpointStats, upstream: Socket): void {
    const client = this.client;
    this.#dialer = undefined;
    client.removeListener('close', Connection.#clientCloseWhileDialing);
    this.endpoint = ep;
    this.upstream = upstream;
    (upstream as Tagged)[CONN] = this;
    this.#host.balancer.connected(ep);
    upstream.on('error', Connection.#upstreamError);
    upstream.on('drain', Connection.#upstreamDrain);
    upstream.on('end', Connection.#upstreamEnd);
    upstream.on('close', Connection.#close);
    client.on('data', Connection.#clientData);
    client.on('drain', Connection.#clientDrain);
    client.on('end', Connection.#clientEnd);
    client.on('close', Connection.#close);
    // Sniff first (when HTTP/2 tracking is on): most non-HTTP/2 traffic shows itself by its
    // first client byte.
    if (this.#host.h2 === undefined) {
      this.protocol = 'opaque';
      this.#mode = Mode.PLAIN;
    }
    this.#host.established(this);
    // The client may have been reset while the dial was finishing; its 'close' is still to
    // come, and the upstream's follows the destroy, so #onClose runs once both are gone.
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    client.resume();
  }

  dialFailed(reason: ConnectFailureReason): void {
    this.#closed = true;
    this.#dialer = undefined;
    this.client.removeListener('close', Connection.#clientCloseWhileDialing);
    // A reset tells the client at once that nobody is there, as a refused connect would.
    resetSocket(this.client);
    this.#host.turnedAway(this, reason);
  }

  dialFaulted(err: unknown): void {
    this.#faulted('dial', err);
  }

  // ---- fault containment ----

  /**
   * A handler threw (a bug, or a fault a test injects through `faultHook`): this connection is
   * closed and reported, and every other connection and listener goes on. Without it a throw
   * in a socket event handler would reach `uncaughtException` and stop the node's traffic.
   */
  #faulted(point: FaultPoint, err: unknown): void {
    try {
      this.#host.faulted?.(this, point, err);
    } catch {
      // Reporting must not undo the containment.
    }
    this.#dialer?.cancel();
    this.#resetBoth();
    if (point === 'close' && !this.#closed && this.endpoint !== undefined) {
      // The close bookkeeping itself threw: finish the part that keeps the Service port sound
      // (the endpoint's count and the set of open connections).
      this.#closed = true;
      this.#host.balancer.closed(this.endpoint, this.draining);
      this.#host.closed(this);
    }
  }

  // The socket listeners, one function each for every connection; `this` is the socket. Each
  // runs the test seam and contains a throw (see #faulted).

  static #clientData(this: Socket, chunk: Buffer): void {
    const c = connOf(this);
    try {
      c.#host.faultHook?.(c, 'client-data');
      c.#onClientData(chunk);
    } catch (err) {
      c.#faulted('client-data', err);
    }
  }

  static #clientDrain(this: Socket): void {
    const c = connOf(this);
    try {
      c.#host.faultHook?.(c, 'drain');
      c.upstream.resume();
    } catch (err) {
      c.#faulted('drain', err);
    }
  }

  static #upstreamDrain(this: Socket): void {
    const c = connOf(this);
    try {
      c.#host.faultHook?.(c, 'drain');
      c.client.resume();
    } catch (err) {
      c.#faulted('drain', err);
    }
  }

  static #clientEnd(this: Socket): void {
    const c = connOf(this);
    try {
      c.#host.faultHook?.(c, 'end');
      c.#onClientEnd();
    } catch (err) {
      c.#faulted('end', err);
    }
  }

  static #upstreamEnd(this: Socket): void {
    const c = connOf(this);
    try {
      c.#host.faultHook?.(c, 'end');
      c.#onUpstreamEnd();
    } catch (err) {
      c.#faulted('end', err);
    }
  }

  static #upstreamError(this: Socket): void {
    const c = connOf(this);
    try {
      c.#host.faultHook?.(c, 'error');
      c.#onUpstreamError();
    } catch (err) {
      c.#faulted('error', err);
    }
  }

  static #close(this: Socket): void {
    const c = connOf(this);
    try {
      c.#host.faultHook?.(c, 'close');
      c.#onClose();
    } catch (err) {
      c.#faulted('close', err);
    }
  }

  static #clientError(this: Socket): void {
    const c = connOf(this);
    c.#closeReason ??= CloseReason.CLIENT_RESET;
    c.#resetBoth();
  }

  static #clientCloseWhileDialing(this: Socket): void {
    // The client left before any endpoint answered: abandon the dial and release its count.
    const c = connOf(this);
    c.#closed = true;
    c.#dialer?.abandon();
    c.#dialer = undefined;
  }

  // ---- byte copy: one handler per direction; the plain case is the first test ----

  #onClientData(chunk: Buffer): void {
    if (this.#mode === Mode.PLAIN) {
      if (!this.upstream.write(chunk)) this.client.pause();
      return;
    }
    if (this.#mode === Mode.TAP) return (this.#tap as H2Tap).onClientData(chunk);
    if (this.#mode === Mode.CLOSING) return;
    // Sniffing. The HTTP/2 client preface starts with `P` (RFC 9113 §3.4): anything else (TLS,
    // HTTP/1, other protocols) goes to the plain copy at once, without a tap.
    if (chunk[0] === 0x50) return this.#startTap().onClientData(chunk);
    this.protocolKnown('opaque');
    this.#onClientData(chunk);
  }

  /** For the upstream's `onread.buffer`: where its next read goes (see `#ownReads`). */
  #nextReadBuffer(): Buffer {
    this.#readIsOwn = this.#ownReads;
    return this.#ownReads ? Buffer.allocUnsafe(READ_BUFFER_SIZE) : upstreamReads.next();
  }

  /**
   * The upstream's read callback (`onread`): `n` bytes are in `buf`, the thread's shared read
   * buffer (which must hold no byte of this chunk once this returns, see SharedReadBuffer) or
   * one of its own. Returns true always: backpressure pauses the socket itself, so that
   * `isPaused` tells.
   */
  #serverRead(n: number, buf: Buffer): boolean {
    try {
      this.#host.faultHook?.(this, 'server-data');
      const client = this.client;
      if (!this.#serverSpoke) this.#onFirstServerByte();
      if (this.#readIsOwn) {
        this.#onUpstreamData(buf.subarray(0, n));
        // The client caught up: back to the shared buffer.
        if (client.writableLength === 0) this.#ownReads = false;
        return true;
      }
      const chunk = upstreamReads.take(n, buf);
      const queued = client.writableLength;
      this.#onUpstreamData(chunk);
      if (upstreamReads.settle(chunk, buf, client, queued)) this.#ownReads = true;
    } catch (err) {
      // Both sockets are reset: a write still queued on the client is dropped with it.
      this.#faulted('server-data', err);
    }
    return true;
  }

  #onUpstreamData(chunk: Buffer): void {
    if (this.#mode === Mode.PLAIN) {
      if (!this.client.write(chunk)) this.upstream.pause();
      return;
    }
    if (this.#mode === Mode.CLOSING) return;
    // Tap, or sniffing: server bytes before any client byte (an HTTP/2 server may send its
    // SETTINGS first) start the tap.
    (this.#tap ?? this.#startTap()).onServerData(chunk);
  }

  #startTap(): H2Tap {
    const h2 = this.#host.h2 as H2Settings;
    const tap = new H2Tap(this, {
      pingPayload: h2.pingPayload,
      pingAckWaitMaxMs: h2.pingAckWaitMaxMs,
      now: this.#host.now,
    });
    this.#tap = tap;
    this.#mode = Mode.TAP;
    // A drain asked for before the first byte starts now that there is a tap to carry it.
    if (this.#drain !== undefined) tap.startDrain(this.#drain.reason);
    return tap;
  }

  #onFirstServerByte(): void {
    this.#serverSpoke = true;
    if (this.endpoint !== undefined) this.#host.balancer.confirmed(this.endpoint);
  }

  // Half-close: a FIN from one side becomes a FIN to the other; the other direction stays open.
  #onClientEnd(): void {
    this.#firstToEnd ??= 'client';
    this.#noteHalfClosed();
    if (this.#mode === Mode.CLOSING) return;
    const held = this.#tap?.clientEnded();
    if (held !== undefined) this.upstream.write(held);
    finish(this.upstream);
  }

  #onUpstreamEnd(): void {
    this.#firstToEnd ??= 'server';
    this.#noteHalfClosed();
    if (this.#mode !== Mode.CLOSING) finish(this.client);
  }

  #onUpstreamError(): void {
    // A reset before the server sent anything, while the client is still there, is the mark of
    // a backend that accepts and then fails (outlier ejection, like a refused dial).
    if (this.#closeReason === undefined && !this.#serverSpoke && !this.client.destroyed)
      this.#host.earlyReset?.(this);
    this.#closeReason ??= CloseReason.SERVER_RESET;
    this.#resetBoth();
  }

  /** A reset or write error on one side: reset the other too, so neither waits for ever. */
  #resetBoth(): void {
    resetSocket(this.client);
    if (this.upstream !== undefined) resetSocket(this.upstream);
  }

  #onClose(): void {
    if (this.#closed) return;
    const up = this.upstream;
    // Wait for both sockets: a side that closed cleanly leaves the other flushing its last bytes.
    if (!(this.client.destroyed && up.destroyed)) {
      this.#firstToEnd ??= this.client.destroyed ? 'client' : 'server';
      // One side is gone: the other may be paused by backpressure from it and would then never
      // see its own FIN or reset. Read it again (what it sends fails to write and resets it),
      // and let the half-closed timeout bound a peer that neither sends nor closes.
      this.#noteHalfClosed();
      (this.client.destroyed ? up : this.client).resume();
      return;
    }
    this.#closed = true;
    this.#closeReason ??= CloseReason.NORMAL;
    clearTimeout(this.#lingerTimer);
    const ep = this.endpoint as EndpointStats;
    const tap = this.#tap;
    if (tap !== undefined) {
      this.streamsChanged(-tap.reportedStreams);
      tap.dispose();
    }
    const drain = this.#drain;
    if (drain !== undefined) {
      clearTimeout(drain.timer);
      const s = tap?.session;
      this.#host.drainEnded(this, {
        reason: drain.reason,
        outcome:
          drain.outcome ??
          (this.#firstToEnd === 'server' ? DrainOutcome.SERVER_CLOSED : DrainOutcome.CLIENT_CLOSED),
        seconds: (this.#host.now() - drain.startedAt) / 1000,
        streamsNormal: (s?.streamsEndedNormally ?? 0) - drain.streamsNormalAtStart,
        streamsReset: (s?.streamsEndedByReset ?? 0) - drain.streamsResetAtStart,
      });
    }
    ep.bytesClientToServer += up.bytesWritten;
    ep.bytesServerToClient += this.client.bytesWritten;
    if (this.#closeReason === CloseReason.NORMAL) this.#host.balancer.confirmed(ep);
    this.#host.balancer.closed(ep, this.draining);
    this.#host.closed(this);
  }
}

function forceClose(conn: Connection): void {
  conn.forceClose();
}

function destroyDrained(conn: Connection): void {
  conn.destroy(CloseReason.DRAINED);
}
