import type { Socket } from 'node:net';
import { encodeGoaway, encodePing, ErrorCode, MAX_STREAM_ID } from '../h2/frame.js';
import { H2Session, type InjectionPoint } from '../h2/session.js';

/** What the tap needs from its connection. */
export interface TapOwner {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Open streams changed by `delta` (for the endpoint's stream count). */
  streamsChanged(delta: number): void;
  /** Detection finished. On `opaque` the owner swaps the tap's handlers for the plain copy. */
  protocolKnown(protocol: 'h2c' | 'opaque'): void;
  /** The server sent its own GOAWAY: no injection is possible any more. */
  serverGoaway(): void;
  /** The drained connection can close: the client has the GOAWAY and no stream is open. */
  drainDone(): void;
}

export interface TapOptions {
  readonly pingPayload: Uint8Array;
  /** Longest wait for a server PING ACK to inject after, when the client sends keepalives. */
  readonly pingAckWaitMaxMs: number;
  readonly now: () => number;
}

/**
 * The HTTP/2 side of one connection (docs/design.md, "HTTP/2 drain protocol"): feeds both directions
 * to an H2Session, forwards what it says to forward, and carries out the drain sequence:
 *
 * 1. `startDrain`: wait for an injection point in the server→client stream (right after the
 *    server's answer to a client keepalive PING when the client sends them: grpc/grpc-node#3068;
 *    else any frame boundary outside a header block), never after the server's own GOAWAY;
 * 2. write GOAWAY(2^31-1, NO_ERROR, reason) and PING(our payload) to the client;
 * 3. once the client's PING ACK arrived (it is removed from the client→server stream) or the
 *    client half-closed, and no stream is open, tell the owner to close.
 *
 * The owner bounds the whole sequence with its grace timer. Timers here are cleared by
 * `dispose`. Guarantees: bytes are forwarded in order and never altered except for the two
 * injected frames and the removed ACK; nothing is injected inside a frame or header block.
 */
export class H2Tap {
  readonly session: H2Session;
  readonly #owner: TapOwner;
  readonly #opts: TapOptions;
  #reported: 'h2c' | 'opaque' | undefined;
  #streams = 0;
  #goawaySeen = false;
  /** Set while a drain waits for its injection point. */
  #want: InjectionPoint | undefined;
  #debug = '';
  #clientEnded = false;
  #pingTimer: NodeJS.Timeout | undefined;
  /** When the client's last two keepalive PINGs were seen, to estimate their interval. */
  #pings = 0;
  #lastPingAt = 0;
  #pingInterval = 0;

  constructor(owner: TapOwner, opts: TapOptions) {
    this.#owner = owner;
    this.#opts = opts;
    this.session = new H2Session({ pingPayload: opts.pingPayload });
  }

