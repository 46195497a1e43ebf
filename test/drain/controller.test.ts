import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  connect as h2connect,
  createServer as h2server,
  type ClientHttp2Session,
  type Http2Server,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DrainController, type DrainConfig, type DrainHandle } from '../../src/drain/controller.js';
import { silentLogger } from '../../src/log.js';
import { Proxier } from '../../src/proxy/proxier.js';
import { ServicePortProxy } from '../../src/proxy/service-port-proxy.js';
import type { Endpoint, EndpointState, ServicePort } from '../../src/servicetable/types.js';
import {
  connectGreeted,
  startTcpBackend,
  waitFor,
  type GreetedClient,
} from '../support/backends.js';
import { tableEndpoint } from '../support/table-endpoint.js';

// The drain controller wired to a Proxier as the daemon wires them, on real sockets: node:http2
// clients and servers (h2c) and plain TCP echo peers (opaque). Its clock is injected; its timer
// is never started, so every planning round is a `tick()` the test calls.
// Addresses of this file: 127.0.71.0/24.

const VIP_H2 = '127.0.71.50';
const VIP_TCP = '127.0.71.51';
const H2_HOSTS = ['127.0.71.11', '127.0.71.12'] as const;
const TCP_HOST = '127.0.71.13';
const KEY_H2 = 'default/h2:grpc';
const KEY_TCP = 'default/tcp:raw';

/** A client of the h2c Service port, after one request; `goaway` is set when one arrives. */
interface H2Client {
  readonly session: ClientHttp2Session;
  readonly backend: string;
  /** The debug data of the GOAWAY the client received, if any. */
  goaway: string | undefined;
  closed: boolean;
}

interface Harness {
  readonly proxier: Proxier;
  readonly drains: DrainController;
  /** The injected clock, in ms. */
  clock: number;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
});

function harness(config: Partial<DrainConfig> = {}): Harness {
  const cfg: DrainConfig = {
    maxConnectionAgeMs: 0,
    drainGraceMs: 60_000,
    // A budget of one drain at a time, one per second: what bypasses it shows.
    drainMaxConcurrent: { count: 1 },
    drainRatePerSec: 1,
    rebalanceThreshold: 0,
    ...config,
  };
  const now = (): number => h.clock;
  const drains = new DrainController(cfg, {
    now,
    random: () => 0.5,
    logger: silentLogger(),
    ports: {
      get: (key) => proxier.get(key),
      servicePorts: () => proxier.servicePorts(),
    },
  });
  const proxier = new Proxier({
    intercept: 'none',
    logger: silentLogger(),
    connectTimeoutMs: 1000,
    maxConnectAttempts: 2,
    slowStartWindowMs: 0,
    now,
    random: Math.random,
    h2: { pingPayload: randomBytes(8), pingAckWaitMaxMs: 1000, lingerMs: 200 },
    onEndpointChanges: (owner, changes) => drains.endpointChanges(owner, changes),
    observer: {
      established: () => {},
      protocolKnown: (conn, owner) => drains.protocolKnown(conn, owner),
      closed: (conn, owner) => drains.closed(conn, owner),
    },
  });
  const h: Harness = { proxier, drains, clock: 1_000_000 };
  cleanups.push(async () => {
    drains.stop();
    await proxier.stopListening();
    proxier.destroyAll();
  });
  return h;
}

/** An h2c backend answering every request with its name. */
async function h2Backend(host: string, name: string): Promise<Endpoint> {
  const server: Http2Server = h2server((_req, res) => res.end(name));
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.listen(0, host);
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sessions) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return tableEndpoint(host, (server.address() as AddressInfo).port);
}

async function tcpBackend(): Promise<Endpoint> {
  const b = await startTcpBackend(TCP_HOST, 0, { name: 'tcp' });
  cleanups.push(() => b.close());
  return tableEndpoint(b.host, b.port);
}

