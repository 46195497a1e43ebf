import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_PREFACE,
  encodeGoaway,
  encodePing,
  ErrorCode,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  MAX_STREAM_ID,
} from '../../src/h2/frame.js';
import { checkFrameHeader } from '../../src/h2/frame-rules.js';

describe('constants', () => {
  it('has the RFC 9113 §3.4 preface and §4.1 sizes', () => {
    expect(CLIENT_PREFACE.toString('latin1')).toBe('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    expect(CLIENT_PREFACE.length).toBe(24);
    expect(FRAME_HEADER_LENGTH).toBe(9);
    expect(MAX_STREAM_ID).toBe(2 ** 31 - 1);
    expect(ErrorCode.NO_ERROR).toBe(0);
  });

  it.each([
    ['DATA', 0],
    ['HEADERS', 1],
    ['PRIORITY', 2],
    ['RST_STREAM', 3],
    ['SETTINGS', 4],
    ['PUSH_PROMISE', 5],
    ['PING', 6],
    ['GOAWAY', 7],
    ['WINDOW_UPDATE', 8],
    ['CONTINUATION', 9],
  ] as const)('FrameType.%s is %i', (name, code) => {
    expect(FrameType[name]).toBe(code);
  });

  it.each([
    ['END_STREAM', 0x1],
    ['ACK', 0x1],
    ['END_HEADERS', 0x4],
    ['PADDED', 0x8],
    ['PRIORITY', 0x20],
  ] as const)('Flag.%s is %i', (name, bit) => {
    expect(Flag[name]).toBe(bit);
  });
});

describe('encodeGoaway', () => {
  it('lays out header, last-stream-id, error code and debug data (RFC 9113 §6.8)', () => {
    const f = encodeGoaway(MAX_STREAM_ID, ErrorCode.NO_ERROR, 'max-age');
    expect(f.toString('hex')).toBe(
      '00000f' +
        '07' +
        '00' +
        '00000000' +
        '7fffffff' +
        '00000000' +
        Buffer.from('max-age').toString('hex'),
    );
  });

  it('accepts bytes as debug data and any 32-bit error code', () => {
    const f = encodeGoaway(5, 0xffffffff, new Uint8Array([1, 2]));
    expect(f.readUIntBE(0, 3)).toBe(10);
    expect(f.readUInt32BE(9)).toBe(5);
    expect(f.readUInt32BE(13)).toBe(0xffffffff);
    expect([...f.subarray(17)]).toEqual([1, 2]);
  });

  it('counts debug data in UTF-8 octets', () => {
    const f = encodeGoaway(1, 0, 'é');
    expect(f.readUIntBE(0, 3)).toBe(10);
    expect(f.length).toBe(19);
  });

  it('fits the largest debug data into the minimum max frame size', () => {
    expect(encodeGoaway(0, 0, 'x'.repeat(16_376)).length).toBe(9 + 16_384);
  });

  it.each([
    ['negative last-stream-id', -1, 0, ''],
    ['last-stream-id above 2^31-1', 2 ** 31, 0, ''],
    ['fractional last-stream-id', 1.5, 0, ''],
    ['NaN last-stream-id', Number.NaN, 0, ''],
    ['negative error code', 1, -1, ''],
    ['error code above 2^32-1', 1, 2 ** 32, ''],
    ['debug data over one frame', 1, 0, 'x'.repeat(16_377)],
  ])('throws RangeError on %s', (_name, last, code, debug) => {
    expect(() => encodeGoaway(last, code, debug)).toThrow(RangeError);
  });
});

describe('encodePing', () => {
  it.each([
    [false, '0000080600' + '00000000'],
    [true, '0000080601' + '00000000'],
  ])('ack=%s lays out a 17-octet PING (RFC 9113 §6.7)', (ack, header) => {
    const payload = Buffer.from('0102030405060708', 'hex');
    const f = encodePing(payload, ack);
    expect(f.toString('hex')).toBe(header + '0102030405060708');
  });

  it('copies the payload', () => {
    const payload = new Uint8Array(8);
    const f = encodePing(payload);
    payload[0] = 9;
    expect(f[9]).toBe(0);
  });

  it.each([0, 7, 9])('throws RangeError on a %i-octet payload', (n) => {
    expect(() => encodePing(new Uint8Array(n))).toThrow(RangeError);
  });
});

describe('checkFrameHeader', () => {
  it.each([
    // [name, type, flags, length, stream, expected]
    ['DATA on stream 0', FrameType.DATA, 0, 1, 0, 'stream-id'],
    ['DATA PADDED without pad length', FrameType.DATA, Flag.PADDED, 0, 1, 'frame-size'],
    ['DATA empty', FrameType.DATA, 0, 0, 1, undefined],
    ['HEADERS on stream 0', FrameType.HEADERS, 4, 3, 0, 'stream-id'],
    ['HEADERS PRIORITY shorter than 5', FrameType.HEADERS, Flag.PRIORITY, 4, 1, 'frame-size'],
    ['HEADERS PADDED+PRIORITY shorter than 6', FrameType.HEADERS, 0x28, 5, 1, 'frame-size'],
    ['HEADERS PADDED+PRIORITY of 6', FrameType.HEADERS, 0x28, 6, 1, undefined],
    ['PRIORITY of 4', FrameType.PRIORITY, 0, 4, 1, 'frame-size'],
    ['PRIORITY on stream 0', FrameType.PRIORITY, 0, 5, 0, 'stream-id'],
    ['RST_STREAM of 5', FrameType.RST_STREAM, 0, 5, 1, 'frame-size'],
    ['RST_STREAM on stream 0', FrameType.RST_STREAM, 0, 4, 0, 'stream-id'],
    ['SETTINGS of 7', FrameType.SETTINGS, 0, 7, 0, 'frame-size'],
    ['SETTINGS ACK with payload', FrameType.SETTINGS, Flag.ACK, 6, 0, 'frame-size'],
    ['SETTINGS on stream 1', FrameType.SETTINGS, 0, 6, 1, 'stream-id'],
    ['SETTINGS of 12', FrameType.SETTINGS, 0, 12, 0, undefined],
    ['PUSH_PROMISE of 3', FrameType.PUSH_PROMISE, 4, 3, 1, 'frame-size'],
    ['PUSH_PROMISE PADDED of 4', FrameType.PUSH_PROMISE, 0xc, 4, 1, 'frame-size'],
    ['PUSH_PROMISE on stream 0', FrameType.PUSH_PROMISE, 4, 4, 0, 'stream-id'],
    ['PING of 7', FrameType.PING, 0, 7, 0, 'frame-size'],
    ['PING on stream 1', FrameType.PING, 0, 8, 1, 'stream-id'],
    ['GOAWAY of 7', FrameType.GOAWAY, 0, 7, 0, 'frame-size'],
    ['GOAWAY on stream 3', FrameType.GOAWAY, 0, 8, 3, 'stream-id'],
    ['GOAWAY with debug data', FrameType.GOAWAY, 0, 100, 0, undefined],
    ['WINDOW_UPDATE of 3', FrameType.WINDOW_UPDATE, 0, 3, 0, 'frame-size'],
    ['WINDOW_UPDATE on a stream', FrameType.WINDOW_UPDATE, 0, 4, 7, undefined],
    ['CONTINUATION on stream 0', FrameType.CONTINUATION, 4, 1, 0, 'stream-id'],
    ['extension type 0xa, any shape', 0xa, 0xff, 0xffffff, 0, undefined],
    ['extension type 0xff', 0xff, 0, 0, 5, undefined],
  ])('%s → %s', (_name, type, flags, length, stream, expected) => {
    expect(checkFrameHeader(type, flags, length, stream)).toBe(expected);
  });
});
