/**
 * What the frames of both directions mean for a drain: which streams are open, whether a header
 * block is open on either side, whether the server has sent GOAWAY. Works on decoded frame
 * headers only; the byte plumbing (chunks, preface, hold-back) lives in the session.
 */
import { Flag, FrameType } from './frame.js';
import { checkFrameHeader, isInitialSettings, OpaqueReason } from './frame-rules.js';
import { EndAction, FrameReader } from './frame-reader.js';
import { CLIENT_HALF_CLOSED, StreamTable } from './stream-table.js';

/**
 * Applies frame headers and frame ends of both directions to the connection's state.
 *
 * Guarantees: `onHeader` either returns the reason a header can never be valid HTTP/2 (RFC 9113
 * §3.4, §4–§6) and changes nothing the session relies on afterwards, or applies it. Stream
 * closes that RFC 9113 ties to a frame are applied only by `onFrameEnd`, after the frame's last
 * octet. Fields are read by the owning session; only this class mutates them.
 */
export class FrameTracker {
  /** Reader of the client-to-server direction. */
  readonly client = new FrameReader();
  /** Reader of the server-to-client direction. */
  readonly server = new FrameReader();
  /** Open streams and how streams ended. */
  readonly streams = new StreamTable();
  /** The client's first frame (a SETTINGS, §3.4) has been seen. */
  clientSettingsSeen = false;
  /** The server's first frame (a SETTINGS, §3.4) has been seen: the server side is HTTP/2. */
  serverSettingsSeen = false;
  /** Highest stream id a client HEADERS has opened; 0 before any. */
  highestClientStreamId = 0;
  /** The server has sent a GOAWAY header (§6.8). */
  serverGoawaySeen = false;
  /** Non-ACK PING frames from the client (keepalives). */
  clientPingsSeen = 0;

  readonly #maxTrackedStreams: number;

  constructor(maxTrackedStreams: number) {
    this.#maxTrackedStreams = maxTrackedStreams;
  }

  /**
   * Applies one complete frame header of `r` (which must be `client` or `server`); returns why
   * it cannot be valid, if so. Stream effects tied to the frame's end are left in `r.endAction`.
   */
  onHeader(r: FrameReader, fromClient: boolean): OpaqueReason | undefined {
    const { type, flags, length, streamId } = r;
    // §3.4: each side's first frame is SETTINGS (the server's decides detection).
    if (fromClient ? !this.clientSettingsSeen : !this.serverSettingsSeen) {
      if (!isInitialSettings(type, flags, length, streamId)) {
        return fromClient
          ? OpaqueReason.CLIENT_FIRST_FRAME_NOT_SETTINGS
          : OpaqueReason.SERVER_FIRST_FRAME_NOT_SETTINGS;
      }
      if (fromClient) this.clientSettingsSeen = true;
      else this.serverSettingsSeen = true;
      return undefined;
    }
    // §6.10: a header block is a contiguous run of HEADERS/PUSH_PROMISE then CONTINUATIONs on
    // the same stream; no other frame, not even an extension frame (§5.5), may interleave.
    if (r.blockStreamId !== 0) {
      if (type !== FrameType.CONTINUATION || streamId !== r.blockStreamId) {
        return OpaqueReason.CONTINUATION_EXPECTED;
      }
    } else if (type === FrameType.CONTINUATION) {
      return OpaqueReason.UNEXPECTED_CONTINUATION;
    }
    const invalid = checkFrameHeader(type, flags, length, streamId);
    if (invalid !== undefined) return invalid;
    switch (type) {
      case FrameType.DATA:
        if ((flags & Flag.END_STREAM) !== 0) atEnd(r, EndAction.HALF_CLOSE, streamId);
        return undefined;
      case FrameType.HEADERS: {
        const opened = fromClient ? this.#clientHeaders(streamId) : this.#serverHeaders(streamId);
        if (opened !== undefined) return opened;
        // §6.2: END_STREAM on HEADERS takes effect when the header block ends.
        if ((flags & Flag.END_HEADERS) === 0) {
          r.blockStreamId = streamId;
          r.blockEndStream = (flags & Flag.END_STREAM) !== 0;
        } else if ((flags & Flag.END_STREAM) !== 0) {
          atEnd(r, EndAction.HALF_CLOSE, streamId);
        }
        return undefined;
      }
      case FrameType.PUSH_PROMISE:
        // §8.4: only servers push. The promised stream opens with the server's HEADERS on it.
        if (fromClient) return OpaqueReason.CLIENT_PUSH_PROMISE;
        if ((flags & Flag.END_HEADERS) === 0) {
          r.blockStreamId = streamId;
          r.blockEndStream = false;
        }
        return undefined;
      case FrameType.CONTINUATION:
        if ((flags & Flag.END_HEADERS) !== 0) {
          r.blockStreamId = 0;
          if (r.blockEndStream) atEnd(r, EndAction.HALF_CLOSE, streamId);
          r.blockEndStream = false;
        }
        return undefined;
      case FrameType.RST_STREAM:
        atEnd(r, EndAction.RESET, streamId);
        return undefined;
      case FrameType.PING:
        if (fromClient && (flags & Flag.ACK) === 0) this.clientPingsSeen++;
        return undefined;
      case FrameType.GOAWAY:
        // Set from the header: once the server has started a GOAWAY, never inject another.
        if (!fromClient) this.serverGoawaySeen = true;
        return undefined;
      default:
        return undefined;
    }
  }

  /**
   * The last octet of `r`'s current frame has been consumed: apply what its header scheduled.
   * `half` is the sending side's bit (CLIENT_HALF_CLOSED or SERVER_HALF_CLOSED). A stream counts
   * as open until here, so its closing frame's payload is still inside it.
   */
  onFrameEnd(r: FrameReader, half: number): void {
    if (r.endAction === EndAction.HALF_CLOSE) this.streams.closeHalf(r.endStreamId, half);
    else if (r.endAction === EndAction.RESET) this.streams.reset(r.endStreamId);
    r.endAction = EndAction.NONE;
  }

  /** A client HEADERS: trailers on an open stream, or a new stream (§5.1.1). */
  #clientHeaders(streamId: number): OpaqueReason | undefined {
    if ((streamId & 1) === 0) return OpaqueReason.CLIENT_STREAM_ID_EVEN;
    if (this.streams.has(streamId)) return undefined;
    // An odd id at or below the highest is a closed stream (e.g. trailers racing a RST_STREAM,
    // §5.1); it never opens anything. Only a higher odd id opens a stream.
    if (streamId <= this.highestClientStreamId) return undefined;
    this.highestClientStreamId = streamId;
    return this.#open(streamId, 0);
  }

  /** A server HEADERS: response or trailers on a known stream, or a pushed stream (§8.4). */
  #serverHeaders(streamId: number): OpaqueReason | undefined {
    // An unknown odd id is a stream already closed (e.g. reset by the client): ignore it.
    if (this.streams.has(streamId) || (streamId & 1) !== 0) return undefined;
    // A pushed stream is reserved (remote) for the client, which never sends on it (§5.1).
    return this.#open(streamId, CLIENT_HALF_CLOSED);
  }

  #open(streamId: number, halves: number): OpaqueReason | undefined {
    this.streams.open(streamId, halves);
    return this.streams.size > this.#maxTrackedStreams ? OpaqueReason.TOO_MANY_STREAMS : undefined;
  }
}

function atEnd(r: FrameReader, action: EndAction, streamId: number): void {
  r.endAction = action;
  r.endStreamId = streamId;
}
