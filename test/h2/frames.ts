/**
 * Test-only HTTP/2 frame encoder. Unlike src/h2/frame.ts it validates nothing, so tests can
 * build frames that break every rule on purpose.
 */
import { Buffer } from 'node:buffer';
import { CLIENT_PREFACE, Flag, FrameType } from '../../src/h2/frame.js';
import { H2Session } from '../../src/h2/session.js';

export const OUR_PING = Buffer.from('klp-ping', 'latin1');
export const FOREIGN_PING = Buffer.from('grpc-kap', 'latin1');

/** Any frame. `payload` is the payload itself or its length (filled with a 0xa5 pattern). */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: number | Uint8Array = 0,
  reservedBit = false,
): Buffer {
  const body = typeof payload === 'number' ? Buffer.alloc(payload, 0xa5) : Buffer.from(payload);
  const out = Buffer.alloc(9 + body.length);
  out.writeUIntBE(body.length, 0, 3);
  out.writeUInt8(type, 3);
  out.writeUInt8(flags, 4);
  out.writeUInt32BE(((reservedBit ? 0x80000000 : 0) | streamId) >>> 0, 5);
  body.copy(out, 9);
  return out;
}

export const settings = (entries = 0): Buffer => frame(FrameType.SETTINGS, 0, 0, entries * 6);
export const settingsAck = (): Buffer => frame(FrameType.SETTINGS, Flag.ACK, 0, 0);
export const headers = (id: number, flags: number = Flag.END_HEADERS, length = 3): Buffer =>
  frame(FrameType.HEADERS, flags, id, length);
export const continuation = (id: number, flags: number = Flag.END_HEADERS, length = 2): Buffer =>
  frame(FrameType.CONTINUATION, flags, id, length);
export const data = (id: number, flags: number = 0, length = 5): Buffer =>
  frame(FrameType.DATA, flags, id, length);
export const rst = (id: number): Buffer => frame(FrameType.RST_STREAM, 0, id, 4);
export const ping = (payload: Uint8Array = FOREIGN_PING, ack = false): Buffer =>
  frame(FrameType.PING, ack ? Flag.ACK : 0, 0, payload);
export const goaway = (debug = 0): Buffer => frame(FrameType.GOAWAY, 0, 0, 8 + debug);
export const windowUpdate = (id = 0): Buffer => frame(FrameType.WINDOW_UPDATE, 0, id, 4);
export const priority = (id: number): Buffer => frame(FrameType.PRIORITY, 0, id, 5);
export const pushPromise = (id: number, flags: number = Flag.END_HEADERS, length = 6): Buffer =>
  frame(FrameType.PUSH_PROMISE, flags, id, length);

/** What an h2c client sends first: the preface and its SETTINGS (RFC 9113 §3.4). */
export const clientStart = (): Buffer => Buffer.concat([CLIENT_PREFACE, settings(2)]);
/** What an h2c server sends first: its SETTINGS. */
export const serverStart = (): Buffer => settings(3);

export function newSession(maxTrackedStreams?: number): H2Session {
  return new H2Session(
    maxTrackedStreams === undefined
      ? { pingPayload: OUR_PING }
      : { pingPayload: OUR_PING, maxTrackedStreams },
  );
}

/** A session that has seen both openings and is h2c. */
export function h2cSession(maxTrackedStreams?: number): H2Session {
  const s = newSession(maxTrackedStreams);
  s.fromClient(clientStart());
  s.fromServer(serverStart(), 0, 'none');
  if (s.mode !== 'h2c') throw new Error(`test setup: expected h2c, got ${s.mode}`);
  return s;
}

/** What fromClient said to forward, as one buffer. */
export function joined(out: Buffer | readonly Buffer[]): Buffer {
  return Buffer.isBuffer(out) ? out : Buffer.concat(out as readonly Buffer[]);
}

/** Cuts `bytes` at the given offsets (sorted, deduplicated, inside 1..length-1). */
export function cut(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    pieces.push(bytes.subarray(from, p));
    from = p;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

/** Every way to cut `bytes` in two, plus one byte at a time. */
export function everySplit(bytes: Buffer): Buffer[][] {
  const ways: Buffer[][] = [];
  for (let i = 1; i < bytes.length; i++) ways.push(cut(bytes, [i]));
  ways.push(
    cut(
      bytes,
      Array.from({ length: bytes.length }, (_, i) => i),
    ),
  );
  return ways;
}

/** Feeds client pieces; returns everything fromClient said to forward, in order. */
export function feedClient(s: H2Session, pieces: readonly Buffer[]): Buffer {
  return Buffer.concat(pieces.map((p) => joined(s.fromClient(p))));
}

/** Feeds server pieces with stopAt 'none'. */
export function feedServer(s: H2Session, pieces: readonly Buffer[] | Buffer): void {
  for (const p of Buffer.isBuffer(pieces) ? [pieces] : pieces) {
    const reached = s.fromServer(p, 0, 'none');
    if (reached !== p.length) throw new Error(`fromServer('none') stopped at ${reached}`);
  }
}

/**
 * Feeds server pieces stopping at every injection point of kind `point`; returns the offsets
 * (from the start of the server stream) where an injection could have gone out, as the proxy
 * would see them: stops inside a chunk, and chunk ends where canInjectNow(point) holds.
 */
export function injectionOffsets(
  s: H2Session,
  pieces: readonly Buffer[],
  point: 'boundary' | 'ping-ack',
  base = 0,
  into = new Set<number>(),
): Set<number> {
  let at = base;
  for (const p of pieces) {
    let off = 0;
    while (true) {
      const reached = s.fromServer(p, off, point);
      if (reached < p.length && !s.canInjectNow(point)) {
        throw new Error(`stopped at ${reached} where canInjectNow('${point}') is false`);
      }
      if (s.canInjectNow(point)) into.add(at + reached);
      if (reached >= p.length) break;
      // Move one octet past the stop without injecting.
      s.fromServer(p.subarray(0, reached + 1), reached, 'none');
      off = reached + 1;
    }
    at += p.length;
  }
  return into;
}
