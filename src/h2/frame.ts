/**
 * HTTP/2 wire constants and the two frames this proxy ever writes itself (GOAWAY and PING).
 *
 * Every HTTP/2 frame starts with a fixed 9-octet header (RFC 9113 §4.1):
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-----------------------------------------------+
 * |                 Length (24)                   |
 * +---------------+---------------+---------------+
 * |   Type (8)    |   Flags (8)   |
 * +-+-------------+---------------+-------------------------------+
 * |R|                 Stream Identifier (31)                      |
 * +=+=============================================================+
 * |                   Frame Payload (Length octets)             ...
 * +---------------------------------------------------------------+
 * ```
 *
 * Length counts the payload only, never the 9 header octets. R is reserved: senders set it to 0
 * and receivers ignore it (§4.1), so readers here mask it off.
 */
import { Buffer } from 'node:buffer';

/** Frame type codes of RFC 9113 §6. Types above 9 are extensions (§5.5) and are never errors. */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** A frame type code: one of {@link FrameType}, or any other octet for extension frames. */
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

/**
 * Flag bits (RFC 9113 §6). Their meaning depends on the frame type: `ACK` and `END_STREAM` share
 * bit 0x1 (ACK on SETTINGS and PING, END_STREAM on DATA and HEADERS).
 */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes of RFC 9113 §7, as carried in RST_STREAM and GOAWAY. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/**
 * The client connection preface (RFC 9113 §3.4): the first 24 octets a prior-knowledge (h2c)
 * client sends, before its SETTINGS frame. Frozen copy; never mutate.
 */
export const CLIENT_PREFACE: Readonly<Buffer> = Buffer.from(
  'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  'latin1',
);

/** Octets in every frame header (RFC 9113 §4.1). */
export const FRAME_HEADER_LENGTH = 9;

/** Largest stream identifier: 31 bits (RFC 9113 §5.1.1). */
export const MAX_STREAM_ID = 0x7fffffff;

/**
 * The smallest SETTINGS_MAX_FRAME_SIZE a peer may announce (RFC 9113 §4.2, §6.5.2). A frame we
 * write must fit in it, because we never read the client's SETTINGS.
 */
export const MIN_MAX_FRAME_SIZE = 16_384;

/** Length of a PING payload (RFC 9113 §6.7). */
export const PING_PAYLOAD_LENGTH = 8;

/**
 * Writes a 9-octet frame header into `target` at `offset`, with the reserved bit cleared.
 * Does not validate: callers here pass values they have already checked.
 */
export function writeFrameHeader(
  target: Buffer,
  offset: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  target.writeUIntBE(length, offset, 3);
  target.writeUInt8(type, offset + 3);
  target.writeUInt8(flags, offset + 4);
  target.writeUInt32BE(streamId & MAX_STREAM_ID, offset + 5);
}

/**
 * Encodes a GOAWAY frame (RFC 9113 §6.8) on stream 0 with no flags.
 *
 * Guarantees: the result is one complete, valid frame whose payload fits the smallest
 * SETTINGS_MAX_FRAME_SIZE (16,384 octets), so any peer accepts it. Throws RangeError if
 * `lastStreamId` is not an integer in 0..2^31-1, `errorCode` not an integer in 0..2^32-1, or the
 * debug data (UTF-8 when a string) longer than 16,376 octets.
 *
 * The drain always sends `lastStreamId = MAX_STREAM_ID`: a GOAWAY may never raise the last
 * stream id of an earlier one (§6.8), and the maximum lets every stream the client already
 * started complete.
 */
export function encodeGoaway(
  lastStreamId: number,
  errorCode: number,
  debugData: string | Uint8Array,
): Buffer {
  if (!Number.isInteger(lastStreamId) || lastStreamId < 0 || lastStreamId > MAX_STREAM_ID) {
    throw new RangeError(`GOAWAY last-stream-id must be an integer in 0..${MAX_STREAM_ID}`);
  }
  if (!Number.isInteger(errorCode) || errorCode < 0 || errorCode > 0xffffffff) {
    throw new RangeError('GOAWAY error code must be an integer in 0..2^32-1');
  }
  const debugLength =
    typeof debugData === 'string' ? Buffer.byteLength(debugData, 'utf8') : debugData.length;
  const payloadLength = 8 + debugLength;
  if (payloadLength > MIN_MAX_FRAME_SIZE) {
    throw new RangeError(
      `GOAWAY debug data is ${debugLength} octets; at most ${MIN_MAX_FRAME_SIZE - 8} fit one frame`,
    );
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payloadLength);
  writeFrameHeader(frame, 0, payloadLength, FrameType.GOAWAY, 0, 0);
  frame.writeUInt32BE(lastStreamId, 9);
  frame.writeUInt32BE(errorCode, 13);
  if (typeof debugData === 'string') frame.write(debugData, 17, 'utf8');
  else frame.set(debugData, 17);
  return frame;
}

/**
 * Encodes a PING frame (RFC 9113 §6.7) on stream 0, with the ACK flag when `ack` is true.
 *
 * Guarantees: a complete 17-octet frame carrying a copy of `payload`. Throws RangeError unless
 * `payload` is exactly 8 octets.
 */
export function encodePing(payload: Uint8Array, ack = false): Buffer {
  if (payload.length !== PING_PAYLOAD_LENGTH) {
    throw new RangeError(
      `PING payload must be exactly ${PING_PAYLOAD_LENGTH} octets, got ${payload.length}`,
    );
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + PING_PAYLOAD_LENGTH);
  writeFrameHeader(frame, 0, PING_PAYLOAD_LENGTH, FrameType.PING, ack ? Flag.ACK : 0, 0);
  frame.set(payload, FRAME_HEADER_LENGTH);
  return frame;
}