function servicePort(key: string, clusterIP: string, eps: Endpoint[]): ServicePort {
  const [ns, rest] = key.split('/') as [string, string];
  const [name, port] = rest.split(':') as [string, string];
  return {
    name: { namespace: ns, name, port, protocol: 'TCP' },
    key,
    clusterIP,
    family: 'IPv4',
    port: 8080,
    internalTrafficPolicy: 'Cluster',
    endpoints: eps,
  };
}

let version = 0;
async function apply(h: Harness, ...ports: ServicePort[]): Promise<void> {
  await h.proxier.apply({ version: ++version, ports: new Map(ports.map((p) => [p.key, p])) });
}

const as = (ep: Endpoint, state: EndpointState): Endpoint =>
  tableEndpoint(ep.address, ep.port, state);

/** Opens an h2c connection through the proxy and completes one request on it. */
async function h2Client(vip = VIP_H2): Promise<H2Client> {
  const session = h2connect(`http://${vip}:8080`);
  session.on('error', () => {});
  cleanups.push(() => session.destroy());
  const c: H2Client = { session, backend: '', goaway: undefined, closed: false };
  session.on('goaway', (_code: number, _last: number, debug?: Buffer) => {
    c.goaway = String(debug ?? '');
  });
  session.on('close', () => (c.closed = true));
  const backend = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ':path': '/' });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (x: string) => (text += x));
    req.on('end', () => resolve(text));
    req.on('error', reject);
    req.end();
  });
  return Object.assign(c, { backend });
}

async function tcpClient(): Promise<GreetedClient> {
  const c = await connectGreeted(VIP_TCP, 8080);
  cleanups.push(() => c.socket.destroy());
  c.socket.resume();
  // The client speaks first, and not HTTP/2: the proxy sees an opaque connection.
  c.socket.write('hello\n');
  return c;
}

/** Drains started for `reason` on the Service port `key` (retired ones included). */
function started(h: Harness, key: string, reason: string): number {
  let n = 0;
  for (const sp of h.proxier.servicePorts())
    if (sp.servicePort === key) n += sp.counters.drainsStarted.get(reason) ?? 0;
  return n;
}

/** The current proxy of `key`, and its open connections. */
function proxyOf(h: Harness, key: string): ServicePortProxy {
  const p = h.proxier.get(key);
  if (p === undefined) throw new Error(`no Service port ${key}`);
  return p;
}

/** Waits until every open connection of `key` has been seen as h2c or opaque. */
async function protocolsKnown(h: Harness, key: string, n: number): Promise<void> {
  await waitFor(`${n} connections with a known protocol`, () => {
    const conns = [...proxyOf(h, key).connections];
    return conns.length === n && conns.every((c) => c.protocol !== 'pending');
  });
}

