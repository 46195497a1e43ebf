import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { Flag } from '../../src/h2/frame.js';
import {
  clientStart,
  continuation,
  data,
  frame,
  goaway,
  h2cSession,
  headers,
  injectionOffsets,
  newSession,
  ping,
  pushPromise,
  serverStart,
  settingsAck,
} from './frames.js';

const EH = Flag.END_HEADERS;
const ES = Flag.END_STREAM;

/** Concatenates frames and returns the bytes with the offset of every frame boundary. */
function stream(...frames: Buffer[]): { bytes: Buffer; ends: number[] } {
  const ends: number[] = [0];
  let at = 0;
  for (const f of frames) ends.push((at += f.length));
  return { bytes: Buffer.concat(frames), ends };
}

const sorted = (set: Set<number>): number[] => [...set].sort((a, b) => a - b);

describe("fromServer(…, 'boundary')", () => {
  it('stops at the offset itself when the reader already sits at an injectable boundary', () => {
    const s = h2cSession();
    const chunk = Buffer.concat([Buffer.alloc(5), data(1)]);
    expect(s.fromServer(chunk, 5, 'boundary')).toBe(5);
    expect(s.canInjectNow()).toBe(true);
  });

  it.each([
    ['plain frames', [headers(1), data(1), data(1, ES)], [0, 1, 2, 3]],
    [
      'a HEADERS block with CONTINUATIONs: no stop inside it',
      [data(1), headers(3, 0), continuation(3, 0), continuation(3, EH), data(3)],
      [0, 1, 4, 5],
    ],
    [
      'a PUSH_PROMISE block: no stop inside it',
      [pushPromise(1, 0), continuation(1, EH), headers(2)],
      [0, 2, 3],
    ],
    ['a server GOAWAY: stop before it, never after', [data(1), goaway(), data(1), ping()], [0, 1]],
    ['GOAWAY first', [goaway(), headers(1, EH | ES)], [0]],
    ['empty frames', [settingsAck(), frame(0xa, 0, 0, 0), data(1, 0, 0)], [0, 1, 2, 3]],
  ] as const)('%s', (_name, frames, boundaryIndexes) => {
    const { bytes, ends } = stream(...frames);
    const want = boundaryIndexes.map((i) => ends[i]);
    // Whole, and one octet at a time: the same points.
    const whole = injectionOffsets(h2cSession(), [bytes], 'boundary');
    const octets = [...bytes].map((_, i) => bytes.subarray(i, i + 1));
    const split = injectionOffsets(h2cSession(), octets, 'boundary');
    expect(sorted(whole)).toEqual(want);
    expect(sorted(split)).toEqual(want);
  });

  it('never stops while detecting: the client preface has not arrived', () => {
    const s = newSession();
    const { bytes } = stream(serverStart(), settingsAck(), data(1));
    expect(s.fromServer(bytes, 0, 'boundary')).toBe(bytes.length);
    expect(s.canInjectNow()).toBe(false);
    s.fromClient(clientStart());
    expect(s.canInjectNow()).toBe(true);
  });

  it('stops right after the server SETTINGS when the client preface came first', () => {
    const s = newSession();
    s.fromClient(clientStart());
    const { bytes, ends } = stream(serverStart(), data(1));
    expect(s.fromServer(bytes, 0, 'boundary')).toBe(ends[1]);
  });

  it('marks the server GOAWAY from its header, before its payload', () => {
    const s = h2cSession();
    const g = goaway(20);
    s.fromServer(g.subarray(0, 9), 0, 'none');
    expect(s.serverGoawaySeen).toBe(true);
    s.fromServer(g.subarray(9), 0, 'none');
    expect(s.canInjectNow()).toBe(false);
    expect(s.canInjectNow('ping-ack')).toBe(false);
  });

  it('regression: no injection between HEADERS without END_HEADERS and its CONTINUATION split across chunks', () => {
    const s = h2cSession();
    const h = headers(1, 0);
    expect(s.fromServer(h, 0, 'boundary')).toBe(0);
    expect(s.fromServer(h, 0, 'none')).toBe(h.length);
    expect(s.canInjectNow()).toBe(false);
    const c = continuation(1, EH);
    expect(s.fromServer(c, 0, 'boundary')).toBe(c.length);
    expect(s.canInjectNow()).toBe(true);
  });
});

