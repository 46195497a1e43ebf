/**
 * Property tests in the style of undici test/fuzzing/: the same bytes, cut anywhere, must give
 * the same answers; garbage must never throw.
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CLIENT_PREFACE, Flag, FrameType } from '../../src/h2/frame.js';
import type { H2Session } from '../../src/h2/session.js';
import { conversation, cutter, runs, type Conversation, type Frame } from './conversation.js';
import {
  clientStart,
  injectionOffsets,
  joined,
  newSession,
  OUR_PING,
  ping,
  serverStart,
} from './frames.js';

type Cut = ((bytes: Buffer) => Buffer[]) | undefined;
const sorted = (set: Set<number>): number[] => [...set].sort((a, b) => a - b);
const splitting = fc.tuple(
  fc.integer(),
  fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 200 })),
);

/** Feeds a conversation run by run (each run cut by `cut`), as the proxy would. */
function play(conv: Conversation, cut: Cut, point: 'boundary' | 'ping-ack') {
  const s = newSession();
  const offsets = new Set<number>();
  const forwarded: Buffer[] = [];
  let serverAt = 0;
  for (const run of runs(conv.frames)) {
    const pieces = cut ? cut(run.bytes) : [run.bytes];
    if (run.side === 'c') {
      for (const p of pieces) forwarded.push(joined(s.fromClient(p)));
      // The client preface can make an already reached server boundary injectable.
      if (s.canInjectNow(point)) offsets.add(serverAt);
    } else {
      injectionOffsets(s, pieces, point, serverAt, offsets);
      serverAt += run.bytes.length;
    }
  }
  return { snapshot: s.snapshot(), offsets: sorted(offsets), clientOut: Buffer.concat(forwarded) };
}

/** Indexes where a frame may be inserted without landing inside a header block. */
function outsideHeaderBlocks(frames: readonly Frame[]): number[] {
  const safe = [0];
  let open = false;
  frames.forEach((f, i) => {
    const type = f.bytes[3];
    const endHeaders = (f.bytes[4]! & Flag.END_HEADERS) !== 0;
    if (
      type === FrameType.HEADERS ||
      type === FrameType.PUSH_PROMISE ||
      type === FrameType.CONTINUATION
    ) {
      open = !endHeaders;
    }
    if (!open) safe.push(i + 1);
  });
  return safe;
}

const clientBytes = (frames: readonly Frame[]): Buffer =>
  Buffer.concat(frames.filter((f) => f.side === 'c').map((f) => f.bytes));

