import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { Flag, FrameType } from '../../src/h2/frame.js';
import {
  continuation,
  data,
  frame,
  goaway,
  h2cSession,
  headers,
  ping,
  priority,
  pushPromise,
  rst,
  windowUpdate,
} from './frames.js';

const ES = Flag.END_STREAM;
const EH = Flag.END_HEADERS;

type Step = readonly ['c' | 's', Buffer];
interface Expect {
  open: number;
  normal: number;
  reset: number;
  highest: number;
}

const scenarios: ReadonlyArray<readonly [string, readonly Step[], Expect]> = [
  [
    'client HEADERS opens a stream',
    [['c', headers(1)]],
    { open: 1, normal: 0, reset: 0, highest: 1 },
  ],
  [
    'END_STREAM both ways closes it normally',
    [
      ['c', headers(1, EH | ES)],
      ['s', headers(1)],
      ['s', data(1, ES)],
    ],
    { open: 0, normal: 1, reset: 0, highest: 1 },
  ],
  [
    'server END_STREAM first, then client END_STREAM',
    [
      ['c', headers(3)],
      ['s', headers(3, EH | ES)],
      ['c', data(3, ES)],
    ],
    { open: 0, normal: 1, reset: 0, highest: 3 },
  ],
  [
    'END_STREAM from the client alone leaves it open',
    [
      ['c', headers(1)],
      ['c', data(1, ES)],
    ],
    { open: 1, normal: 0, reset: 0, highest: 1 },
  ],
  [
    'server trailers (HEADERS with END_STREAM) close the server half',
    [
      ['c', headers(1, EH | ES)],
      ['s', headers(1)],
      ['s', data(1)],
      ['s', headers(1, EH | ES)],
    ],
    { open: 0, normal: 1, reset: 0, highest: 1 },
  ],
  [
    'RST_STREAM from the client closes it by reset',
    [
      ['c', headers(1)],
      ['c', rst(1)],
    ],
    { open: 0, normal: 0, reset: 1, highest: 1 },
  ],
  [
    'RST_STREAM from the server closes it by reset',
    [
      ['c', headers(1, EH | ES)],
      ['s', rst(1)],
    ],
    { open: 0, normal: 0, reset: 1, highest: 1 },
  ],
  [
    'RST_STREAM on an unknown or closed stream counts nothing',
    [
      ['c', headers(1)],
      ['c', rst(1)],
      ['s', rst(1)],
      ['s', rst(9)],
    ],
    { open: 0, normal: 0, reset: 1, highest: 1 },
  ],
  [
    'END_STREAM on HEADERS waits for the CONTINUATION with END_HEADERS (client)',
    [
      ['c', headers(1, ES)],
      ['c', continuation(1, 0)],
      ['s', headers(1)],
      ['s', data(1, ES)],
    ],
    { open: 1, normal: 0, reset: 0, highest: 1 },
  ],
  [
    'END_STREAM on HEADERS applies at the CONTINUATION with END_HEADERS (client)',
    [
      ['c', headers(1, ES)],
      ['c', continuation(1, 0)],
      ['c', continuation(1, EH)],
      ['s', headers(1)],
      ['s', data(1, ES)],
    ],
    { open: 0, normal: 1, reset: 0, highest: 1 },
  ],
  [
    'END_STREAM on server HEADERS applies at its CONTINUATION',
    [
      ['c', headers(1, EH | ES)],
      ['s', headers(1, ES)],
      ['s', continuation(1, EH)],
    ],
    { open: 0, normal: 1, reset: 0, highest: 1 },
  ],
  [
    'several streams, some open, some done',
    [
      ['c', headers(1, EH | ES)],
      ['c', headers(3)],
      ['c', headers(5, EH | ES)],
      ['s', headers(1, EH | ES)],
      ['s', rst(5)],
      ['c', headers(7)],
    ],
    { open: 2, normal: 1, reset: 1, highest: 7 },
  ],
  [
    'client HEADERS on a lower odd id (closed stream) opens nothing',
    [
      ['c', headers(5)],
      ['c', rst(5)],
      ['c', headers(3)],
      ['c', headers(5)],
    ],
    { open: 0, normal: 0, reset: 1, highest: 5 },
  ],
  [
    'client trailers on an open stream do not reopen or count twice',
    [
      ['c', headers(1)],
      ['c', data(1)],
      ['c', headers(1, EH | ES)],
      ['s', headers(1, EH | ES)],
    ],
    { open: 0, normal: 1, reset: 0, highest: 1 },
  ],
  [
    'server push: PUSH_PROMISE then HEADERS on an even id opens a half-closed stream',
    [
      ['c', headers(1, EH | ES)],
      ['s', pushPromise(1)],
      ['s', headers(2)],
    ],
    { open: 2, normal: 0, reset: 0, highest: 1 },
  ],
  [
    'server push ends with server END_STREAM alone',
    [
      ['c', headers(1, EH | ES)],
      ['s', pushPromise(1, 0)],
      ['s', continuation(1, EH)],
      ['s', headers(2)],
      ['s', data(2, ES)],
    ],
    { open: 1, normal: 1, reset: 0, highest: 1 },
  ],
  [
    'server HEADERS on an unknown odd id is ignored',
    [['s', headers(7, EH | ES)]],
    { open: 0, normal: 0, reset: 0, highest: 0 },
  ],
  [
    'frames that carry no stream state change nothing',
    [
      ['c', headers(1)],
      ['c', priority(1)],
      ['c', priority(99)],
      ['c', windowUpdate(1)],
      ['s', windowUpdate(0)],
      ['c', ping()],
      ['s', ping(undefined, true)],
      ['c', frame(0xb, 0xff, 1, 3)],
      ['s', frame(0x10, 0, 0, 0)],
      ['c', goaway()],
      ['c', data(99, ES)],
    ],
    { open: 1, normal: 0, reset: 0, highest: 1 },
  ],
  [
    'the reserved bit of the stream id is ignored',
    [
      ['c', frame(FrameType.HEADERS, EH | ES, 1, 3, true)],
      ['s', frame(FrameType.HEADERS, EH | ES, 1, 3, true)],
    ],
    { open: 0, normal: 1, reset: 0, highest: 1 },
  ],
  [
    'DATA with END_STREAM on a stream the client never opened is ignored',
    [['s', data(1, ES)]],
    { open: 0, normal: 0, reset: 0, highest: 0 },
  ],
];

