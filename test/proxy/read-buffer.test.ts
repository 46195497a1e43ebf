import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedReadBuffer, upstreamReads } from '../../src/proxy/read-buffer.js';
import { waitFor } from '../support/backends.js';
import { startTestDaemon } from '../support/daemon.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file: 127.0.61.0/24.
const VIP = '127.0.61.50';
const BACKEND = '127.0.61.11';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

/** The bytes the backend sends on connection `id`: a pattern no other connection sends. */
function pattern(id: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += 4) b.writeUInt32BE((i * 2654435761 + id * 40503) >>> 0, i);
  return b;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function listen(host: string, onConn: (s: Socket) => void): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    onConn(s);
  });
  server.listen({ host, port: 9000 });
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return server;
}

/** A connected pair of real sockets on 127.0.61.20; `far` is the accepted end. */
async function socketPair(): Promise<{ near: Socket; far: Socket }> {
  let far!: Socket;
  const server = createServer((s) => (far = s));
  server.listen({ host: '127.0.61.20', port: 0 });
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const near = connect({ host: '127.0.61.20', port });
  await once(near, 'connect');
  await waitFor('accepted', () => far !== undefined);
  cleanups.push(() => {
    near.destroy();
    far.destroy();
    return new Promise((r) => server.close(r));
  });
  return { near, far };
}

describe('shared read buffer', () => {
  it('lends a buffer whose bytes a write still holds, and puts them back when another read lands there', async () => {
    const reads = new SharedReadBuffer();
    const { near: dest, far } = await socketPair();
    far.pause();
    // Fill the destination until writes queue (its reader never reads).
    const filler = Buffer.alloc(1 << 20);
    for (let i = 0; i < 64 && dest.writableLength === 0; i++) dest.write(filler);
    expect(dest.writableLength).toBeGreaterThan(0);

    // A read of 1,000 bytes into the current buffer, written to `dest` behind the queued bytes.
    const buf = reads.next() as Buffer;
    buf.fill(7, 0, 1000);
    const chunk = reads.take(1000, buf);
    expect(chunk.buffer).toBe(buf.buffer);
    const before = dest.writableLength;
    dest.write(chunk);
    reads.settle(chunk, buf, dest, before);
    expect(reads.lends).toBe(1);
    expect(reads.next()).not.toBe(buf);

    // Another socket was given `buf` before the lend and reads 300 bytes into it.
    buf.fill(9, 0, 300);
    const copy = reads.take(300, buf);
    expect(copy.buffer).not.toBe(buf.buffer);
    expect([...copy].every((b) => b === 9)).toBe(true);
    // The queued bytes are whole again.
    expect([...buf.subarray(0, 1000)].every((b) => b === 7)).toBe(true);
    expect(reads.copies).toBe(1);

    // Once the destination has sent everything, the buffer is free: reads are views again.
    far.resume();
    await waitFor('destination flushed', () => dest.writableLength === 0);
    const view = reads.take(10, buf);
    expect(view.buffer).toBe(buf.buffer);
    expect(reads.copies).toBe(1);

    // The next lend reuses that buffer instead of allocating one.
    far.pause();
    for (let i = 0; i < 64 && dest.writableLength === 0; i++) dest.write(filler);
    const buf2 = reads.next() as Buffer;
    const chunk2 = reads.take(500, buf2);
    const before2 = dest.writableLength;
    dest.write(chunk2);
    reads.settle(chunk2, buf2, dest, before2);
    expect(reads.lends).toBe(2);
    expect(reads.next()).toBe(buf);
  });

  it('does not lend when the write went out whole', async () => {
    const reads = new SharedReadBuffer();
    const { near: dest } = await socketPair();
    const buf = reads.next() as Buffer;
    const chunk = reads.take(100, buf);
    dest.write(chunk);
    reads.settle(chunk, buf, dest, 0);
    expect(reads.lends).toBe(0);
    expect(reads.next()).toBe(buf);
  });

  it('clients that stop reading get their own server bytes, byte for byte, after the proxy paused', async () => {
    // More than the kernel buffers on both sides of the proxy hold, so that the proxy must queue
    // and pause the server.
    const SIZE = 16 << 20;
    const N = 4;
    // The client names its stream with its first byte; the server answers with that pattern.
    await listen(BACKEND, (s) => {
      s.once('data', (first: Buffer) => s.end(pattern(first[0] as number, SIZE)));
    });
    // The data path on this thread (`workers: 0`), so that the test sees its connections and its
    // read buffer; the code is the same in a worker thread.
    const d = await startTestDaemon(
      [
        service('bulk', { clusterIP: VIP, ports: [{ name: 'tcp', port: 8080 }] }),
        endpointSlice('bulk-1', [BACKEND], {
          service: 'bulk',
          ports: [{ name: 'tcp', port: 9000 }],
        }),
      ],
      { workers: 0 },
    );
    cleanups.push(() => d.stop());
    const lendsBefore = upstreamReads.lends;

    const clients = await Promise.all(
      Array.from({ length: N }, async (_, id) => {
        const s = connect({ host: VIP, port: 8080 });
        cleanups.push(() => s.destroy());
        await once(s, 'connect');
        s.write(Buffer.from([id]));
        return s;
      }),
    );
    // Nobody reads yet: every connection fills up and the proxy pauses its server side, with
    // bytes of the shared buffer queued on the client side.
    const conns = () => [...(d.daemon.proxier.get('default/bulk:tcp')?.connections ?? [])];
    await waitFor('every server side paused', () => {
      const open = conns();
      return open.length === N && open.every((c) => c.upstream?.isPaused() === true);
    });
    expect(upstreamReads.lends).toBeGreaterThan(lendsBefore);

    const digests = await Promise.all(
      clients.map(async (s) => {
        const h = createHash('sha256');
        let n = 0;
        s.on('data', (c: Buffer) => {
          h.update(c);
          n += c.length;
        });
        await once(s, 'end');
        return { n, digest: h.digest('hex') };
      }),
    );
    digests.forEach(({ n, digest }, id) => {
      expect(n).toBe(SIZE);
      expect(digest).toBe(sha(pattern(id, SIZE)));
    });
  });
});
