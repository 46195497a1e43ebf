/**
 * Per-direction frame-header reader: a two-state machine (reading a header, skipping a payload)
 * that gives the same answer however the bytes are split into chunks.
 */
import { Buffer } from 'node:buffer';
import { FRAME_HEADER_LENGTH, MAX_STREAM_ID } from './frame.js';

/** What must happen to the stream map when the current frame's last octet has been consumed. */
export const EndAction = {
  /** Nothing. */
  NONE: 0,
  /** END_STREAM takes effect: the sending side's half of `endStreamId` closes (§5.1). */
  HALF_CLOSE: 1,
  /** RST_STREAM takes effect: `endStreamId` closes outright (§6.4). */
  RESET: 2,
} as const;

/** One of the {@link EndAction} codes. */
export type EndAction = (typeof EndAction)[keyof typeof EndAction];

/**
 * Reads the 9-octet frame headers of one direction of an HTTP/2 connection and skips payloads
 * by counting, never copying them. Only a header that spans chunks is copied, into a 9-octet
 * scratch buffer owned by the reader; a header wholly inside a chunk is decoded in place.
 *
 * The reader does no validation and keeps no protocol state of its own beyond the current frame:
 * the fields below the decoded header (`blockStreamId`, `blockEndStream`, `endAction`,
 * `endStreamId`) are scratch space that the owning session reads and writes. Nothing else may
 * mutate a reader.
 *
 * States: at a frame boundary (`atBoundary`), inside a header (`headerFill` octets gathered),
 * inside a payload (`inPayload`, `remaining` octets left). A frame with an empty payload is in
 * the payload state with `remaining === 0` right after its header, until `endFrame()`.
 */
export class FrameReader {
  /** Octets of a chunk-spanning header gathered so far; 0 at a boundary or in a payload. */
  headerFill = 0;
  /** True from the moment the header is complete until `endFrame()`. */
  inPayload = false;
  /** Decoded header of the current (or last) frame. Valid while `inPayload`. */
  length = 0;
  type = 0;
  flags = 0;
  /** Stream id with the reserved bit masked off (RFC 9113 §4.1: receivers ignore it). */
  streamId = 0;
  /** Payload octets of the current frame not yet consumed. */
  remaining = 0;
  /** Frame headers decoded so far on this side. */
  frames = 0;
  /**
   * Stream of the header block open on this side (HEADERS or PUSH_PROMISE without END_HEADERS,
   * until the CONTINUATION with END_HEADERS; RFC 9113 §6.10), or 0 when none is open.
   */
  blockStreamId = 0;
  /** The HEADERS that opened the current block carried END_STREAM (§6.2: applies at its end). */
  blockEndStream = false;
  /** What to do when the current frame ends; set by the session from the header. */
  endAction: EndAction = EndAction.NONE;
  /** Stream the `endAction` applies to. */
  endStreamId = 0;

  /** For a header split across chunks; allocated on first use. */
  #scratch: Buffer | undefined;

  /** True between frames: no header octet and no payload octet of a frame pending. */
  get atBoundary(): boolean {
    return !this.inPayload && this.headerFill === 0;
  }

  /**
   * Consumes header octets from `chunk[pos..end)` and returns the new position. When the header
   * completes, decodes it and enters the payload state. Call only while `!inPayload`.
   */
  readHeader(chunk: Buffer, pos: number, end: number): number {
    if (this.headerFill === 0 && end - pos >= FRAME_HEADER_LENGTH) {
      this.#decode(chunk, pos);
      return pos + FRAME_HEADER_LENGTH;
    }
    // The header spans chunks: gather it in the scratch buffer (at most 9 octets ever copied).
    const take = Math.min(FRAME_HEADER_LENGTH - this.headerFill, end - pos);
    const scratch = (this.#scratch ??= Buffer.alloc(FRAME_HEADER_LENGTH));
    chunk.copy(scratch, this.headerFill, pos, pos + take);
    this.headerFill += take;
    if (this.headerFill === FRAME_HEADER_LENGTH) {
      this.headerFill = 0;
      this.#decode(scratch, 0);
    }
    return pos + take;
  }

  /** Skips up to `remaining` payload octets of `chunk[pos..end)`; returns the new position. */
  skip(pos: number, end: number): number {
    const take = Math.min(this.remaining, end - pos);
    this.remaining -= take;
    return pos + take;
  }

  /** Leaves the payload state once `remaining` is 0: the reader is at a frame boundary again. */
  endFrame(): void {
    this.inPayload = false;
  }

  #decode(source: Buffer, at: number): void {
    this.length = source.readUIntBE(at, 3);
    this.type = source.readUInt8(at + 3);
    this.flags = source.readUInt8(at + 4);
    this.streamId = source.readUInt32BE(at + 5) & MAX_STREAM_ID;
    this.remaining = this.length;
    this.inPayload = true;
    this.endAction = EndAction.NONE;
    this.frames++;
  }
}