describe('streams', () => {
  it.each(scenarios)('%s', (_name, steps, want) => {
    const s = h2cSession();
    for (const [side, bytes] of steps) {
      if (side === 'c') s.fromClient(bytes);
      else s.fromServer(bytes, 0, 'none');
    }
    expect(s.mode).toBe('h2c');
    expect({
      open: s.openStreams,
      normal: s.streamsEndedNormally,
      reset: s.streamsEndedByReset,
      highest: s.highestClientStreamId,
    }).toEqual(want);
  });

  it.each([
    ['client DATA END_STREAM', 'c', data(1, ES, 6)],
    ['server DATA END_STREAM', 's', data(1, ES, 6)],
    ['client RST_STREAM', 'c', rst(1)],
    ['server RST_STREAM', 's', rst(1)],
    ['server trailers HEADERS', 's', headers(1, EH | ES, 4)],
  ] as const)(
    'a stream stays open until the last octet of its closing frame (%s)',
    (_name, side, closing) => {
      const s = h2cSession();
      s.fromClient(headers(1));
      if (side === 'c') s.fromServer(headers(1, EH | ES), 0, 'none');
      else s.fromClient(data(1, ES));
      for (let i = 0; i < closing.length; i++) {
        expect(s.openStreams).toBe(1);
        const octet = closing.subarray(i, i + 1);
        if (side === 'c') s.fromClient(octet);
        else s.fromServer(octet, 0, 'none');
      }
      expect(s.openStreams).toBe(0);
    },
  );

  it('counts a stream open from its HEADERS frame header, before its payload', () => {
    const s = h2cSession();
    const h = headers(1, EH, 10);
    s.fromClient(h.subarray(0, 8));
    expect(s.openStreams).toBe(0);
    s.fromClient(h.subarray(8, 9));
    expect(s.openStreams).toBe(1);
    expect(s.highestClientStreamId).toBe(1);
  });

  it('counts client keepalive PINGs but not ACKs', () => {
    const s = h2cSession();
    s.fromClient(Buffer.concat([ping(), ping(), ping(undefined, true)]));
    s.fromServer(ping(), 0, 'none');
    expect(s.clientPingsSeen).toBe(2);
  });

  it.each([
    [1, 'h2c'],
    [2, 'h2c'],
    [3, 'opaque'],
  ] as const)('opening %i streams with maxTrackedStreams 2 → %s', (count, mode) => {
    const s = h2cSession(2);
    for (let i = 0; i < count; i++) s.fromClient(headers(2 * i + 1));
    expect(s.mode).toBe(mode);
    expect(s.openStreams).toBe(count);
    expect(s.opaqueReason).toBe(mode === 'opaque' ? 'too-many-streams' : undefined);
    expect(s.wasH2c).toBe(mode === 'opaque');
  });

  it('maxTrackedStreams counts open streams, not streams ever opened', () => {
    const s = h2cSession(2);
    for (let id = 1; id < 200; id += 2) {
      s.fromClient(headers(id, EH | ES));
      s.fromServer(headers(id, EH | ES), 0, 'none');
    }
    expect(s.mode).toBe('h2c');
    expect(s.streamsEndedNormally).toBe(100);
  });

  it('pushed streams count against maxTrackedStreams', () => {
    const s = h2cSession(2);
    s.fromClient(headers(1));
    s.fromServer(
      Buffer.concat([pushPromise(1), headers(2), pushPromise(1), headers(4)]),
      0,
      'none',
    );
    expect(s.opaqueReason).toBe('too-many-streams');
    expect(s.opaqueSide).toBe('server');
  });
});
