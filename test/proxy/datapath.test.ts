import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/proxy/connection.js';
import {
  connectGreeted,
  startTcpBackend,
  waitFor,
  type GreetedClient,
  type TcpBackend,
} from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';
import type { DaemonConfig } from '../../src/daemon/daemon.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file: 127.0.2.0/24.
const VIP = '127.0.2.50';
const ips = (n: number) => Array.from({ length: n }, (_, i) => `127.0.2.${11 + i}`);
const svc = service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function setup(
  backendIps = ips(2),
  config: Partial<DaemonConfig> = {},
): Promise<{ d: TestDaemon; backends: TcpBackend[] }> {
  const backends = await Promise.all(backendIps.map((ip) => startTcpBackend(ip, 9000)));
  cleanups.push(() => Promise.all(backends.map((b) => b.close())));
  const d = await startTestDaemon([svc, endpointSlice('echo-1', backendIps)], config);
  cleanups.push(() => d.stop());
  return { d, backends };
}

/**
 * The Connection objects, for the tests that look inside one (socket pause state, keepalive):
 * those run the data path on the test's thread (`workers: 0`); the code is the same in a worker.
 */
function openConnections(d: TestDaemon): Connection[] {
  return [...(d.daemon.proxier.get('default/echo:grpc')?.connections ?? [])];
}

/** Open connections, node-wide (worker threads included). */
async function openCount(d: TestDaemon): Promise<number> {
  return (await d.portStats('default/echo:grpc'))?.connections ?? 0;
}

/** Inside-the-connection tests: the data path on this thread. */
const HERE = { workers: 0 } as const;

function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.resume();
  return once(s, 'end').then(() => Buffer.concat(chunks));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A server on host:port whose connection handler the test provides. */