  onClientData = (chunk: Buffer): void => {
    const s = this.session;
    const out = s.fromClient(chunk);
    const up = this.#owner.upstream;
    let ok = true;
    if (out === chunk) ok = up.write(chunk);
    else for (const b of out as readonly Buffer[]) ok = up.write(b) && ok;
    if (!ok) this.#owner.client.pause();
    if (s.clientPingsSeen !== this.#pings) this.#notePing();
    this.#after();
  };

  onServerData = (chunk: Buffer): void => {
    const s = this.session;
    const client = this.#owner.client;
    let ok = true;
    if (this.#want === undefined) {
      s.fromServer(chunk, 0, 'none');
      ok = client.write(chunk);
    } else {
      let off = 0;
      for (;;) {
        const stop: InjectionPoint = this.#want ?? 'none';
        const p = s.fromServer(chunk, off, stop);
        if (p > off)
          ok = client.write(off === 0 && p === chunk.length ? chunk : chunk.subarray(off, p)) && ok;
        off = p;
        if (stop !== 'none' && s.canInjectNow(stop)) {
          this.#inject();
          continue;
        }
        if (off >= chunk.length) break;
        // A stop the session cannot inject at (it went opaque): pass the rest through.
        this.#want = undefined;
      }
    }
    if (!ok) this.#owner.upstream.pause();
    this.#after();
  };

  /** The client half-closed. Returns held client bytes to forward before the FIN, if any. */
  clientEnded(): Buffer | undefined {
    this.#clientEnded = true;
    const held = this.session.releaseHeld();
    this.#after();
    return held;
  }

  /** Starts the drain sequence with `reason` as GOAWAY debug data. */
  startDrain(reason: string): void {
    if (this.#want !== undefined || this.#injectedOnce) return;
    this.#debug = `kube-lc-proxy: ${reason}`;
    const s = this.session;
    if (s.clientPingsSeen > 0 && this.#opts.pingAckWaitMaxMs > 0) {
      this.#want = 'ping-ack';
      // Past about two keepalive intervals, inject at any boundary rather than wait for ever.
      const wait = Math.min(
        this.#opts.pingAckWaitMaxMs,
        this.#pingInterval > 0 ? 2 * this.#pingInterval + 100 : this.#opts.pingAckWaitMaxMs,
      );
      this.#pingTimer = setTimeout(() => this.#fallBackToBoundary(), wait);
      this.#pingTimer.unref();
    } else {
      this.#want = 'boundary';
      this.#tryInjectNow();
    }
  }

  /** GOAWAY + PING went out (the session records it; nothing here keeps a copy). */
  get #injectedOnce(): boolean {
    return this.session.injections > 0;
  }

  /** The number of open streams as last reported (for release at close). */
  get reportedStreams(): number {
    return this.#streams;
  }

  dispose(): void {
    clearTimeout(this.#pingTimer);
  }

  #fallBackToBoundary(): void {
    if (this.#injectedOnce || this.#want === undefined) return;
    this.#want = 'boundary';
    this.#tryInjectNow();
  }

  #tryInjectNow(): void {
    if (this.session.canInjectNow('boundary')) this.#inject();
  }

  #inject(): void {
    const client = this.#owner.client;
    this.#want = undefined;
    clearTimeout(this.#pingTimer);
    if (client.destroyed || client.writableEnded) return;
    // RFC 9113 §6.8: a GOAWAY with the highest stream id tells the client to open no new stream
    // here while every stream it has open keeps running (gRPC A9's first GOAWAY). The PING that
    // follows tells us when the client has processed it.
    // One write: one system call, and the client reads the two frames together.
    client.write(
      Buffer.concat([
        encodeGoaway(MAX_STREAM_ID, ErrorCode.NO_ERROR, this.#debug),
        encodePing(this.#opts.pingPayload),
      ]),
    );
    this.session.injected();
  }

  #notePing(): void {
    const now = this.#opts.now();
    if (this.#pings > 0) this.#pingInterval = now - this.#lastPingAt;
    this.#lastPingAt = now;
    this.#pings = this.session.clientPingsSeen;
  }

  #after(): void {
    const s = this.session;
    const streams = s.openStreams;
    if (streams !== this.#streams) {
      this.#owner.streamsChanged(streams - this.#streams);
      this.#streams = streams;
    }
    if (!this.#goawaySeen && s.serverGoawaySeen) {
      this.#goawaySeen = true;
      this.#want = undefined;
      this.#owner.serverGoaway();
    }
    const mode = s.mode;
    if (
      mode !== 'detecting' &&
      this.#reported !== mode &&
      !(this.#reported === 'h2c' && mode === 'h2c')
    ) {
      // Detection and loss of sync in one chunk (the server's SETTINGS and a bad frame read
      // together): the connection was h2c first, and is told so first, as when they arrive
      // apart; counters and the drain planner then see the same two steps either way.
      if (mode === 'opaque' && this.#reported === undefined && s.wasH2c) {
        this.#reported = 'h2c';
        this.#owner.protocolKnown('h2c');
      }
      this.#reported = mode;
      if (mode === 'opaque') clearTimeout(this.#pingTimer);
      this.#owner.protocolKnown(mode);
      if (mode === 'opaque') return;
    }
    // Detection may finish after a drain was asked for: inject as soon as it can.
    if (this.#want === 'boundary' && mode === 'h2c') this.#tryInjectNow();
    if (
      this.#injectedOnce &&
      mode === 'h2c' &&
      streams === 0 &&
      (s.ourPingAcked || this.#clientEnded)
    ) {
      this.#owner.drainDone();
    }
  }
}
