/**
 * Random valid h2c conversations for property tests, with the state a correct tracker must end
 * in, computed by a deliberately simple model (frame granularity, no byte plumbing).
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { Flag, FrameType } from '../../src/h2/frame.js';
import { clientStart, FOREIGN_PING, frame, OUR_PING, serverStart } from './frames.js';

export type Side = 'c' | 's';

/** One frame of a conversation, in the order the proxy sees them. */
export interface Frame {
  side: Side;
  bytes: Buffer;
  /** This is a client PING ACK carrying our payload. */
  ourAck?: boolean;
}

export interface Expected {
  openStreams: number;
  highestClientStreamId: number;
  streamsEndedNormally: number;
  streamsEndedByReset: number;
  clientPingsSeen: number;
  serverGoawaySeen: boolean;
  /** Server-stream offsets where a 'boundary' injection may go out. */
  boundaryOffsets: number[];
  /** Server-stream offsets right after a server PING ACK where injection may go out. */
  pingAckOffsets: number[];
}

export interface Conversation {
  frames: Frame[];
  expected: Expected;
}

const side = fc.constantFrom<Side>('c', 's');
const len = fc.integer({ min: 0, max: 24 });

/** Abstract actions; the builder turns each into zero or more frames that are valid there. */
const action = fc.oneof(
  fc.record({
    kind: fc.constant('open' as const),
    endStream: fc.boolean(),
    conts: fc.integer({ min: 0, max: 2 }),
    padded: fc.boolean(),
    prio: fc.boolean(),
    len,
  }),
  fc.record({
    kind: fc.constant('respond' as const),
    pick: fc.nat(),
    endStream: fc.boolean(),
    conts: fc.integer({ min: 0, max: 2 }),
    len,
  }),
  fc.record({
    kind: fc.constant('data' as const),
    side,
    pick: fc.nat(),
    endStream: fc.boolean(),
    padded: fc.boolean(),
    len: fc.oneof(len, fc.integer({ min: 0, max: 70_000 })),
  }),
  fc.record({ kind: fc.constant('rst' as const), side, pick: fc.nat() }),
  fc.record({
    kind: fc.constant('ping' as const),
    side,
    ack: fc.boolean(),
    ours: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('push' as const), pick: fc.nat(), conts: fc.nat(2), len }),
  fc.record({
    kind: fc.constant('other' as const),
    side,
    type: fc.constantFrom(
      FrameType.PRIORITY,
      FrameType.WINDOW_UPDATE,
      FrameType.SETTINGS,
      0xa,
      0x10,
      0xff,
    ),
    ack: fc.boolean(),
    stream: fc.integer({ min: 0, max: 40 }),
    len,
  }),
  fc.record({ kind: fc.constant('goaway' as const), side, len }),
);

const CLIENT = 1;
const SERVER = 2;