describe("fromServer(…, 'ping-ack')", () => {
  it('stops right after the last octet of a server PING ACK', () => {
    const s = h2cSession();
    const { bytes, ends } = stream(data(1), ping(undefined, false), ping(undefined, true), data(1));
    expect(s.fromServer(bytes, 0, 'ping-ack')).toBe(ends[3]);
    expect(s.canInjectNow('ping-ack')).toBe(true);
    expect(s.fromServer(bytes, ends[3]!, 'ping-ack')).toBe(bytes.length);
    expect(s.canInjectNow('ping-ack')).toBe(false);
    expect(s.canInjectNow()).toBe(true);
  });

  it('a PING ACK at the very end of a chunk: returns chunk.length and canInjectNow says so', () => {
    const s = h2cSession();
    const p = ping(undefined, true);
    expect(s.fromServer(p, 0, 'ping-ack')).toBe(p.length);
    expect(s.canInjectNow('ping-ack')).toBe(true);
    const next = data(1);
    s.fromServer(next.subarray(0, 1), 0, 'ping-ack');
    expect(s.canInjectNow('ping-ack')).toBe(false);
  });

  it.each([
    ['the whole stream', 1],
    ['one octet at a time', 0],
  ])('finds the same ping-ack points in %s', (_name, whole) => {
    const { bytes, ends } = stream(
      ping(),
      ping(undefined, true),
      data(1),
      ping(undefined, true),
      ping(undefined, true),
      goaway(),
      ping(undefined, true),
    );
    const pieces = whole ? [bytes] : [...bytes].map((_, i) => bytes.subarray(i, i + 1));
    expect(sorted(injectionOffsets(h2cSession(), pieces, 'ping-ack'))).toEqual([
      ends[2],
      ends[4],
      ends[5],
    ]);
  });

  it('does not stop after a PING without ACK', () => {
    const s = h2cSession();
    const p = Buffer.concat([ping(), data(1)]);
    expect(s.fromServer(p, 0, 'ping-ack')).toBe(p.length);
  });
});

describe('canInjectNow and injected()', () => {
  it.each([
    ['mid frame header', data(1).subarray(0, 4), false],
    ['mid payload', data(1).subarray(0, 11), false],
    ['inside a header block', headers(1, 0), false],
    ['after a whole frame', data(1), true],
  ])('%s → %s', (_name, bytes, want) => {
    const s = h2cSession();
    s.fromServer(bytes, 0, 'none');
    expect(s.canInjectNow()).toBe(want);
  });

  it('injected() counts where allowed and throws where not', () => {
    const s = h2cSession();
    s.injected();
    expect(s.snapshot().injections).toBe(1);
    s.fromServer(data(1).subarray(0, 3), 0, 'none');
    expect(() => s.injected()).toThrow(/no injection point/);
    expect(() => newSession().injected()).toThrow(/no injection point/);
  });

  it.each([-1, 1.5, 100])('fromServer throws RangeError on offset %s', (offset) => {
    expect(() => h2cSession().fromServer(data(1), offset, 'none')).toThrow(RangeError);
  });

  it("'none' consumes everything", () => {
    const s = h2cSession();
    const { bytes } = stream(Buffer.alloc(3), data(1), ping(undefined, true), data(1));
    expect(s.fromServer(bytes, 3, 'none')).toBe(bytes.length);
    expect(s.snapshot().serverBytes).toBe(serverStart().length + bytes.length - 3);
    expect(s.mode).toBe('h2c');
  });
});
