import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/h2/frame.js';
import {
  data,
  everySplit,
  feedClient,
  FOREIGN_PING,
  frame,
  h2cSession,
  headers,
  OUR_PING,
  ping,
  windowUpdate,
} from './frames.js';
import type { H2Session } from '../../src/h2/session.js';

const ourAck = (): Buffer => ping(OUR_PING, true);
const foreignAck = (): Buffer => ping(FOREIGN_PING, true);

/** An h2c session with stream 1 open and our GOAWAY + PING already written. */
function drained(): H2Session {
  const s = h2cSession();
  s.fromClient(headers(1));
  s.injected();
  return s;
}

const splitName = (pieces: Buffer[]): string => pieces.map((p) => p.length).join('+');

describe('removal of the ACK of our PING', () => {
  const before = data(1, 0, 3);
  const after = windowUpdate(0);
  const input = Buffer.concat([before, ourAck(), after]);
  const expected = Buffer.concat([before, after]);

  it.each(everySplit(input).map((p) => [splitName(p), p]))('removes it, split %s', (_n, pieces) => {
    const s = drained();
    expect(feedClient(s, pieces).equals(expected)).toBe(true);
    expect(s.ourPingAcked).toBe(true);
    expect(s.heldBytes).toBe(0);
    expect(s.mode).toBe('h2c');
  });

  const foreign = Buffer.concat([before, foreignAck(), after]);
  it.each(everySplit(foreign).map((p) => [splitName(p), p]))(
    'passes a foreign ACK through unchanged, split %s',
    (_n, pieces) => {
      const s = drained();
      expect(feedClient(s, pieces).equals(foreign)).toBe(true);
      expect(s.ourPingAcked).toBe(false);
      expect(s.heldBytes).toBe(0);
    },
  );

  it('removes nothing before injected(), and returns the same chunk object', () => {
    const s = h2cSession();
    const chunk = Buffer.concat([ourAck(), data(1)]);
    for (let i = 0; i < chunk.length; i++) {
      const piece = chunk.subarray(i, i + 1);
      expect(s.fromClient(piece)).toBe(piece);
    }
    expect(s.ourPingAcked).toBe(false);
  });

  it('returns the same chunk object after injected() when nothing is held or removed', () => {
    const s = drained();
    const chunk = Buffer.concat([data(1), foreignAck(), ping(OUR_PING, false)]);
    expect(s.fromClient(chunk)).toBe(chunk);
    // A chunk ending mid-DATA payload holds nothing either: only frame starts are held.
    const d = data(1, 0, 20);
    const head = d.subarray(0, 12);
    expect(s.fromClient(head)).toBe(head);
  });

  it('holds an incomplete PING ACK and returns an empty list until it is decided', () => {
    const s = drained();
    const ack = ourAck();
    expect(s.fromClient(ack.subarray(0, 4))).toEqual([]);
    expect(s.heldBytes).toBe(4);
    expect(s.fromClient(ack.subarray(4, 12))).toEqual([]);
    expect(s.heldBytes).toBe(12);
    expect(s.fromClient(ack.subarray(12))).toEqual([]);
    expect(s.heldBytes).toBe(0);
    expect(s.ourPingAcked).toBe(true);
  });

  it('releases held octets in order when the last payload octet differs', () => {
    const s = drained();
    const payload = Buffer.from(OUR_PING);
    payload[7] = payload[7]! ^ 1;
    const ack = ping(payload, true);
    const out = Buffer.concat([
      feedClient(s, [ack.subarray(0, 16)]),
      feedClient(s, [Buffer.concat([ack.subarray(16), data(1)])]),
    ]);
    expect(out.equals(Buffer.concat([ack, data(1)]))).toBe(true);
    expect(s.ourPingAcked).toBe(false);
  });

  it('passes our payload through in a PING without ACK (a client PING, not an answer)', () => {
    const s = drained();
    const p = ping(OUR_PING, false);
    expect(s.fromClient(p)).toBe(p);
    expect(s.ourPingAcked).toBe(false);
  });

  it('removes every ACK carrying our payload, several in one chunk', () => {
    const s = drained();
    const out = feedClient(s, [Buffer.concat([ourAck(), data(1), ourAck(), ourAck(), data(1)])]);
    expect(out.equals(Buffer.concat([data(1), data(1)]))).toBe(true);
    expect(s.snapshot().ourPingAcksRemoved).toBe(3);
  });

  it('releaseHeld() hands back held octets once', () => {
    const s = drained();
    const ack = ourAck();
    s.fromClient(ack.subarray(0, 10));
    expect(s.releaseHeld()?.equals(ack.subarray(0, 10))).toBe(true);
    expect(s.releaseHeld()).toBeUndefined();
    expect(s.heldBytes).toBe(0);
  });

  it('regression: held octets of a frame that proves invalid are released, not lost', () => {
    const s = drained();
    const bad = frame(FrameType.PING, 0, 1, 8);
    const out = feedClient(s, [bad.subarray(0, 5), bad.subarray(5)]);
    expect(s.opaqueReason).toBe('stream-id');
    expect(out.equals(bad)).toBe(true);
  });

  it('regression: held octets survive the server side going opaque', () => {
    const s = drained();
    const ack = ourAck();
    expect(s.fromClient(ack.subarray(0, 6))).toEqual([]);
    s.fromServer(data(0), 0, 'none');
    expect(s.mode).toBe('opaque');
    const rest = ack.subarray(6);
    expect(feedClient(s, [rest]).equals(ack)).toBe(true);
    expect(s.heldBytes).toBe(0);
  });

  it('does not hold a frame that was mid-header when injected() was called', () => {
    const s = h2cSession();
    const ack = ourAck();
    s.fromClient(ack.subarray(0, 3));
    s.injected();
    const rest = ack.subarray(3);
    expect(s.fromClient(rest)).toBe(rest);
    expect(s.ourPingAcked).toBe(false);
  });
});