async function customBackend(host: string, onConn: (s: Socket) => void): Promise<Server> {
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

describe('data path', () => {
  it('copies 8 MiB each way byte for byte', async () => {
    const { d } = await setup(ips(1));
    const c = await connectGreeted(VIP, 8080);
    cleanups.push(() => c.socket.destroy());
    const payload = randomBytes(8 << 20);
    const received = readAll(c.socket);
    c.socket.end(payload);
    const echoed = await received;
    expect(sha(echoed)).toBe(sha(payload));
    await waitFor('connection closed', async () => (await openCount(d)) === 0);
  });

  it('half-close from the client: the reply still arrives after the client FIN', async () => {
    const { d } = await setup(ips(1));
    const c = await connectGreeted(VIP, 8080);
    const received = readAll(c.socket);
    c.socket.end('ping after fin?\n');
    expect(String(await received)).toBe('ping after fin?\n');
    await waitFor('connection closed', async () => (await openCount(d)) === 0);
  });

  it('half-close from the server: the client can still send after the server FIN', async () => {
    let got = '';
    const gotEnd = new Promise<void>((resolve) => {
      void customBackend(ips(1)[0] as string, (s) => {
        s.end('bye\n'); // FIN right away, keep reading
        s.setEncoding('utf8');
        s.on('data', (x: string) => (got += x));
        s.on('end', () => resolve());
      });
    });
    const d = await startTestDaemon([svc, endpointSlice('echo-1', ips(1))]);
    cleanups.push(() => d.stop());
    const s = connect({ host: VIP, port: 8080, allowHalfOpen: true });
    cleanups.push(() => s.destroy());
    const text = readAll(s);
    expect(String(await text)).toBe('bye\n');
    s.end('late data\n');
    await gotEnd;
    expect(got).toBe('late data\n');
    await waitFor('connection closed', async () => (await openCount(d)) === 0);
  });

  it('a client that does not read makes the proxy pause the server, not buffer', async () => {
    let serverSocket: Socket | undefined;
    await customBackend(ips(1)[0] as string, (s) => {
      serverSocket = s;
      const chunk = Buffer.alloc(1 << 20);
      const pump = (): void => {
        // Write until the socket pushes back; resume on drain. Bounded by the test's end.
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    });
    const d = await startTestDaemon([svc, endpointSlice('echo-1', ips(1))], HERE);
    cleanups.push(() => d.stop());
    const s = connect({ host: VIP, port: 8080 });
    cleanups.push(() => s.destroy());
    s.pause();
    await waitFor('connection', () => openConnections(d).length === 1);
    const conn = openConnections(d)[0] as Connection;
    // Let the kernel buffers fill; then the server is stuck and the proxy must hold little.
    let last = -1;
    await waitFor(
      'server stalls',
      async () => {
        await new Promise((r) => setTimeout(r, 200));
        const now = conn.upstream?.bytesRead ?? 0;
        const stalled = now === last;
        last = now;
        return stalled;
      },
      20_000,
    );
    expect(conn.upstream?.isPaused()).toBe(true);
    expect(conn.client.writableLength).toBeLessThan(1 << 20);
    expect(serverSocket?.writableLength).toBeGreaterThan(0);
  });

  it('a server that does not read makes the proxy pause the client, not buffer', async () => {
    await customBackend(ips(1)[0] as string, (s) => s.pause());
    const d = await startTestDaemon([svc, endpointSlice('echo-1', ips(1))], HERE);
    cleanups.push(() => d.stop());
    const s = connect({ host: VIP, port: 8080 });
    cleanups.push(() => s.destroy());
    const chunk = Buffer.alloc(1 << 20);
    let written = 0;
    const pump = (): void => {
      while (written < 256 << 20 && !s.destroyed && s.write(chunk)) written += chunk.length;
    };
    s.on('drain', pump);
    pump();
    await waitFor('connection', () => openConnections(d).length === 1);
    const conn = openConnections(d)[0] as Connection;
    let last = -1;
    await waitFor(
      'client stalls',
      async () => {
        await new Promise((r) => setTimeout(r, 200));
        const now = conn.client.bytesRead;
        const stalled = now === last;
        last = now;
        return stalled;
      },
      20_000,
    );
    expect(conn.client.isPaused()).toBe(true);
    expect(conn.upstream?.writableLength ?? 0).toBeLessThan(1 << 20);
    expect(written).toBeLessThan(256 << 20);
  });

  it('switches TCP keepalive on only for connections that last', async () => {
    const { d } = await setup(ips(1), HERE);
    const c = await connectGreeted(VIP, 8080);
    cleanups.push(() => c.socket.destroy());
    const proxy = d.daemon.proxier.get('default/echo:grpc');
    const conn = openConnections(d)[0] as Connection;
    proxy?.keepAliveSweep(conn.openedAt + 9_999, 10_000);
    expect(conn.keepAlive).toBe(false);
    proxy?.keepAliveSweep(conn.openedAt + 10_000, 10_000);
    expect(conn.keepAlive).toBe(true);
  });

  it('2,000 concurrent connections: counts return to exactly zero however they end', async () => {
    const { d, backends } = await setup(ips(4));
    const clients: GreetedClient[] = [];
    for (let batch = 0; batch < 10; batch++) {
      clients.push(
        ...(await Promise.all(
          Array.from({ length: 200 }, () => connectGreeted(VIP, 8080, 10_000)),
        )),
      );
    }
    cleanups.push(() => clients.forEach((c) => c.socket.destroy()));
    const stats = () => d.portStats('default/echo:grpc');
    expect((await stats())?.connections).toBe(2000);
    expect((await stats())?.endpoints.map((e) => e.active)).toEqual([500, 500, 500, 500]);
    // A third end cleanly from the client, a third reset, a third are closed by the backends
    // (those clients close when they see the server's FIN, as most clients do).
    clients.forEach((c, i) => {
      if (i % 3 === 0) c.socket.end();
      else if (i % 3 === 1) c.socket.resetAndDestroy();
      else {
        c.socket.on('end', () => c.socket.end());
        c.socket.resume();
      }
    });
    for (const b of backends) for (const s of b.sockets) s.destroy();
    await waitFor('every connection closed', async () => (await openCount(d)) === 0, 20_000);
    for (const ep of (await stats())?.endpoints ?? []) {
      expect([ep.active, ep.draining, ep.total]).toEqual([0, 0, 500]);
    }
  });
});
