import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { Flag, FrameType } from '../../src/h2/frame.js';
import {
  continuation,
  data,
  frame,
  h2cSession,
  headers,
  ping,
  pushPromise,
  rst,
  settings,
} from './frames.js';

const EH = Flag.END_HEADERS;

/** Frames that can never be valid HTTP/2 from either side, with the reason they give. */
const invalidEitherSide: ReadonlyArray<readonly [string, string, Buffer]> = [
  ['DATA on stream 0', 'stream-id', data(0)],
  ['HEADERS on stream 0', 'stream-id', headers(0)],
  ['PRIORITY on stream 0', 'stream-id', frame(FrameType.PRIORITY, 0, 0, 5)],
  ['RST_STREAM on stream 0', 'stream-id', rst(0)],
  [
    'CONTINUATION on stream 0, no block',
    'unexpected-continuation',
    frame(FrameType.CONTINUATION, EH, 0, 1),
  ],
  ['SETTINGS on stream 1', 'stream-id', frame(FrameType.SETTINGS, 0, 1, 0)],
  ['PING on stream 1', 'stream-id', frame(FrameType.PING, 0, 1, 8)],
  ['GOAWAY on stream 1', 'stream-id', frame(FrameType.GOAWAY, 0, 1, 8)],
  ['PRIORITY of 4 octets', 'frame-size', frame(FrameType.PRIORITY, 0, 1, 4)],
  ['PRIORITY of 6 octets', 'frame-size', frame(FrameType.PRIORITY, 0, 1, 6)],
  ['RST_STREAM of 3 octets', 'frame-size', frame(FrameType.RST_STREAM, 0, 1, 3)],
  ['RST_STREAM of 8 octets', 'frame-size', frame(FrameType.RST_STREAM, 0, 1, 8)],
  ['PING of 7 octets', 'frame-size', frame(FrameType.PING, 0, 0, 7)],
  ['PING ACK of 9 octets', 'frame-size', frame(FrameType.PING, Flag.ACK, 0, 9)],
  ['WINDOW_UPDATE of 5 octets', 'frame-size', frame(FrameType.WINDOW_UPDATE, 0, 0, 5)],
  ['SETTINGS of 7 octets', 'frame-size', frame(FrameType.SETTINGS, 0, 0, 7)],
  ['SETTINGS ACK of 6 octets', 'frame-size', frame(FrameType.SETTINGS, Flag.ACK, 0, 6)],
  ['GOAWAY of 7 octets', 'frame-size', frame(FrameType.GOAWAY, 0, 0, 7)],
  ['PADDED DATA of 0 octets', 'frame-size', data(1, Flag.PADDED, 0)],
  ['HEADERS with PRIORITY of 4 octets', 'frame-size', headers(1, EH | Flag.PRIORITY, 4)],
  ['CONTINUATION with no header block', 'unexpected-continuation', continuation(1)],
];

/** [name, frames that open a header block, the frame after it]: all 'continuation-expected'. */
const brokenBlocks: ReadonlyArray<readonly [string, Buffer, Buffer]> = [
  ['DATA inside a block', headers(1, 0), data(1)],
  ['PING inside a block', headers(1, 0), ping()],
  ['an extension frame inside a block', headers(1, 0), frame(0xa, 0, 0, 0)],
  ['CONTINUATION on another stream', headers(1, 0), continuation(3)],
  ['HEADERS inside a block', headers(1, 0), headers(3)],
  [
    'a second frame after a CONTINUATION without END_HEADERS',
    Buffer.concat([headers(1, 0), continuation(1, 0)]),
    data(1),
  ],
];

describe.each(['client', 'server'] as const)('validity, %s side', (side) => {
  const feed = (bytes: Buffer): ReturnType<typeof h2cSession> => {
    const s = h2cSession();
    // Open stream 1 from the client so server frames on it are meaningful.
    s.fromClient(headers(1));
    if (side === 'client') s.fromClient(bytes);
    else s.fromServer(bytes, 0, 'none');
    return s;
  };

  it.each(invalidEitherSide)('%s → opaque (%s)', (_name, reason, bytes) => {
    const s = feed(bytes);
    expect(s.mode).toBe('opaque');
    expect(s.opaqueReason).toBe(reason);
    expect(s.opaqueSide).toBe(side);
    expect(s.wasH2c).toBe(true);
  });

  it.each(brokenBlocks)('%s → opaque (continuation-expected)', (_name, open, next) => {
    const s = feed(Buffer.concat([open, next]));
    expect(s.opaqueReason).toBe('continuation-expected');
  });

  it.each([
    ['an extension frame type', frame(0xfe, 0xff, 0, 17)],
    ['a WINDOW_UPDATE on a stream', frame(FrameType.WINDOW_UPDATE, 0, 1, 4)],
    ['a GOAWAY with debug data', frame(FrameType.GOAWAY, 0, 0, 40)],
    ['a SETTINGS of 12 octets', settings(2)],
    ['a PRIORITY on an idle stream', frame(FrameType.PRIORITY, 0, 101, 5)],
    ['a DATA frame near the 24-bit limit', data(1, 0, 0xffff)],
    [
      'a header block closed by CONTINUATION then any frame',
      Buffer.concat([headers(1, 0), continuation(1, 0), continuation(1, EH), ping()]),
    ],
  ])('%s stays h2c', (_name, bytes) => {
    const s = feed(bytes);
    expect(s.mode).toBe('h2c');
    expect(s.opaqueReason).toBeUndefined();
  });

  it('regression: a frame length above 16,384 is not treated as a frame-size error', () => {
    // SETTINGS_MAX_FRAME_SIZE may have been raised by the peer; we never read SETTINGS (§4.2).
    const header = frame(FrameType.DATA, 0, 1, 0);
    header.writeUIntBE(0xffffff, 0, 3);
    const s = feed(header);
    expect(s.mode).toBe('h2c');
  });
});

describe('validity, client-only rules', () => {
  it.each([
    ['HEADERS on an even id', 'client-stream-id-even', headers(2)],
    ['PUSH_PROMISE', 'client-push-promise', pushPromise(1)],
  ])('%s → opaque (%s)', (_name, reason, bytes) => {
    const s = h2cSession();
    s.fromClient(headers(1));
    s.fromClient(bytes);
    expect(s.opaqueReason).toBe(reason);
    expect(s.opaqueSide).toBe('client');
  });

  it('the server may send HEADERS on an even id (push)', () => {
    const s = h2cSession();
    s.fromServer(headers(2), 0, 'none');
    expect(s.mode).toBe('h2c');
  });

  it('goes opaque at the header, without waiting for the payload', () => {
    const s = h2cSession();
    const bad = frame(FrameType.PING, 0, 0, 7);
    s.fromClient(bad.subarray(0, 9));
    expect(s.mode).toBe('opaque');
  });

  it('one side going opaque freezes the other side too', () => {
    const s = h2cSession();
    s.fromClient(data(0));
    expect(s.mode).toBe('opaque');
    const before = s.snapshot();
    const h = headers(2);
    expect(s.fromServer(h, 0, 'none')).toBe(h.length);
    expect(s.snapshot()).toEqual(before);
  });
});