/** Builds frames and the model's expected end state from abstract actions. */
function build(serverFirst: boolean, actions: readonly Action[]): Conversation {
  const frames: Frame[] = [];
  const streams = new Map<number, number>();
  let highest = 0;
  let nextPush = 2;
  let normal = 0;
  let reset = 0;
  let clientPings = 0;
  let goaway = false;
  let serverAt = 0;
  const boundaries: number[] = [];
  const pingAcks: number[] = [];

  const emit = (s: Side, bytes: Buffer, ourAck = false): void => {
    frames.push(ourAck ? { side: s, bytes, ourAck } : { side: s, bytes });
    if (s === 's') serverAt += bytes.length;
  };
  const boundary = (): void => {
    if (!goaway) boundaries.push(serverAt);
  };
  const closeHalf = (id: number, half: number): void => {
    const v = streams.get(id);
    if (v === undefined) return;
    if ((v | half) === (CLIENT | SERVER)) {
      streams.delete(id);
      normal++;
    } else streams.set(id, v | half);
  };
  const pickStream = (pick: number, ok: (v: number, id: number) => boolean): number => {
    const ids = [...streams].filter(([id, v]) => ok(v, id)).map(([id]) => id);
    return ids.length === 0 ? 0 : ids[pick % ids.length]!;
  };
  /** HEADERS (+ CONTINUATIONs): END_STREAM on the HEADERS, END_HEADERS on the last frame. */
  const headerBlock = (
    s: Side,
    type: number,
    id: number,
    es: boolean,
    conts: number,
    n: number,
    extraFlags = 0,
    minLen = 0,
  ): void => {
    const first = (conts === 0 ? Flag.END_HEADERS : 0) | (es ? Flag.END_STREAM : 0) | extraFlags;
    emit(s, frame(type, first, id, minLen + n));
    for (let i = 0; i < conts; i++) {
      emit(s, frame(FrameType.CONTINUATION, i === conts - 1 ? Flag.END_HEADERS : 0, id, n));
    }
  };

  const openers: Array<() => void> = [
    () => emit('c', clientStart()),
    () => {
      emit('s', serverStart());
      boundary();
    },
  ];
  if (serverFirst) openers.reverse();
  for (const o of openers) o();

  for (const a of actions) {
    switch (a.kind) {
      case 'open': {
        const id = highest === 0 ? 1 : highest + 2;
        highest = id;
        streams.set(id, 0);
        const extra = (a.padded ? Flag.PADDED : 0) | (a.prio ? Flag.PRIORITY : 0);
        const min = (a.padded ? 1 : 0) + (a.prio ? 5 : 0);
        headerBlock('c', FrameType.HEADERS, id, a.endStream, a.conts, a.len, extra, min);
        if (a.endStream) closeHalf(id, CLIENT);
        break;
      }
      case 'respond': {
        const id = pickStream(a.pick, (v, i) => (i & 1) === 1 && (v & SERVER) === 0);
        if (id === 0) break;
        headerBlock('s', FrameType.HEADERS, id, a.endStream, a.conts, a.len);
        if (a.endStream) closeHalf(id, SERVER);
        boundary();
        break;
      }
      case 'data': {
        const half = a.side === 'c' ? CLIENT : SERVER;
        const id = pickStream(a.pick, (v) => (v & half) === 0);
        if (id === 0) break;
        const flags = (a.endStream ? Flag.END_STREAM : 0) | (a.padded ? Flag.PADDED : 0);
        emit(a.side, frame(FrameType.DATA, flags, id, a.len + (a.padded ? 1 : 0)));
        if (a.endStream) closeHalf(id, half);
        if (a.side === 's') boundary();
        break;
      }
      case 'rst': {
        const id = pickStream(a.pick, () => true);
        if (id === 0) break;
        emit(a.side, frame(FrameType.RST_STREAM, 0, id, 4));
        streams.delete(id);
        reset++;
        if (a.side === 's') boundary();
        break;
      }
      case 'ping': {
        const payload = a.ours && a.side === 'c' ? OUR_PING : FOREIGN_PING;
        emit(
          a.side,
          frame(FrameType.PING, a.ack ? Flag.ACK : 0, 0, payload),
          a.ours && a.ack && a.side === 'c',
        );
        if (a.side === 'c' && !a.ack) clientPings++;
        if (a.side === 's') {
          if (a.ack && !goaway) pingAcks.push(serverAt);
          boundary();
        }
        break;
      }
      case 'push': {
        const parent = pickStream(a.pick, (v, i) => (i & 1) === 1 && (v & SERVER) === 0);
        if (parent === 0) break;
        headerBlock('s', FrameType.PUSH_PROMISE, parent, false, a.conts, a.len, 0, 4);
        boundary();
        const id = nextPush;
        nextPush += 2;
        streams.set(id, CLIENT);
        emit('s', frame(FrameType.HEADERS, Flag.END_HEADERS, id, a.len));
        boundary();
        break;
      }
      case 'other': {
        let bytes: Buffer;
        if (a.type === FrameType.PRIORITY) bytes = frame(a.type, 0, a.stream + 1, 5);
        else if (a.type === FrameType.WINDOW_UPDATE) bytes = frame(a.type, 0, a.stream, 4);
        else if (a.type === FrameType.SETTINGS) {
          bytes = a.ack ? frame(a.type, Flag.ACK, 0, 0) : frame(a.type, 0, 0, 6 * (a.len % 4));
        } else bytes = frame(a.type, a.ack ? 0xff : 0, a.stream, a.len);
        emit(a.side, bytes);
        if (a.side === 's') boundary();
        break;
      }
      case 'goaway': {
        if (a.side === 's') goaway = true;
        emit(a.side, frame(FrameType.GOAWAY, 0, 0, 8 + a.len));
        break;
      }
    }
  }
  return {
    frames,
    expected: {
      openStreams: streams.size,
      highestClientStreamId: highest,
      streamsEndedNormally: normal,
      streamsEndedByReset: reset,
      clientPingsSeen: clientPings,
      serverGoawaySeen: goaway,
      boundaryOffsets: [...new Set(boundaries)].sort((a, b) => a - b),
      pingAckOffsets: pingAcks,
    },
  };
}

type Action = typeof action extends fc.Arbitrary<infer T> ? T : never;

/** A valid conversation: either side may open first, then up to `maxActions` actions. */
export function conversation(maxActions = 40): fc.Arbitrary<Conversation> {
  return fc
    .tuple(fc.boolean(), fc.array(action, { maxLength: maxActions }))
    .map(([serverFirst, actions]) => build(serverFirst, actions));
}

/** Maximal runs of consecutive frames from the same side, as one buffer each. */
export function runs(frames: readonly Frame[]): Array<{ side: Side; bytes: Buffer }> {
  const out: Array<{ side: Side; parts: Buffer[] }> = [];
  for (const f of frames) {
    const last = out[out.length - 1];
    if (last !== undefined && last.side === f.side) last.parts.push(f.bytes);
    else out.push({ side: f.side, parts: [f.bytes] });
  }
  return out.map((r) => ({ side: r.side, bytes: Buffer.concat(r.parts) }));
}

/** Deterministic pseudo-random cutter (mulberry32): pieces of 1..maxPiece octets. */
export function cutter(seed: number, maxPiece: number): (bytes: Buffer) => Buffer[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (bytes) => {
    const pieces: Buffer[] = [];
    let at = 0;
    while (at < bytes.length) {
      const n = 1 + Math.floor(next() * maxPiece);
      pieces.push(bytes.subarray(at, at + n));
      at += n;
    }
    return pieces.length === 0 ? [bytes] : pieces;
  };
}
