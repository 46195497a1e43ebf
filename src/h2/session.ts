/**
 * Frame tracking for one proxied connection that may be HTTP/2 over cleartext (h2c): detects
 * the protocol, follows both directions frame header by frame header, says where a GOAWAY may
 * be written into the server-to-client stream, and removes the client's answer to our own PING.
 * See docs/design.md, "HTTP/2 drain protocol".
 */
import { Buffer } from 'node:buffer';
import { CLIENT_PREFACE, Flag, FrameType, PING_PAYLOAD_LENGTH } from './frame.js';
import { OpaqueReason } from './frame-rules.js';
import { FrameTracker } from './frame-tracker.js';
import { CLIENT_HALF_CLOSED, SERVER_HALF_CLOSED } from './stream-table.js';
import type {
  H2Mode,
  H2SessionOptions,
  H2SessionSnapshot,
  H2Side,
  InjectionPoint,
} from './types.js';

export type {
  H2Mode,
  H2SessionOptions,
  H2SessionSnapshot,
  H2Side,
  InjectionPoint,
} from './types.js';
export { OpaqueReason } from './frame-rules.js';

const DEFAULT_MAX_TRACKED_STREAMS = 10_000;
const PREFACE_LENGTH = CLIENT_PREFACE.length;
/** A whole PING frame: the most the client direction ever holds back. */
const MAX_HELD = 9 + PING_PAYLOAD_LENGTH;

/**
 * Tracks one connection in both directions. The proxy passes every client chunk through
 * `fromClient` and forwards what it returns, and every server chunk through `fromServer`.
 *
 * Guarantees:
 * - Same state however either direction is split into chunks; payloads are never copied (only
 *   a frame header spanning chunks, and after `injected()` at most one 17-octet PING frame).
 * - Never throws on input bytes: anything that cannot be HTTP/2 makes the session opaque. Throws
 *   only when the caller breaks the contract (bad offset, `injected()` at a wrong point).
 * - Once opaque, every method returns at once and does no work, except that the next
 *   `fromClient` hands back client octets still held, ahead of its chunk. Counters keep the
 *   values they had: do not drive a drain from them.
 * - `fromClient` returns the chunk it was given, the very same object, unless bytes are held back
 *   or removed; that can only happen after `injected()`.
 *
 * One session belongs to one connection and is driven by that connection's two data handlers.
 */
export class H2Session {
  readonly #ourPing: Buffer;
  readonly #tracker: FrameTracker;

  #mode: H2Mode = 'detecting';
  #opaqueReason: OpaqueReason | undefined;
  #opaqueSide: H2Side | undefined;
  #wasH2c = false;
  /** Client preface octets matched so far (RFC 9113 §3.4). */
  #prefaceMatched = 0;
  #ourPingAcksRemoved = 0;
  #injections = 0;
  #clientBytes = 0;
  #serverBytes = 0;
  /** The server reader sits right after the last octet of a PING ACK frame. */
  #serverAfterPingAck = false;

  // Client-direction hold-back, used only after injected(): the current client frame might be
  // the ACK of our PING until its header (and, for a PING ACK, its payload) has been seen.
  /** Allocated on first use: most connections never hold anything. */
  #held: Buffer | undefined;
  #heldLength = 0;
  #undecided = false;
  #pingMismatch = false;

