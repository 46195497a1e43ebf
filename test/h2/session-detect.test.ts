import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { CLIENT_PREFACE, Flag, FrameType } from '../../src/h2/frame.js';
import { H2Session } from '../../src/h2/session.js';
import {
  clientStart,
  everySplit,
  feedClient,
  frame,
  headers,
  newSession,
  OUR_PING,
  serverStart,
  settings,
  settingsAck,
} from './frames.js';

describe('H2Session construction', () => {
  it.each([
    ['a 7-octet ping payload', { pingPayload: new Uint8Array(7) }],
    ['a 9-octet ping payload', { pingPayload: new Uint8Array(9) }],
    ['maxTrackedStreams 0', { pingPayload: OUR_PING, maxTrackedStreams: 0 }],
    ['maxTrackedStreams 1.5', { pingPayload: OUR_PING, maxTrackedStreams: 1.5 }],
  ])('throws RangeError on %s', (_name, opts) => {
    expect(() => new H2Session(opts)).toThrow(RangeError);
  });

  it('starts detecting with nothing counted', () => {
    expect(newSession().snapshot()).toEqual({
      mode: 'detecting',
      opaqueReason: undefined,
      opaqueSide: undefined,
      wasH2c: false,
      openStreams: 0,
      highestClientStreamId: 0,
      serverGoawaySeen: false,
      clientPingsSeen: 0,
      ourPingAcked: false,
      ourPingAcksRemoved: 0,
      streamsEndedNormally: 0,
      streamsEndedByReset: 0,
      injections: 0,
      clientBytes: 0,
      serverBytes: 0,
      clientFrames: 0,
      serverFrames: 0,
      clientHeaderBlockOpen: false,
      serverHeaderBlockOpen: false,
      heldBytes: 0,
      canInjectNow: false,
    });
  });
});

describe('detection', () => {
  it.each(
    everySplit(clientStart()).map((pieces) => [pieces.map((p) => p.length).join('+'), pieces]),
  )('accepts the client preface split %s', (_name, pieces) => {
    const s = newSession();
    const out = feedClient(s, pieces);
    expect(out.equals(clientStart())).toBe(true);
    expect(s.mode).toBe('detecting');
    s.fromServer(serverStart(), 0, 'none');
    expect(s.mode).toBe('h2c');
    expect(s.snapshot().clientFrames).toBe(1);
  });

  it.each(Array.from({ length: 24 }, (_, i) => i))(
    'goes opaque as soon as preface octet %i differs, fed one octet at a time',
    (bad) => {
      const s = newSession();
      const bytes = Buffer.from(CLIENT_PREFACE);
      bytes[bad] = bytes[bad]! ^ 0x20;
      for (let i = 0; i < 24; i++) {
        const piece = bytes.subarray(i, i + 1);
        expect(s.fromClient(piece)).toBe(piece);
        expect(s.mode).toBe(i < bad ? 'detecting' : 'opaque');
      }
      expect(s.opaqueReason).toBe('not-h2-preface');
      expect(s.opaqueSide).toBe('client');
      expect(s.wasH2c).toBe(false);
    },
  );

  it.each([
    ['HTTP/1.1', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a TLS ClientHello', Buffer.from('160301020001', 'hex')],
    ['an empty-looking preface', Buffer.alloc(24)],
  ])('goes opaque on %s', (_name, bytes) => {
    const s = newSession();
    expect(s.fromClient(bytes)).toBe(bytes);
    expect(s.mode).toBe('opaque');
    expect(s.opaqueReason).toBe('not-h2-preface');
  });

  it.each([
    ['HEADERS first', headers(1)],
    ['SETTINGS with ACK first', settingsAck()],
    ['SETTINGS on stream 1', frame(FrameType.SETTINGS, 0, 1, 6)],
    ['SETTINGS of 5 octets', frame(FrameType.SETTINGS, 0, 0, 5)],
    ['an HTTP/1.1 response', Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')],
    ['an extension frame', frame(0xa, 0, 0, 0)],
  ])('goes opaque when the server starts with %s', (_name, bytes) => {
    const s = newSession();
    s.fromClient(clientStart());
    expect(s.fromServer(bytes, 0, 'boundary')).toBe(bytes.length);
    expect(s.mode).toBe('opaque');
    expect(s.opaqueReason).toBe('server-first-frame-not-settings');
    expect(s.opaqueSide).toBe('server');
  });

  it.each([
    ['HEADERS', headers(1)],
    ['SETTINGS with ACK', settingsAck()],
  ])('goes opaque when the client frame after the preface is %s', (_name, first) => {
    const s = newSession();
    s.fromServer(serverStart(), 0, 'none');
    s.fromClient(Buffer.concat([CLIENT_PREFACE, first]));
    expect(s.opaqueReason).toBe('client-first-frame-not-settings');
  });

  it('accepts server SETTINGS before the client preface (node:http2 sends it first)', () => {
    const s = newSession();
    s.fromServer(Buffer.concat([serverStart(), settingsAck()]), 0, 'none');
    expect(s.mode).toBe('detecting');
    s.fromClient(CLIENT_PREFACE.subarray(0, 10));
    expect(s.mode).toBe('detecting');
    s.fromClient(Buffer.concat([CLIENT_PREFACE.subarray(10), settings()]));
    expect(s.mode).toBe('h2c');
  });

  it('stays detecting on a server SETTINGS header split before its last octet', () => {
    const s = newSession();
    s.fromClient(clientStart());
    const start = serverStart();
    s.fromServer(start.subarray(0, 8), 0, 'none');
    expect(s.mode).toBe('detecting');
    s.fromServer(start.subarray(8), 0, 'none');
    expect(s.mode).toBe('h2c');
  });

  it('opaque is final: later calls do no work and pass bytes through', () => {
    const s = newSession();
    const junk = Buffer.from('not http/2 at all, not even close');
    s.fromClient(junk);
    const before = s.snapshot();
    const more = Buffer.concat([clientStart(), headers(1)]);
    expect(s.fromClient(more)).toBe(more);
    expect(s.fromServer(serverStart(), 0, 'boundary')).toBe(serverStart().length);
    expect(s.fromServer(serverStart(), 3, 'ping-ack')).toBe(serverStart().length);
    expect(s.canInjectNow()).toBe(false);
    s.injected();
    expect(s.snapshot()).toEqual(before);
  });

  it('regression: a settings ACK flag on the server first frame is not an opening SETTINGS', () => {
    const s = newSession();
    s.fromClient(clientStart());
    s.fromServer(frame(FrameType.SETTINGS, Flag.ACK, 0, 0), 0, 'none');
    expect(s.mode).toBe('opaque');
  });
});