describe('DrainController', () => {
  it('drains every connection of a leaving endpoint at once, whatever the budget', async () => {
    const h = harness();
    const [h1, h2] = await Promise.all([
      h2Backend(H2_HOSTS[0], 'h1'),
      h2Backend(H2_HOSTS[1], 'h2'),
    ]);
    const t1 = await tcpBackend();
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1!]), servicePort(KEY_TCP, VIP_TCP, [t1]));
    const clients = [await h2Client(), await h2Client(), await h2Client()];
    expect(clients.map((c) => c.backend)).toEqual(['h1', 'h1', 'h1']);
    const opaque = [await tcpClient(), await tcpClient()];
    await protocolsKnown(h, KEY_H2, 3);
    await protocolsKnown(h, KEY_TCP, 2);

    // h1 terminates, h2 comes: three drains with a budget of one; the new endpoint drains none.
    await apply(
      h,
      servicePort(KEY_H2, VIP_H2, [as(h1!, 'terminating'), h2!]),
      servicePort(KEY_TCP, VIP_TCP, [t1]),
    );
    expect(started(h, KEY_H2, 'endpoint_terminating')).toBe(3);
    await waitFor('three GOAWAYs', () => clients.every((c) => c.goaway !== undefined));
    for (const c of clients) expect(c.goaway).toContain('endpoint_terminating');
    // A new client goes to the ready endpoint and is left alone.
    const fresh = await h2Client();
    expect(fresh.backend).toBe('h2');

    // The opaque connections of a removed endpoint are drained too: they close at the grace.
    await apply(
      h,
      servicePort(KEY_H2, VIP_H2, [as(h1!, 'terminating'), h2!]),
      servicePort(KEY_TCP, VIP_TCP, []),
    );
    expect(started(h, KEY_TCP, 'endpoint_removed')).toBe(2);
    expect(fresh.goaway).toBeUndefined();
    expect(started(h, KEY_H2, 'endpoint_terminating')).toBe(3);
    expect(opaque.every((c) => !c.socket.readableEnded && !c.socket.destroyed)).toBe(true);
  });

  it.each([
    ['not-ready', 'endpoint_not_ready'],
    ['removed', 'endpoint_removed'],
  ] as const)('names the reason of an endpoint that became %s', async (state, reason) => {
    const h = harness();
    const [h1, h2] = await Promise.all([
      h2Backend(H2_HOSTS[0], 'h1'),
      h2Backend(H2_HOSTS[1], 'h2'),
    ]);
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1!]));
    const c = await h2Client();
    await protocolsKnown(h, KEY_H2, 1);
    const next = state === 'removed' ? [h2!] : [as(h1!, 'not-ready'), h2!];
    await apply(h, servicePort(KEY_H2, VIP_H2, next));
    expect(started(h, KEY_H2, reason)).toBe(1);
    await waitFor('a GOAWAY', () => c.goaway !== undefined);
    expect(c.goaway).toContain(reason);
  });

  it('hands h2c connections to the planner and carries out its max-age decisions; opaque ones are not aged', async () => {
    const h = harness({
      maxConnectionAgeMs: 10_000,
      drainMaxConcurrent: { count: 100 },
      drainRatePerSec: 0,
    });
    const h1 = await h2Backend(H2_HOSTS[0], 'h1');
    const t1 = await tcpBackend();
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1]), servicePort(KEY_TCP, VIP_TCP, [t1]));
    const clients = [await h2Client(), await h2Client()];
    const opaque = await tcpClient();
    await protocolsKnown(h, KEY_H2, 2);
    await protocolsKnown(h, KEY_TCP, 1);

    h.clock += 9_000;
    h.drains.tick();
    expect(started(h, KEY_H2, 'max_age')).toBe(0);

    // Past the age (and past the deferral a lone endpoint earns: its clients would come back).
    h.clock += 20_000;
    h.drains.tick();
    expect(started(h, KEY_H2, 'max_age')).toBe(2);
    await waitFor('two GOAWAYs', () => clients.every((c) => c.goaway !== undefined));
    for (const c of clients) expect(c.goaway).toContain('max_age');
    expect(started(h, KEY_TCP, 'max_age')).toBe(0);
    expect([...proxyOf(h, KEY_TCP).connections].some((c) => c.draining)).toBe(false);
    expect(opaque.socket.readableEnded || opaque.socket.destroyed).toBe(false);
  });

  it('keeps max-age drains within the budget', async () => {
    const h = harness({ maxConnectionAgeMs: 10_000, drainMaxConcurrent: { count: 1 } });
    const h1 = await h2Backend(H2_HOSTS[0], 'h1');
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1]));
    for (let i = 0; i < 3; i++) await h2Client();
    await protocolsKnown(h, KEY_H2, 3);
    h.clock += 30_000;
    h.drains.tick();
    expect(started(h, KEY_H2, 'max_age')).toBe(1);
  });

  it('counts the drains of a leaving endpoint in the budget of later max-age drains', async () => {
    const h = harness({ maxConnectionAgeMs: 10_000, drainMaxConcurrent: { count: 1 } });
    const [h1, h2] = await Promise.all([
      h2Backend(H2_HOSTS[0], 'h1'),
      h2Backend(H2_HOSTS[1], 'h2'),
    ]);
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1!, h2!]));
    const clients = [await h2Client(), await h2Client()];
    expect(clients.map((c) => c.backend).sort()).toEqual(['h1', 'h2']);
    await protocolsKnown(h, KEY_H2, 2);
    await apply(h, servicePort(KEY_H2, VIP_H2, [as(h1!, 'terminating'), h2!]));
    expect(started(h, KEY_H2, 'endpoint_terminating')).toBe(1);

    // The connection to h2 is due, but the one drain the budget allows is under way.
    h.clock += 30_000;
    h.drains.tick();
    expect(started(h, KEY_H2, 'max_age')).toBe(0);
    // Once it ends, the budget has room again.
    clients.find((c) => c.backend === 'h1')?.session.destroy();
    await waitFor('the drained connection closed', () => h.proxier.connectionCount === 1);
    h.drains.tick();
    expect(started(h, KEY_H2, 'max_age')).toBe(1);
  });

  it('rebalances onto a new endpoint at the next tick, within the endpoints it was given', async () => {
    const h = harness({
      rebalanceThreshold: 1.2,
      drainMaxConcurrent: { count: 100 },
      drainRatePerSec: 0,
    });
    const [h1, h2] = await Promise.all([
      h2Backend(H2_HOSTS[0], 'h1'),
      h2Backend(H2_HOSTS[1], 'h2'),
    ]);
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1!]));
    const clients: H2Client[] = [];
    for (let i = 0; i < 4; i++) clients.push(await h2Client());
    await protocolsKnown(h, KEY_H2, 4);
    h.drains.tick();
    expect(started(h, KEY_H2, 'rebalance')).toBe(0);

    // A second endpoint: a change that drains nothing by itself, then the tick rebalances 4/0.
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1!, h2!]));
    expect(started(h, KEY_H2, 'rebalance')).toBe(0);
    h.drains.tick();
    expect(started(h, KEY_H2, 'rebalance')).toBe(2);
    expect(h.drains.isRebalancing(KEY_H2)).toBe(true);
    await waitFor('two GOAWAYs', () => clients.filter((c) => c.goaway !== undefined).length === 2);
  });

  it('counts idle drains, bypassing the budget, once per connection', async () => {
    const h = harness();
    const h1 = await h2Backend(H2_HOSTS[0], 'h1');
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1]));
    const clients = [await h2Client(), await h2Client()];
    await protocolsKnown(h, KEY_H2, 2);
    const owner = proxyOf(h, KEY_H2);
    const conns = [...owner.connections];
    expect(conns.map((c) => h.drains.drainIdle(c, owner))).toEqual([true, true]);
    expect(conns.map((c) => h.drains.drainIdle(c, owner))).toEqual([false, false]);
    expect(started(h, KEY_H2, 'idle')).toBe(2);
    await waitFor('two GOAWAYs', () => clients.every((c) => c.goaway !== undefined));
    for (const c of clients) expect(c.goaway).toContain('idle');
  });

  it('drains every open connection for shutdown, with the shutdown grace, and counts each once', async () => {
    const h = harness({ maxConnectionAgeMs: 10_000 });
    const h1 = await h2Backend(H2_HOSTS[0], 'h1');
    const t1 = await tcpBackend();
    await apply(h, servicePort(KEY_H2, VIP_H2, [h1]), servicePort(KEY_TCP, VIP_TCP, [t1]));
    const clients = [await h2Client(), await h2Client()];
    const opaque = await tcpClient();
    await protocolsKnown(h, KEY_H2, 2);
    await protocolsKnown(h, KEY_TCP, 1);
    // One already draining (max age): not drained again, not counted for shutdown.
    h.clock += 30_000;
    h.drains.tick();
    expect(started(h, KEY_H2, 'max_age')).toBe(1);

    await h.proxier.stopListening();
    // The configured grace is a minute; the shutdown's is short, and it is the one used.
    expect(h.drains.shutdown(200)).toBe(2);
    expect(started(h, KEY_H2, 'shutdown')).toBe(1);
    expect(started(h, KEY_TCP, 'shutdown')).toBe(1);
    expect(h.drains.shutdown(200)).toBe(0);
    await waitFor('two GOAWAYs', () => clients.every((c) => c.goaway !== undefined));
    expect(clients.map((c) => c.goaway?.replace('kube-lc-proxy: ', '')).sort()).toEqual([
      'max_age',
      'shutdown',
    ]);
    await waitFor(
      'the opaque client closed by the proxy',
      () => opaque.socket.readableEnded || opaque.socket.destroyed,
    );
  });

  it('forgets a retired Service port when its last connection closes, and only then', async () => {
    const h = harness();
    const h1 = await h2Backend(H2_HOSTS[0], 'h1');
    const OTHER = 'default/other:grpc';
    const VIP_OTHER = '127.0.71.52';
    const both = [servicePort(KEY_H2, VIP_H2, [h1]), servicePort(OTHER, VIP_OTHER, [h1])];
    await apply(h, ...both);
    const c = await h2Client();
    const d = await h2Client(VIP_OTHER);
    await protocolsKnown(h, KEY_H2, 1);
    await protocolsKnown(h, OTHER, 1);
    // State the planner keeps per Service port, visible from outside.
    for (const key of [KEY_H2, OTHER]) h.drains.setClusterDrains(key, new Map([['10.9.9.9:1', 1]]));
    expect(h.drains.isRebalancing(KEY_H2)).toBe(true);

    // Removed from the table: retired, its connection drained but open, its state kept.
    await apply(h, servicePort(OTHER, VIP_OTHER, [h1]));
    expect(h.proxier.get(KEY_H2)).toBeUndefined();
    expect(started(h, KEY_H2, 'endpoint_removed')).toBe(1);
    expect(h.drains.isRebalancing(KEY_H2)).toBe(true);

    c.session.destroy();
    await waitFor('the retired Service port gone', () =>
      [...h.proxier.servicePorts()].every((sp) => sp.servicePort !== KEY_H2),
    );
    expect(h.drains.isRebalancing(KEY_H2)).toBe(false);

    // The last connection of a current Service port closes: its state stays.
    d.session.destroy();
    await waitFor('no connection left', () => h.proxier.connectionCount === 0);
    expect(h.drains.isRebalancing(OTHER)).toBe(true);
  });
});