  /** Throws RangeError unless `pingPayload` is 8 octets and `maxTrackedStreams` a positive integer. */
  constructor(opts: H2SessionOptions) {
    if (opts.pingPayload.length !== PING_PAYLOAD_LENGTH) {
      throw new RangeError(`pingPayload must be ${PING_PAYLOAD_LENGTH} octets`);
    }
    const max = opts.maxTrackedStreams ?? DEFAULT_MAX_TRACKED_STREAMS;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError('maxTrackedStreams must be a positive integer');
    }
    this.#ourPing = Buffer.from(opts.pingPayload);
    this.#tracker = new FrameTracker(max);
  }

  /** Current mode; see {@link H2Mode}. */
  get mode(): H2Mode {
    return this.#mode;
  }
  /** Why the session became opaque, or undefined while it is not. */
  get opaqueReason(): OpaqueReason | undefined {
    return this.#opaqueReason;
  }
  /** Which direction's bytes made the session opaque, or undefined while it is not. */
  get opaqueSide(): H2Side | undefined {
    return this.#opaqueSide;
  }
  /** True if the session went opaque after having been h2c: sync was lost mid-connection. */
  get wasH2c(): boolean {
    return this.#wasH2c;
  }
  /** Streams open now: from their first frame header until the last octet that closes them. */
  get openStreams(): number {
    return this.#tracker.streams.size;
  }
  /** Highest stream id a client HEADERS has opened; 0 before any. */
  get highestClientStreamId(): number {
    return this.#tracker.highestClientStreamId;
  }
  /** The server has sent a GOAWAY header: no injection point will ever exist again. */
  get serverGoawaySeen(): boolean {
    return this.#tracker.serverGoawaySeen;
  }
  /** Non-ACK PING frames from the client (keepalives), counted at their header. */
  get clientPingsSeen(): number {
    return this.#tracker.clientPingsSeen;
  }
  /** The client's ACK of our PING has arrived and was removed from the client-to-server bytes. */
  get ourPingAcked(): boolean {
    return this.#ourPingAcksRemoved > 0;
  }
  /** Streams closed by END_STREAM from both sides. */
  get streamsEndedNormally(): number {
    return this.#tracker.streams.endedNormally;
  }
  /** Streams closed by RST_STREAM from either side. */
  get streamsEndedByReset(): number {
    return this.#tracker.streams.endedByReset;
  }
  /** Client octets held back, waiting to learn whether they are our PING ACK (0..17). */
  get heldBytes(): number {
    return this.#heldLength;
  }

  /**
   * Feeds a client-to-server chunk; returns what to forward to the server, in order: `chunk`
   * itself when nothing is held or removed, else an array of buffers (possibly empty). Bytes held
   * back come out of a later call (or `releaseHeld()`), never lost, never reordered.
   */
  fromClient(chunk: Buffer): Buffer | readonly Buffer[] {
    if (this.#mode === 'opaque') return this.#heldLength === 0 ? chunk : this.#withHeld(chunk);
    const end = chunk.length;
    this.#clientBytes += end;
    let pos = 0;
    if (this.#prefaceMatched < PREFACE_LENGTH) {
      pos = this.#matchPreface(chunk);
      if (pos === end || this.mode === 'opaque') return chunk;
    }
    const r = this.#tracker.client;
    const hold = this.#injections > 0;
    let out: Buffer[] | undefined;
    // chunk[emitted..] is neither forwarded yet nor dropped. The undecided frame's octets in this
    // chunk start at `frameStart` (0 when it began in an earlier chunk and its start is held).
    let emitted = 0;
    let frameStart = 0;
    while (pos < end) {
      if (!r.inPayload) {
        if (r.headerFill === 0 && hold) {
          frameStart = pos;
          this.#undecided = true;
          this.#pingMismatch = false;
        }
        pos = r.readHeader(chunk, pos, end);
        if (!r.inPayload) break;
        const reason = this.#tracker.onHeader(r, true);
        if (reason !== undefined) {
          this.#toOpaque(reason, 'client');
          if (this.#undecided) out = this.#release(out);
          break;
        }
        // §6.7: only a PING with ACK can be the answer to our PING; anything else goes on now.
        if (this.#undecided && !(r.type === FrameType.PING && (r.flags & Flag.ACK) !== 0)) {
          out = this.#release(out);
        }
      }
      if (this.#undecided) {
        // Compare the PING ACK payload with ours as it passes; nothing is copied here.
        const stop = Math.min(end, pos + r.remaining);
        let k = PING_PAYLOAD_LENGTH - r.remaining;
        r.remaining -= stop - pos;
        for (; pos < stop; pos++, k++) {
          if (chunk[pos] !== this.#ourPing[k]) this.#pingMismatch = true;
        }
      } else {
        pos = r.skip(pos, end);
      }
      if (r.remaining > 0) break;
      r.endFrame();
      this.#tracker.onFrameEnd(r, CLIENT_HALF_CLOSED);
      if (this.#undecided) {
        if (this.#pingMismatch) {
          out = this.#release(out);
        } else {
          // Our PING's ACK (§6.7): the server never sent that PING, so it must not see the ACK.
          out ??= [];
          if (frameStart > emitted) out.push(chunk.subarray(emitted, frameStart));
          emitted = pos;
          this.#heldLength = 0;
          this.#undecided = false;
          this.#ourPingAcksRemoved++;
        }
      }
    }
    if (this.#undecided) {
      // The chunk ended before we could decide: hold this frame's octets (at most 17 in all).
      out ??= [];
      if (frameStart > emitted) out.push(chunk.subarray(emitted, frameStart));
      chunk.copy((this.#held ??= Buffer.alloc(MAX_HELD)), this.#heldLength, frameStart, end);
      this.#heldLength += end - frameStart;
      emitted = end;
    }
    if (out === undefined) return chunk;
    if (emitted < end) out.push(chunk.subarray(emitted, end));
    return out;
  }

  /**
   * Feeds a server-to-client chunk from `chunk[offset]` on and returns the offset reached; the
   * caller forwards `chunk.subarray(offset, returned)`. With `none` it returns `chunk.length`.
   * With `boundary` it stops at the first point where `canInjectNow()` holds, which may be
   * `offset` itself. With `ping-ack` it stops right after a server PING ACK frame if
   * `canInjectNow('ping-ack')` holds there. A stop at `chunk.length` looks the same as no stop:
   * ask `canInjectNow(point)` after the call. Calling again with `boundary` at a stop returns the
   * same offset: to move on (after injecting, or instead of it) call with `none`, or with
   * `ping-ack`. Throws RangeError on a bad offset.
   */
  fromServer(chunk: Buffer, offset: number, stopAt: InjectionPoint): number {
    const end = chunk.length;
    if (this.#mode === 'opaque') return end;
    if (!Number.isInteger(offset) || offset < 0 || offset > end) {
      throw new RangeError(`offset ${offset} is outside the chunk (length ${end})`);
    }
    const r = this.#tracker.server;
    const atBoundary = stopAt === 'boundary';
    const atPingAck = stopAt === 'ping-ack';
    let pos = offset;
    while (true) {
      if (!r.inPayload) {
        if (atBoundary && r.headerFill === 0 && this.canInjectNow()) break;
        if (pos === end) break;
        pos = r.readHeader(chunk, pos, end);
        this.#serverAfterPingAck = false;
        if (!r.inPayload) break;
        const reason = this.#tracker.onHeader(r, false);
        if (reason !== undefined) {
          this.#toOpaque(reason, 'server');
          pos = end;
          break;
        }
        this.#updateMode();
      }
      pos = r.skip(pos, end);
      if (r.remaining > 0) break;
      r.endFrame();
      this.#tracker.onFrameEnd(r, SERVER_HALF_CLOSED);
      if (r.type === FrameType.PING && (r.flags & Flag.ACK) !== 0) {
        this.#serverAfterPingAck = true;
        if (atPingAck && this.canInjectNow()) break;
      }
    }
    this.#serverBytes += pos - offset;
    return pos;
  }

  /**
   * True when GOAWAY + PING may be written to the client now, between server chunks: the session
   * is h2c, the server reader is at a frame boundary outside any header block (RFC 9113 §4.3:
   * a header block must be contiguous), and the server has not sent its own GOAWAY (a second
   * GOAWAY with a higher last-stream-id makes grpc-go kill its streams). With `ping-ack`, the
   * boundary must also directly follow a server PING ACK (grpc/grpc-node#3068).
   */
  canInjectNow(point: 'boundary' | 'ping-ack' = 'boundary'): boolean {
    const r = this.#tracker.server;
    if (this.#mode !== 'h2c' || this.#tracker.serverGoawaySeen) return false;
    if (r.inPayload || r.headerFill !== 0 || r.blockStreamId !== 0) return false;
    return point === 'boundary' || this.#serverAfterPingAck;
  }

  /** GOAWAY + PING injections recorded (`injected()`); the one record of that fact. */
  get injections(): number {
    return this.#injections;
  }

  /**
   * Records that GOAWAY + PING were just written to the client. From now on the client's ACK of
   * our PING is removed from the client-to-server bytes. No-op once opaque; throws Error if
   * called where `canInjectNow()` is false, because then the bytes written already broke the
   * stream.
   */
  injected(): void {
    if (this.#mode === 'opaque') return;
    if (!this.canInjectNow()) {
      throw new Error('injected() called where no injection point exists (see canInjectNow())');
    }
    this.#injections++;
  }

  /**
   * Hands back the client octets held back (an incomplete frame that might have been our PING
   * ACK), or undefined if none; the session forgets them. Call when the client side ends or the
   * proxy stops calling `fromClient`, so no byte is ever lost.
   */
  releaseHeld(): Buffer | undefined {
    if (this.#heldLength === 0) return undefined;
    const held = Buffer.from((this.#held as Buffer).subarray(0, this.#heldLength));
    this.#heldLength = 0;
    this.#undecided = false;
    return held;
  }

  /** A plain, unaliased copy of all the state above. */
  snapshot(): H2SessionSnapshot {
    return {
      mode: this.#mode,
      opaqueReason: this.#opaqueReason,
      opaqueSide: this.#opaqueSide,
      wasH2c: this.#wasH2c,
      openStreams: this.#tracker.streams.size,
      highestClientStreamId: this.#tracker.highestClientStreamId,
      serverGoawaySeen: this.#tracker.serverGoawaySeen,
      clientPingsSeen: this.#tracker.clientPingsSeen,
      ourPingAcked: this.ourPingAcked,
      ourPingAcksRemoved: this.#ourPingAcksRemoved,
      streamsEndedNormally: this.#tracker.streams.endedNormally,
      streamsEndedByReset: this.#tracker.streams.endedByReset,
      injections: this.#injections,
      clientBytes: this.#clientBytes,
      serverBytes: this.#serverBytes,
      clientFrames: this.#tracker.client.frames,
      serverFrames: this.#tracker.server.frames,
      clientHeaderBlockOpen: this.#tracker.client.blockStreamId !== 0,
      serverHeaderBlockOpen: this.#tracker.server.blockStreamId !== 0,
      heldBytes: this.#heldLength,
      canInjectNow: this.canInjectNow(),
    };
  }

  /** Matches preface octets at the start of `chunk`; returns how many it consumed. */
  #matchPreface(chunk: Buffer): number {
    const take = Math.min(chunk.length, PREFACE_LENGTH - this.#prefaceMatched);
    for (let i = 0; i < take; i++) {
      // §3.4: any difference, at whatever octet, means this is not prior-knowledge HTTP/2.
      if (chunk[i] !== CLIENT_PREFACE[this.#prefaceMatched + i]) {
        this.#toOpaque(OpaqueReason.NOT_H2_PREFACE, 'client');
        return i;
      }
    }
    this.#prefaceMatched += take;
    this.#updateMode();
    return take;
  }

  #updateMode(): void {
    if (
      this.#mode === 'detecting' &&
      this.#prefaceMatched === PREFACE_LENGTH &&
      this.#tracker.serverSettingsSeen
    ) {
      this.#mode = 'h2c';
    }
  }

  /** Point of no return: from here on nothing is tracked and nothing is ever written. */
  #toOpaque(reason: OpaqueReason, side: H2Side): void {
    if (this.#mode === 'opaque') return;
    this.#wasH2c = this.#mode === 'h2c';
    this.#mode = 'opaque';
    this.#opaqueReason = reason;
    this.#opaqueSide = side;
  }

  /** Releases the undecided frame's held octets ahead of anything else from this chunk. */
  #release(out: Buffer[] | undefined): Buffer[] | undefined {
    this.#undecided = false;
    if (this.#heldLength === 0) return out;
    const list = out ?? [];
    list.push(Buffer.from((this.#held as Buffer).subarray(0, this.#heldLength)));
    this.#heldLength = 0;
    return list;
  }

  #withHeld(chunk: Buffer): readonly Buffer[] {
    const held = this.releaseHeld();
    return held === undefined ? [chunk] : [held, chunk];
  }
}
