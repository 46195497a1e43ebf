/**
 * What a single frame header may look like, judged from its 9 octets alone (RFC 9113 §4–§6).
 * Everything here is a connection error in RFC 9113: a peer that sees it tears the connection
 * down, so a byte stream that shows one is either not HTTP/2 or we have lost sync with it.
 */
import { Flag, FrameType } from './frame.js';

/**
 * Why a session stopped tracking and became opaque. Stable short codes: logs, metric labels and
 * /debug/state key on them, so a code never changes meaning once released.
 */
export const OpaqueReason = {
  /** The client's first 24 octets are not the connection preface (RFC 9113 §3.4). */
  NOT_H2_PREFACE: 'not-h2-preface',
  /** The client's first frame after the preface is not a SETTINGS frame (§3.4). */
  CLIENT_FIRST_FRAME_NOT_SETTINGS: 'client-first-frame-not-settings',
  /** The server's first frame is not a non-ACK SETTINGS frame on stream 0 (§3.4). */
  SERVER_FIRST_FRAME_NOT_SETTINGS: 'server-first-frame-not-settings',
  /** A length that the frame type forbids (§6: fixed sizes, minimum sizes, SETTINGS ACK). */
  FRAME_SIZE: 'frame-size',
  /** Stream 0 where a stream is required, or a stream where stream 0 is required (§6). */
  STREAM_ID: 'stream-id',
  /** A client HEADERS on an even stream id: clients use odd ids only (§5.1.1). */
  CLIENT_STREAM_ID_EVEN: 'client-stream-id-even',
  /** A client sent PUSH_PROMISE, which only servers may send (§8.4). */
  CLIENT_PUSH_PROMISE: 'client-push-promise',
  /** A header block is open and the next frame is not a CONTINUATION on its stream (§6.10). */
  CONTINUATION_EXPECTED: 'continuation-expected',
  /** A CONTINUATION frame with no open header block before it (§6.10). */
  UNEXPECTED_CONTINUATION: 'unexpected-continuation',
  /** More streams open at once than the session agreed to track. */
  TOO_MANY_STREAMS: 'too-many-streams',
} as const;

/** One of the {@link OpaqueReason} codes. */
export type OpaqueReason = (typeof OpaqueReason)[keyof typeof OpaqueReason];

/**
 * Checks the rules that depend on one frame header only: the stream id is zero or non-zero as
 * the type requires, and the length is one the type allows. Returns the reason the header can
 * never be valid, or undefined if it may be. Extension types (> 9) always pass (§5.5).
 *
 * Deliberately not checked: SETTINGS_MAX_FRAME_SIZE (§4.2), because we never read SETTINGS
 * payloads and so do not know what either peer announced; the 24-bit length is the only bound.
 * Header-block sequencing (§6.10) needs state and lives in the session.
 */
export function checkFrameHeader(
  type: number,
  flags: number,
  length: number,
  streamId: number,
): OpaqueReason | undefined {
  const padding = (flags & Flag.PADDED) !== 0 ? 1 : 0;
  switch (type) {
    case FrameType.DATA:
      // §6.1: a stream is required; with PADDED the Pad Length octet must be present.
      if (streamId === 0) return OpaqueReason.STREAM_ID;
      return length < padding ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.HEADERS: {
      // §6.2: a stream is required; PADDED adds 1 octet, PRIORITY adds 5 (dependency + weight).
      if (streamId === 0) return OpaqueReason.STREAM_ID;
      const fixed = padding + ((flags & Flag.PRIORITY) !== 0 ? 5 : 0);
      return length < fixed ? OpaqueReason.FRAME_SIZE : undefined;
    }
    case FrameType.PRIORITY:
      // §6.3: exactly 5 octets on a stream.
      if (streamId === 0) return OpaqueReason.STREAM_ID;
      return length !== 5 ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.RST_STREAM:
      // §6.4: exactly 4 octets on a stream.
      if (streamId === 0) return OpaqueReason.STREAM_ID;
      return length !== 4 ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.SETTINGS:
      // §6.5: stream 0; a multiple of 6 octets; an ACK carries nothing.
      if (streamId !== 0) return OpaqueReason.STREAM_ID;
      if ((flags & Flag.ACK) !== 0) return length !== 0 ? OpaqueReason.FRAME_SIZE : undefined;
      return length % 6 !== 0 ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.PUSH_PROMISE:
      // §6.6: a stream is required; the 4-octet promised stream id, plus Pad Length if PADDED.
      if (streamId === 0) return OpaqueReason.STREAM_ID;
      return length < 4 + padding ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.PING:
      // §6.7: exactly 8 octets on stream 0.
      if (streamId !== 0) return OpaqueReason.STREAM_ID;
      return length !== 8 ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.GOAWAY:
      // §6.8: stream 0; last-stream-id and error code, then optional debug data.
      if (streamId !== 0) return OpaqueReason.STREAM_ID;
      return length < 8 ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.WINDOW_UPDATE:
      // §6.9: exactly 4 octets, on stream 0 (connection) or any stream.
      return length !== 4 ? OpaqueReason.FRAME_SIZE : undefined;
    case FrameType.CONTINUATION:
      // §6.10: a stream is required; sequencing is checked by the session.
      return streamId === 0 ? OpaqueReason.STREAM_ID : undefined;
    default:
      // §5.5: implementations MUST ignore frames of unknown types.
      return undefined;
  }
}

/**
 * True when a frame header may open an HTTP/2 connection from either side: a SETTINGS frame on
 * stream 0, without ACK, whose length is a multiple of 6 (RFC 9113 §3.4, §6.5).
 */
export function isInitialSettings(
  type: number,
  flags: number,
  length: number,
  streamId: number,
): boolean {
  return (
    type === FrameType.SETTINGS && streamId === 0 && (flags & Flag.ACK) === 0 && length % 6 === 0
  );
}
