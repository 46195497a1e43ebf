import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseListeningPorts } from '../../src/proxy/listening-ports.js';
import { Proxier, type ProxierOptions } from '../../src/proxy/proxier.js';
import type { Endpoint, ServicePort, ServiceTable } from '../../src/servicetable/types.js';
import { startTcpBackend, type TcpBackend } from '../support/backends.js';
import { freePort } from '../support/lifecycle.js';
import { tableEndpoint } from '../support/table-endpoint.js';

// Addresses of this file only.
const VIP = '127.0.90.1';
const BACKEND = '127.0.90.11';
const KEY = 'default/plain:tcp';

function endpoint(address: string, port: number): Endpoint {
  return tableEndpoint(address, port);
}

function table(version: number, ports: ServicePort[]): ServiceTable {
  return { version, ports: new Map(ports.map((p) => [p.key, p])) };
}

function servicePort(key: string, clusterIP: string, port: number, eps: Endpoint[]): ServicePort {
  return {
    name: { namespace: 'default', name: 'plain', port: 'tcp', protocol: 'TCP' },
    key,
    clusterIP,
    family: 'IPv4',
    port,
    internalTrafficPolicy: 'Cluster',
    endpoints: eps,
  };
}

function proxier(lines: Record<string, unknown>[], extra: Partial<ProxierOptions> = {}): Proxier {
  return new Proxier({
    intercept: 'iptables',
    redirectListenHost: '127.0.0.1',
    logger: pino(
      { level: 'info' },
      { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    ),
    connectTimeoutMs: 1000,
    maxConnectAttempts: 2,
    slowStartWindowMs: 0,
    h2: undefined,
    now: Date.now,
    random: Math.random,
    ...extra,
  });
}

/** Connects; resolves with the socket and a promise of the first line it reads (or its end). */
async function client(port: number, host = '127.0.0.1') {
  const s = connect({ host, port });
  s.on('error', () => {});
  await once(s, 'connect');
  const line = new Promise<string>((resolve) => {
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) resolve(got.trim());
    });
    s.on('close', () => resolve(`closed:${got}`));
  });
  return { socket: s, line };
}