describe('property: a valid conversation gives the same state however it is cut', () => {
  it('same snapshot and injection points whole and cut, and both match the model', () => {
    fc.assert(
      fc.property(conversation(), splitting, (conv, [seed, maxPiece]) => {
        for (const point of ['boundary', 'ping-ack'] as const) {
          const whole = play(conv, undefined, point);
          const split = play(conv, cutter(seed, maxPiece), point);
          expect(split.snapshot).toEqual(whole.snapshot);
          expect(split.offsets).toEqual(whole.offsets);
          expect(whole.offsets).toEqual(
            point === 'boundary' ? conv.expected.boundaryOffsets : conv.expected.pingAckOffsets,
          );
          expect(split.clientOut.equals(clientBytes(conv.frames))).toBe(true);
        }
        const { snapshot } = play(conv, undefined, 'boundary');
        const e = conv.expected;
        expect(snapshot).toMatchObject({
          mode: 'h2c',
          openStreams: e.openStreams,
          highestClientStreamId: e.highestClientStreamId,
          streamsEndedNormally: e.streamsEndedNormally,
          streamsEndedByReset: e.streamsEndedByReset,
          clientPingsSeen: e.clientPingsSeen,
          serverGoawaySeen: e.serverGoawaySeen,
          heldBytes: 0,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('feeding each side whole, one after the other, equals feeding it cut', () => {
    fc.assert(
      fc.property(conversation(), splitting, (conv, [seed, maxPiece]) => {
        const cut = cutter(seed, maxPiece);
        const feed = (c: Cut): H2Session => {
          const s = newSession();
          for (const side of ['c', 's'] as const) {
            const bytes = Buffer.concat(
              conv.frames.filter((f) => f.side === side).map((f) => f.bytes),
            );
            for (const p of c ? c(bytes) : [bytes]) {
              if (side === 'c') s.fromClient(p);
              else expect(s.fromServer(p, 0, 'none')).toBe(p.length);
            }
          }
          return s;
        };
        expect(feed(cut).snapshot()).toEqual(feed(undefined).snapshot());
      }),
    );
  });
});

describe('property: garbage never throws', () => {
  const isPrefacePrefix = (b: Uint8Array): boolean =>
    b.length <= CLIENT_PREFACE.length &&
    Buffer.from(b).equals(CLIENT_PREFACE.subarray(0, b.length));

  it('random client bytes pass through unchanged and end opaque unless they are the preface', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), splitting, (bytes, [seed, maxPiece]) => {
        const s = newSession();
        const input = Buffer.from(bytes);
        const out = Buffer.concat(
          cutter(seed, maxPiece)(input).map((p) => joined(s.fromClient(p))),
        );
        expect(out.equals(input)).toBe(true);
        if (!isPrefacePrefix(bytes)) {
          expect(s.mode).toBe('opaque');
          expect(s.opaqueReason).toBe('not-h2-preface');
        }
      }),
    );
  });

  it('random bytes after valid openings, on both sides, with random injections', () => {
    const stop = fc.constantFrom('none', 'boundary', 'ping-ack' as const);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.uint8Array({ maxLength: 400 }),
        splitting,
        fc.array(fc.tuple(stop, fc.boolean()), { minLength: 1, maxLength: 20 }),
        (c, sv, [seed, maxPiece], choices) => {
          const s = newSession();
          const cut = cutter(seed, maxPiece);
          const clientIn = Buffer.concat([clientStart(), c]);
          const clientOut: Buffer[] = [];
          for (const p of cut(clientIn)) clientOut.push(joined(s.fromClient(p)));
          let i = 0;
          for (const p of cut(Buffer.concat([serverStart(), sv]))) {
            let off = 0;
            while (off < p.length) {
              const [point, inject] = choices[i++ % choices.length]!;
              const next = s.fromServer(p, off, point);
              expect(next).toBeGreaterThanOrEqual(off);
              expect(next).toBeLessThanOrEqual(p.length);
              if (inject && s.canInjectNow()) s.injected();
              // Step past a stop so the loop always progresses.
              off = next === off ? s.fromServer(p.subarray(0, off + 1), off, 'none') : next;
            }
          }
          const again = Buffer.from(c);
          for (const p of cut(again)) clientOut.push(joined(s.fromClient(p)));
          clientOut.push(s.releaseHeld() ?? Buffer.alloc(0));
          if (s.snapshot().ourPingAcksRemoved === 0) {
            expect(Buffer.concat(clientOut).equals(Buffer.concat([clientIn, again]))).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a valid conversation with random octets flipped never throws', () => {
    fc.assert(
      fc.property(
        conversation(20),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        splitting,
        (conv, flips, [seed, maxPiece]) => {
          const frames = conv.frames.map((f) => ({ ...f, bytes: Buffer.from(f.bytes) }));
          for (const [at, mask] of flips) {
            const f = frames[at % frames.length]!;
            const k = Math.floor(at / frames.length) % f.bytes.length;
            f.bytes[k] = f.bytes[k]! ^ mask;
          }
          const s = newSession();
          const cut = cutter(seed, maxPiece);
          for (const run of runs(frames)) {
            for (const p of cut(run.bytes)) {
              if (run.side === 'c') s.fromClient(p);
              else expect(s.fromServer(p, 0, 'boundary')).toBeLessThanOrEqual(p.length);
            }
            if (s.canInjectNow()) s.injected();
          }
          expect(['detecting', 'h2c', 'opaque']).toContain(s.mode);
        },
      ),
    );
  });
});

describe('property: fromClient forwards the input minus exactly our PING ACKs', () => {
  it('whatever the split and wherever injection happens', () => {
    fc.assert(
      fc.property(
        conversation(30),
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 4 }),
        fc.nat(),
        splitting,
        (conv, inserts, injectSeed, [seed, maxPiece]) => {
          // Client frames after the opening, with our ACKs (and foreign ones) sprinkled in.
          const frames = conv.frames.filter((f) => f.side === 'c').slice(1);
          for (const [at, ours] of inserts) {
            const bytes = ours ? ping(OUR_PING, true) : ping(undefined, true);
            // Only between header blocks: a PING inside one is invalid (RFC 9113 §6.10).
            const safe = outsideHeaderBlocks(frames);
            const where = safe[at % safe.length]!;
            frames.splice(
              where,
              0,
              ours ? { side: 'c', bytes, ourAck: true } : { side: 'c', bytes },
            );
          }
          const start = clientStart();
          const input = Buffer.concat([start, ...frames.map((f) => f.bytes)]);
          // Injection may happen anywhere once the preface is through, even mid-frame.
          const injectAt =
            CLIENT_PREFACE.length + (injectSeed % (input.length - CLIENT_PREFACE.length + 1));
          let at = start.length;
          const expected: Buffer[] = [start];
          for (const f of frames) {
            if (!(f.ourAck === true && at >= injectAt)) expected.push(f.bytes);
            at += f.bytes.length;
          }

          const s = newSession();
          s.fromServer(serverStart(), 0, 'none');
          const cut = cutter(seed, maxPiece);
          const out: Buffer[] = [];
          const feed = (bytes: Buffer): void => {
            for (const p of cut(bytes)) {
              const r = s.fromClient(p);
              if (Buffer.isBuffer(r)) expect(r).toBe(p);
              out.push(joined(r));
            }
          };
          feed(input.subarray(0, injectAt));
          s.injected();
          feed(input.subarray(injectAt));
          expect(Buffer.concat(out).equals(Buffer.concat(expected))).toBe(true);
          expect(s.heldBytes).toBe(0);
          expect(s.snapshot().ourPingAcksRemoved).toBe(frames.length + 1 - expected.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
