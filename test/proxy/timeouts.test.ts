import { once } from 'node:events';
import { connect as h2connect, createServer as h2server, type Http2Server } from 'node:http2';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { DaemonConfig } from '../../src/daemon/daemon.js';
import type { PortStats } from '../../src/metrics/port-stats.js';
import { startTcpBackend, waitFor } from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file: 127.0.40.0/24.
const VIP = '127.0.40.50';
const EP = '127.0.40.11';
const KEY = 'default/echo:grpc';
const svc = service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function daemon(config: Partial<DaemonConfig>): Promise<TestDaemon> {
  const d = await startTestDaemon([svc, endpointSlice('echo-1', [EP])], config);
  cleanups.push(() => d.stop());
  return d;
}

/** The Service port's figures, node-wide (worker threads included). */
async function port(d: TestDaemon): Promise<PortStats> {
  const p = await d.portStats(KEY);
  if (p === undefined) throw new Error('no service port');
  return p;
}

const active = async (d: TestDaemon): Promise<number> =>
  (await port(d)).endpoints.reduce((n, ep) => n + ep.active + ep.draining, 0);
const closes = async (d: TestDaemon, reason: string): Promise<number> =>
  (await port(d)).counters.closes.get(reason as never) ?? 0;
const open = async (d: TestDaemon): Promise<number> => (await port(d)).connections;

/** A backend that reads everything and never writes or closes (the half-closed probe). */
async function silentBackend(): Promise<{ server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.resume();
  });
  server.listen({ host: EP, port: 9000 });
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { server, sockets };
}

describe('half-closed timeout', () => {
  it('releases 20 clients that sent a line and FIN to a backend that never closes', async () => {
    const halfClosedTimeoutMs = 2_000;
    await silentBackend();
    const d = await daemon({ halfClosedTimeoutMs });
    const clients = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const s = connect({ host: VIP, port: 8080, allowHalfOpen: true });
        s.on('error', () => {});
        await once(s, 'connect');
        s.end('one line, then FIN\n');
        return s;
      }),
    );
    cleanups.push(() => clients.forEach((s) => s.destroy()));
    await waitFor('20 connections established', async () => (await open(d)) === 20);
    // The clients go away for good (as a process that exits): the proxy hears nothing more.
    for (const s of clients) s.destroy();
    // Not released by anything but the timeout: still held well before it.
    await new Promise((r) => setTimeout(r, halfClosedTimeoutMs / 4));
    expect(await open(d)).toBe(20);
    await waitFor(
      'every half-closed connection released',
      async () => (await open(d)) === 0 && (await active(d)) === 0,
      halfClosedTimeoutMs + 5_000,
    );
    // The sweep closes within its interval after the limit (a tenth of it, at most 1 s); the
    // wait above is generous on purpose (no timing assertions).
    expect(await closes(d, 'half_closed_timeout')).toBe(20);
  });
});

describe('idle timeout', () => {
  it('closes an opaque connection with no byte either way for the timeout, and counts it', async () => {
    const b = await startTcpBackend(EP, 9000);
    cleanups.push(() => b.close());
    const d = await daemon({ idleTimeoutMs: 1_500 });
    const s = connect({ host: VIP, port: 8080 });
    s.on('error', () => {});
    cleanups.push(() => s.destroy());
    s.setEncoding('utf8');
    let got = '';
    s.on('data', (x: string) => (got += x));
    await waitFor('greeting', () => got.includes('\n'));
    s.write('x\n'); // any byte keeps it alive
    await waitFor('echo', () => got.endsWith('x\n'));
    await once(s, 'close');
    await waitFor('closed for idleness', async () => (await closes(d, 'idle_timeout')) === 1);
    await waitFor('counts back to 0', async () => (await active(d)) === 0);
  });

  it('counts a client that never sends a byte as idle', async () => {
    const b = await startTcpBackend(EP, 9000, { greet: false });
    cleanups.push(() => b.close());
    const d = await daemon({ idleTimeoutMs: 1_000 });
    const s = connect({ host: VIP, port: 8080 });
    s.on('error', () => {});
    cleanups.push(() => s.destroy());
    await once(s, 'connect');
    await waitFor('established', async () => (await open(d)) === 1);
    expect((await port(d)).counters.protocols.size).toBe(0); // protocol not known yet
    await once(s, 'close');
    await waitFor('closed for idleness', async () => (await closes(d, 'idle_timeout')) === 1);
    await waitFor('counts back to 0', async () => (await active(d)) === 0);
  });

  it('drains an idle h2c connection with GOAWAY instead of cutting it', async () => {
    const server: Http2Server = h2server((req, res) => res.end('ok'));
    server.listen(9000, EP);
    await once(server, 'listening');
    cleanups.push(() => new Promise((r) => server.close(r)));
    const d = await daemon({ idleTimeoutMs: 1_500, maxConnectionAgeMs: 0 });
    const client = h2connect(`http://${VIP}:8080`);
    client.on('error', () => {});
    cleanups.push(() => client.destroy());
    const body = await new Promise<string>((resolve, reject) => {
      const req = client.request({ ':path': '/' });
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (x: string) => (text += x));
      req.on('end', () => resolve(text));
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('ok');
    const [code, , debug] = (await once(client, 'goaway')) as [number, number, Buffer];
    expect(code).toBe(0); // NO_ERROR: a graceful drain
    expect(String(debug)).toContain('idle');
    await once(client, 'close');
    expect((await port(d)).counters.drainsStarted.get('idle')).toBe(1);
    expect(await closes(d, 'idle_timeout')).toBe(0);
    await waitFor('counts back to 0', async () => (await active(d)) === 0);
  });
});