describe('adopted listener ports (issue 8)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function backend(): Promise<TcpBackend> {
    const b = await startTcpBackend(BACKEND, 0, { name: 'b1' });
    cleanups.push(() => b.close());
    return b;
  }

  it('listens on the adopted port at once, holds clients until the first table, then serves them on the same port', async () => {
    const b = await backend();
    const lines: Record<string, unknown>[] = [];
    const p = proxier(lines);
    cleanups.push(() => p.stopListening());
    const proxyPort = await freePort();
    const bound = await p.adopt(
      [{ servicePort: KEY, clusterIP: '10.96.0.1', port: 80, proxyPort }],
      5_000,
    );
    expect(bound).toBe(1);
    // Connected (the kernel completed the handshake), but held: no endpoint is known yet.
    const early = await client(proxyPort);
    cleanups.push(async () => early.socket.destroy());
    const raced = await Promise.race([
      early.line,
      new Promise((r) => setTimeout(() => r('held'), 200)),
    ]);
    expect(raced).toBe('held');

    await p.apply(table(1, [servicePort(KEY, '10.96.0.1', 80, [endpoint(BACKEND, b.port)])]));
    await expect(early.line).resolves.toBe('b1');
    expect(p.bindings()).toEqual([
      { servicePort: KEY, clusterIP: '10.96.0.1', port: 80, proxyPort },
    ]);
    const later = await client(proxyPort);
    cleanups.push(async () => later.socket.destroy());
    await expect(later.line).resolves.toBe('b1');
  });

  it('during a handover leaves a port the running process listens on to it until the first table, then binds next to it', async () => {
    const b = await backend();
    const proxyPort = await freePort();
    // The previous process, still serving on the port (SO_REUSEPORT, as every listener has).
    const old = createServer((s: Socket) => s.end('old\n'));
    old.listen({ host: '127.0.0.1', port: proxyPort, reusePort: true });
    await once(old, 'listening');
    cleanups.push(() => new Promise((r) => old.close(r)));
    const lines: Record<string, unknown>[] = [];
    const p = proxier(lines);
    cleanups.push(() => p.stopListening());
    const bound = await p.adopt(
      [{ servicePort: KEY, clusterIP: '10.96.0.1', port: 80, proxyPort }],
      5_000,
    );
    expect(bound).toBe(0);
    // Not bound here yet, but its firewall rule must stay while the running process serves it.
    expect(p.listenerPorts()).toEqual([proxyPort]);
    expect(
      lines.find((l) => l.msg === 'listener ports adopted from the rules in place'),
    ).toMatchObject({ adopted: 1, leftToRunningProcess: 1 });
    // Nobody is held: the old process answers every client.
    for (let i = 0; i < 5; i++) await expect((await client(proxyPort)).line).resolves.toBe('old');
    await p.apply(table(1, [servicePort(KEY, '10.96.0.1', 80, [endpoint(BACKEND, b.port)])]));
    expect(p.bindings()).toEqual([
      { servicePort: KEY, clusterIP: '10.96.0.1', port: 80, proxyPort },
    ]);
    // The old process goes: the new one serves on the same port.
    await new Promise((r) => old.close(r));
    await expect((await client(proxyPort)).line).resolves.toBe('b1');
  });

  it('closes an adopted port whose Service port the first table no longer has, resetting its held clients', async () => {
    const lines: Record<string, unknown>[] = [];
    const p = proxier(lines);
    cleanups.push(() => p.stopListening());
    const proxyPort = await freePort();
    await p.adopt([{ servicePort: KEY, clusterIP: '10.96.0.1', port: 80, proxyPort }], 5_000);
    const held = await client(proxyPort);
    await p.apply(table(1, []));
    await expect(held.line).resolves.toMatch(/^closed:/);
    expect(p.bindings()).toEqual([]);
    const refused = connect({ host: '127.0.0.1', port: proxyPort });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('turns held clients away when no table comes within the hold time', async () => {
    const lines: Record<string, unknown>[] = [];
    const p = proxier(lines);
    cleanups.push(() => p.stopListening());
    const proxyPort = await freePort();
    await p.adopt([{ servicePort: KEY, clusterIP: '10.96.0.1', port: 80, proxyPort }], 100);
    const held = await client(proxyPort);
    await expect(held.line).resolves.toMatch(/^closed:/);
  });

  it('a new Service port gets a port from the range, and keeps it when a table changes its endpoints', async () => {
    const b = await backend();
    const lines: Record<string, unknown>[] = [];
    const range = { first: 61500, last: 61599 };
    const p = proxier(lines, { portRange: range });
    cleanups.push(() => p.stopListening());
    await p.apply(table(1, [servicePort(KEY, '10.96.0.1', 80, [endpoint(BACKEND, b.port)])]));
    const [first] = p.bindings();
    expect(first!.proxyPort).toBeGreaterThanOrEqual(range.first);
    expect(first!.proxyPort).toBeLessThanOrEqual(range.last);
    await p.apply(table(2, [servicePort(KEY, '10.96.0.1', 80, [])]));
    expect(p.bindings()[0]!.proxyPort).toBe(first!.proxyPort);
  });

  it('Service ports bound in one apply never share a port (regression: concurrent binds with SO_REUSEPORT picked the same port)', async () => {
    const lines: Record<string, unknown>[] = [];
    // 40 Service ports in a range of 50: hashes collide often, so the ledger must separate them.
    const range = { first: 61600, last: 61649 };
    const p = proxier(lines, { portRange: range });
    cleanups.push(() => p.stopListening());
    const ports = Array.from({ length: 40 }, (_, i) =>
      servicePort(`default/svc-${i}:tcp`, `10.96.1.${i + 1}`, 80, []),
    );
    await p.apply(table(1, ports));
    const bound = p.bindings().map((b) => b.proxyPort);
    expect(bound).toHaveLength(40);
    expect(new Set(bound).size).toBe(40);
    // A port freed by a removed Service port can be taken again; still no two owners.
    await p.apply(
      table(2, [...ports.slice(10), servicePort('default/new:tcp', '10.96.2.1', 80, [])]),
    );
    const again = p.bindings().map((b) => b.proxyPort);
    expect(again).toHaveLength(31);
    expect(new Set(again).size).toBe(31);
  });

  it('a bind that fails is retried quickly, logged once and counted, and binds once the port frees', async () => {
    const b = await backend();
    // Someone else holds the ClusterIP:port without SO_REUSEPORT (an older proxy, say).
    const squatter = createServer((s: Socket) => s.destroy());
    squatter.listen({ host: VIP, port: 8080 });
    await once(squatter, 'listening');
    cleanups.push(() => new Promise((r) => squatter.close(r)));
    const lines: Record<string, unknown>[] = [];
    const p = proxier(lines, { intercept: 'none', listenRetryMs: 20, listenRetryMaxMs: 40 });
    cleanups.push(() => p.stopListening());
    await p.apply(table(1, [servicePort(KEY, VIP, 8080, [endpoint(BACKEND, b.port)])]));
    expect(p.unbound).toBe(1);
    const deadline = Date.now() + 5_000;
    while ((p.listenFailures.get('EADDRINUSE') ?? 0) < 4 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(p.listenFailures.get('EADDRINUSE')).toBeGreaterThanOrEqual(4);
    expect(lines.filter((l) => String(l.msg).startsWith('cannot listen'))).toHaveLength(1);

    await new Promise((r) => squatter.close(r));
    while (p.unbound > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(p.unbound).toBe(0);
    const c = await client(8080, VIP);
    cleanups.push(async () => c.socket.destroy());
    await expect(c.line).resolves.toBe('b1');
  });
});

describe('parseListeningPorts', () => {
  it('keeps the local ports of LISTEN sockets only, IPv4 and IPv6 alike, and skips junk', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:EE48 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1',
      '   2: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0',
      'garbage',
    ].join('\n');
    expect([...parseListeningPorts(tcp)].sort((a, b) => a - b)).toEqual([80, 61000]);
    expect(parseListeningPorts('')).toEqual(new Set());
  });
});
