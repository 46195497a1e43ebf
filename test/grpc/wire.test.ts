import { randomBytes, createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect as tcpConnect, createServer } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_PREFACE, Flag, FrameType } from '../../src/h2/frame.js';
import { selfSignedCertificate } from '../support/apiserver/tls.js';
import { startTcpBackend, waitFor } from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';
import { endpointSlice, service } from '../support/objects.js';
import {
  continuation,
  data,
  frame,
  FrameRecorder,
  goaway,
  headers,
  ping,
  rawClient,
  rawServer,
  settings,
  type RawServer,
} from '../support/raw-h2.js';

// Addresses of this file: 127.0.6.0/24.
const VIP = '127.0.6.50';
const BACKEND = '127.0.6.11';
const objects = [
  service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] }),
  endpointSlice('echo-1', [BACKEND]),
];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function daemon(config: Parameters<typeof startTestDaemon>[1] = {}): Promise<TestDaemon> {
  const d = await startTestDaemon(objects, { maxConnectionAgeMs: 0, ...config });
  cleanups.push(() => d.stop());
  return d;
}

/**
 * Drains the one open connection now (the test seam of the daemon: the connection may live in
 * a worker thread).
 */
async function drainOnly(d: TestDaemon, reason: string, graceMs: number): Promise<void> {
  expect((await d.portStats('default/echo:grpc'))?.connections).toBe(1);
  d.daemon.drainEvery(reason, graceMs);
}

function server(onFrame: Parameters<typeof rawServer>[2]): Promise<RawServer> {
  return rawServer(BACKEND, 9000, onFrame).then((s) => {
    cleanups.push(() => s.close());
    return s;
  });
}

const counters = async (d: TestDaemon) => (await d.portStats('default/echo:grpc'))?.counters;

/**
 * One request from a raw client to a server that breaks HTTP/2 in its answer: the connection
 * is counted once as h2c, and once as a desync (a PING on a stream).
 */
async function expectH2cThenDesync(): Promise<void> {
  const d = await daemon();
  const c = await rawClient(VIP, 8080);
  cleanups.push(() => c.socket.destroy());
  c.send(headers(1, Flag.END_HEADERS | Flag.END_STREAM));
  await waitFor('desync', async () => ((await counters(d))?.desyncs.size ?? 0) === 1);
  expect([...((await counters(d))?.protocols ?? [])]).toEqual([['h2c', 1]]);
  expect([...((await counters(d))?.desyncs.keys() ?? [])]).toEqual(['stream-id']);
}