describe('DrainController with connections held by worker threads (DrainHandle)', () => {
  // Worker threads report their h2c connections; the planner plans on them with this thread's
  // own, and its decisions go back through each connection's handle. No sockets: the handles
  // record what they were asked.
  const KEY = 'default/remote:grpc';
  const EP = tableEndpoint('10.0.0.1', 9000);
  const EP2 = tableEndpoint('10.0.0.2', 9000);

  interface Remote extends DrainHandle {
    readonly asked: string[];
  }
  const remote = (id: number): Remote => {
    const asked: string[] = [];
    return {
      id,
      asked,
      drain: (reason, graceMs) => {
        asked.push(`${reason} ${graceMs}`);
        return true;
      },
    };
  };

  interface Setup {
    clock: number;
    readonly owner: ServicePortProxy;
    readonly drains: DrainController;
    readonly ports: Map<string, ServicePortProxy>;
  }

  function setup(config: Partial<DrainConfig> = {}): Setup {
    const ports = new Map<string, ServicePortProxy>();
    const now = (): number => t.clock;
    const owner = new ServicePortProxy(servicePort(KEY, '10.96.0.1', [EP, EP2]), {
      connectTimeoutMs: 1000,
      maxConnectAttempts: 1,
      slowStartWindowMs: 0,
      h2: undefined,
      now,
      random: () => 0.5,
    });
    ports.set(KEY, owner);
    const drains = new DrainController(
      {
        maxConnectionAgeMs: 10_000,
        drainGraceMs: 7_000,
        drainMaxConcurrent: { count: 1 },
        drainRatePerSec: 0,
        rebalanceThreshold: 0,
        ...config,
      },
      {
        now,
        random: () => 0.5,
        logger: silentLogger(),
        ports: { get: (k) => ports.get(k), servicePorts: () => ports.values() },
      },
    );
    const t: Setup = { clock: 1_000_000, owner, drains, ports };
    return t;
  }

  it('plans on them and drains them through their handles, within the budget', () => {
    const t = setup();
    const [a, b] = [remote(-1), remote(-2)];
    t.drains.trackRemote(a, KEY, EP.key, t.clock, false);
    t.drains.trackRemote(b, KEY, EP2.key, t.clock + 1, false);
    t.clock += 9_000;
    t.drains.tick();
    expect([...a.asked, ...b.asked]).toEqual([]);
    t.clock += 20_000;
    t.drains.tick();
    // One at a time (budget of one), oldest first, with the configured grace.
    expect(a.asked).toEqual(['max_age 7000']);
    expect(b.asked).toEqual([]);
    expect(t.owner.counters.drainsStarted.get('max_age')).toBe(1);
    t.drains.tick();
    expect(b.asked).toEqual([]);
    // The drained one is gone: room for the next.
    t.drains.forgetRemote(a.id);
    t.drains.tick();
    expect(b.asked).toEqual(['max_age 7000']);
    expect(t.owner.counters.drainsStarted.get('max_age')).toBe(2);
  });

  it('counts what a worker drained on its own in the budget, and forgets what is gone', () => {
    const t = setup();
    const [a, b, c] = [remote(-1), remote(-2), remote(-3)];
    t.drains.trackRemote(a, KEY, EP.key, t.clock, false);
    t.drains.trackRemote(b, KEY, EP2.key, t.clock, true);
    t.drains.trackRemote(c, KEY, EP2.key, t.clock, false);
    t.drains.forgetRemote(c.id);
    t.clock += 30_000;
    t.drains.tick();
    // b was reported draining when it arrived: the budget is spent, and b is not asked again.
    expect([...a.asked, ...b.asked, ...c.asked]).toEqual([]);
    t.drains.forgetRemote(b.id);
    t.drains.remoteDraining(a.id);
    t.drains.tick();
    expect(a.asked).toEqual([]);
    t.drains.forgetRemote(a.id);
    t.drains.tick();
    expect([...a.asked, ...b.asked, ...c.asked]).toEqual([]);
    expect(t.owner.counters.drainsStarted.size).toBe(0);
  });

  it('forgets a retired Service port when its last worker-held connection is gone', () => {
    const t = setup({ rebalanceThreshold: 1.2 });
    const [a, b] = [remote(-1), remote(-2)];
    t.drains.trackRemote(a, KEY, EP.key, t.clock, false);
    t.drains.trackRemote(b, KEY, EP.key, t.clock, false);
    t.drains.setClusterDrains(KEY, new Map([[EP.key, 1]]));
    expect(t.drains.isRebalancing(KEY)).toBe(true);
    t.ports.delete(KEY); // gone from the table: retired
    t.drains.forgetRemote(a.id);
    expect(t.drains.isRebalancing(KEY)).toBe(true); // b still tracked
    t.drains.forgetRemote(b.id);
    expect(t.drains.isRebalancing(KEY)).toBe(false);
  });

  it('ignores a connection of a Service port that is already gone', () => {
    const t = setup();
    const a = remote(-1);
    t.drains.trackRemote(a, 'default/gone:grpc', EP.key, t.clock, false);
    t.clock += 30_000;
    t.drains.tick();
    expect(a.asked).toEqual([]);
    expect(t.drains.isRebalancing('default/gone:grpc')).toBe(false);
  });
});