describe('GOAWAY injection on the wire', () => {
  it('never injects inside a header block split by CONTINUATION frames', async () => {
    const srv = await server((f, s) => {
      if (f.type !== FrameType.HEADERS) return;
      s.write(headers(f.streamId, 0)); // no END_HEADERS: the block stays open
      setTimeout(
        () =>
          s.write(
            Buffer.concat([
              continuation(f.streamId, Flag.END_HEADERS),
              data(f.streamId, Flag.END_STREAM),
            ]),
          ),
        300,
      );
    });
    const d = await daemon();
    const c = await rawClient(VIP, 8080);
    cleanups.push(() => c.socket.destroy());
    c.send(headers(1, Flag.END_HEADERS | Flag.END_STREAM));
    await c.waitFor('response HEADERS', (r) => r.frames.some((f) => f.type === FrameType.HEADERS));
    await drainOnly(d, 'endpoint_terminating', 5000);
    // The PING follows the GOAWAY: wait for it, the last frame expected.
    await c.waitFor('GOAWAY and PING', (r) => r.frames.some((f) => f.type === FrameType.PING));
    const types = c.received.types();
    // The GOAWAY may come at any frame boundary after the header block ends, never inside it.
    expect(types.slice(0, 3)).toEqual(['SETTINGS', 'HEADERS', 'CONTINUATION']);
    expect(types.filter((t) => t !== 'DATA')).toEqual([
      'SETTINGS',
      'HEADERS',
      'CONTINUATION',
      'GOAWAY',
      'PING',
    ]);
    const gw = c.received.frames.find((f) => f.type === FrameType.GOAWAY);
    expect(gw?.payload.readUInt32BE(0)).toBe(0x7fffffff);
    expect(gw?.payload.readUInt32BE(4)).toBe(0);
    expect(gw?.payload.subarray(8).toString()).toBe('kube-lc-proxy: endpoint_terminating');
    expect(srv.conns[0]?.received.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it('removes the ACK of its own PING, closes with FIN once streams end, and counts it graceful', async () => {
    const srv = await server((f, s) => {
      if (f.type === FrameType.HEADERS)
        setTimeout(
          () =>
            s.write(
              Buffer.concat([
                headers(f.streamId, Flag.END_HEADERS),
                data(f.streamId, Flag.END_STREAM),
              ]),
            ),
          200,
        );
    });
    const d = await daemon();
    const c = await rawClient(VIP, 8080);
    cleanups.push(() => c.socket.destroy());
    c.send(headers(1, Flag.END_HEADERS | Flag.END_STREAM));
    await waitFor(
      'stream open',
      async () => (await d.portStats('default/echo:grpc'))?.endpoints[0]?.openStreams === 1,
    );
    await drainOnly(d, 'max_age', 5000);
    await c.waitFor('PING', (r) => r.frames.some((f) => f.type === FrameType.PING));
    const ourPing = c.received.frames.find((f) => f.type === FrameType.PING);
    const ended = once(c.socket, 'end');
    // A client PING of its own and its answer pass through; the ACK of ours does not.
    c.send(ping(ourPing?.payload as Buffer, true), ping(Buffer.from('clientpg')));
    await ended; // FIN from the proxy after the stream ended
    const toServer = srv.conns[0]?.received.frames ?? [];
    expect(
      toServer.filter((f) => f.type === FrameType.PING).map((f) => [f.flags, f.payload.toString()]),
    ).toEqual([[0, 'clientpg']]);
    await waitFor(
      'drain counted',
      async () => (await counters(d))?.drainsEnded.get('graceful') === 1,
    );
    expect((await counters(d))?.drainedStreamsNormal).toBe(1);
  });

  it('never injects after the server sent its own GOAWAY', async () => {
    await server((f, s) => {
      if (f.type === FrameType.HEADERS)
        s.write(Buffer.concat([goaway(f.streamId), headers(f.streamId, Flag.END_HEADERS)]));
    });
    const d = await daemon({ drainGraceMs: 300 });
    const c = await rawClient(VIP, 8080);
    cleanups.push(() => c.socket.destroy());
    c.send(headers(1, Flag.END_HEADERS | Flag.END_STREAM));
    await c.waitFor('server GOAWAY', (r) => r.frames.some((f) => f.type === FrameType.GOAWAY));
    await waitFor('GOAWAY seen', async () => (await counters(d))?.serverGoaways === 1);
    await drainOnly(d, 'max_age', 300);
    await once(c.socket, 'close');
    expect(
      c.received.frames
        .filter((f) => f.type === FrameType.GOAWAY)
        .map((f) => f.payload.readUInt32BE(0)),
    ).toEqual([1]);
    await waitFor(
      'forced drain counted',
      async () => (await counters(d))?.drainsEnded.get('forced') === 1,
    );
  });

  it('a drain asked for before the first byte starts once the connection turns out to be h2c', async () => {
    // A server that stays silent until the client speaks: no byte at all before the drain.
    const srv = await rawServer(BACKEND, 9000, undefined, false);
    cleanups.push(() => srv.close());
    const d = await daemon();
    const s = tcpConnect({ host: VIP, port: 8080 });
    cleanups.push(() => s.destroy());
    await once(s, 'connect');
    await waitFor(
      'connection',
      async () => (await d.portStats('default/echo:grpc'))?.connections === 1,
    );
    const received = new FrameRecorder(false);
    s.on('data', (b: Buffer) => received.push(b));
    await drainOnly(d, 'endpoint_removed', 5000);
    s.write(Buffer.concat([CLIENT_PREFACE, settings()]));
    await waitFor('GOAWAY', () => received.frames.some((f) => f.type === FrameType.GOAWAY));
    expect((await counters(d))?.protocols.get('h2c')).toBe(1);
  });

  it('counts an h2c connection that loses sync once, as h2c plus a desync', async () => {
    await server((f, s) => {
      // A PING on a stream: no valid HTTP/2 peer sends that (RFC 9113 §6.7).
      if (f.type === FrameType.HEADERS) s.write(frame(FrameType.PING, 0, 1, Buffer.alloc(8)));
    });
    await expectH2cThenDesync();
  });

  it('counts h2c then the desync when both show in one chunk from the server', async () => {
    // The server's SETTINGS (detection) and a frame no HTTP/2 peer sends (loss of sync) in one
    // write: the proxy reads them together, and must still count the connection as h2c first.
    const server = createServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', () =>
        sock.write(Buffer.concat([settings(), frame(FrameType.PING, 0, 1, Buffer.alloc(8))])),
      );
    });
    server.listen({ host: BACKEND, port: 9000 });
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    await expectH2cThenDesync();
  });

  it('passes HTTP/1.1 through byte for byte and never drains it for age', async () => {
    const backend = await startTcpBackend(BACKEND, 9000, { greet: false });
    cleanups.push(() => backend.close());
    const d = await daemon({ maxConnectionAgeMs: 100 });
    const s = tcpConnect({ host: VIP, port: 8080 });
    cleanups.push(() => s.destroy());
    const req = Buffer.concat([
      Buffer.from('POST /x HTTP/1.1\r\nHost: echo\r\nContent-Length: 65536\r\n\r\n'),
      randomBytes(65536),
    ]);
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.write(req);
    await waitFor('echo', () => Buffer.concat(got).length === req.length);
    await new Promise((r) => setTimeout(r, 500)); // well past the max age
    s.write('more');
    await waitFor('more', () => Buffer.concat(got).length === req.length + 4);
    expect(Buffer.concat(got).equals(Buffer.concat([req, Buffer.from('more')]))).toBe(true);
    expect((await counters(d))?.protocols.get('opaque')).toBe(1);
    expect((await counters(d))?.drainsStarted.size).toBe(0);
  });

  it('passes TLS (ALPN h2) through untouched', async () => {
    const { key, cert } = await selfSignedCertificate(BACKEND);
    const seen: Buffer[] = [];
    const tls = createTlsServer({ key, cert, ALPNProtocols: ['h2'] }, (s) => {
      s.on('data', (b: Buffer) => {
        seen.push(b);
        s.write(createHash('sha256').update(b).digest());
      });
      s.on('error', () => {});
    });
    tls.listen({ host: BACKEND, port: 9000 });
    await once(tls, 'listening');
    cleanups.push(() => new Promise((r) => tls.close(r)));
    const d = await daemon({ maxConnectionAgeMs: 100 });
    const c = tlsConnect({
      host: VIP,
      port: 8080,
      ca: cert,
      servername: undefined,
      checkServerIdentity: () => undefined,
      ALPNProtocols: ['h2'],
    });
    cleanups.push(() => c.destroy());
    await once(c, 'secureConnect');
    expect(c.alpnProtocol).toBe('h2');
    const payload = randomBytes(1000);
    c.write(payload);
    const [digest] = (await once(c, 'data')) as [Buffer];
    expect(digest.equals(createHash('sha256').update(payload).digest())).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(c.destroyed).toBe(false);
    expect((await counters(d))?.protocols.get('opaque')).toBe(1);
    expect((await counters(d))?.drainsStarted.size).toBe(0);
  });
});
