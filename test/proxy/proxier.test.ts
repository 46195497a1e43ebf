import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointChange } from '../../src/balancer/least-conn.js';
import { preferredPort, type PortRange } from '../../src/proxy/port-allocator.js';
import { Proxier, type ProxierOptions } from '../../src/proxy/proxier.js';
import type { RemoteListeners } from '../../src/proxy/service-port-proxy.js';
import type { Endpoint, ServicePort, ServiceTable } from '../../src/servicetable/types.js';
import {
  connectGreeted,
  startTcpBackend,
  waitFor,
  type GreetedClient,
  type TcpBackend,
} from '../support/backends.js';
import { tableEndpoint } from '../support/table-endpoint.js';

// The Proxier reconciling its Service ports with successive service tables, on real sockets.
// Addresses of this file: 127.0.70.0/24 (listeners of intercept `iptables` on 127.0.70.1, in
// the port range 61720-61729).

const VIP_A = '127.0.70.50';
const VIP_B = '127.0.70.51';
const VIP_C = '127.0.70.52';
const REDIRECT_HOST = '127.0.70.1';
const BACKEND_HOSTS = ['127.0.70.11', '127.0.70.12', '127.0.70.13'] as const;

const KEY_A = 'default/a:grpc';
const KEY_B = 'default/b:grpc';

function servicePort(key: string, clusterIP: string, port: number, eps: Endpoint[]): ServicePort {
  const [ns, rest] = key.split('/') as [string, string];
  const [name, portName] = rest.split(':') as [string, string];
  return {
    name: { namespace: ns, name, port: portName, protocol: 'TCP' },
    key,
    clusterIP,
    family: 'IPv4',
    port,
    internalTrafficPolicy: 'Cluster',
    endpoints: eps,
  };
}

let version = 0;
function table(...ports: ServicePort[]): ServiceTable {
  return { version: ++version, ports: new Map(ports.map((p) => [p.key, p])) };
}

interface Line {
  readonly msg: string;
  readonly [k: string]: unknown;
}

/** A Proxier and what it told its owner. */
interface Harness {
  readonly p: Proxier;
  readonly lines: Line[];
  /** `servicePort endpoint previous->current`, in order. */
  readonly changes: string[];
  listenersChanged: number;
}

/** Endpoint changes as text (the one place that reads an EndpointChange's shape). */
const show = (servicePort: string, changes: readonly EndpointChange[]): string[] =>
  changes.map((c) => `${servicePort} ${c.stats.key} ${c.previous ?? 'new'}->${c.current}`);

describe('Proxier', () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  });

  function harness(extra: Partial<ProxierOptions> = {}): Harness {
    const lines: Line[] = [];
    const h: Harness = {
      lines,
      changes: [],
      listenersChanged: 0,
      p: new Proxier({
        intercept: 'none',
        logger: pino(
          { level: 'info' },
          { write: (l: string) => void lines.push(JSON.parse(l) as Line) },
        ),
        connectTimeoutMs: 1000,
        maxConnectAttempts: 2,
        slowStartWindowMs: 0,
        h2: undefined,
        now: Date.now,
        random: Math.random,
        listenRetryMs: 10,
        listenRetryMaxMs: 40,
        onEndpointChanges: (owner, changes) => h.changes.push(...show(owner.servicePort, changes)),
        onListenersChanged: () => h.listenersChanged++,
        // Nothing else listens on the adopted ports of these tests (no handover).
        listeningPorts: async () => new Set(),
        ...extra,
      }),
    };
    cleanups.push(async () => {
      await h.p.stopListening();
      h.p.destroyAll();
    });
    return h;
  }

  function ledger(range: PortRange, extra: Partial<ProxierOptions> = {}): Harness {
    return harness({
      intercept: 'iptables',
      redirectListenHost: REDIRECT_HOST,
      portRange: range,
      ...extra,
    });
  }

  async function backends(n: number): Promise<TcpBackend[]> {
    const out = await Promise.all(
      BACKEND_HOSTS.slice(0, n).map((host, i) =>
        startTcpBackend(host, 0, { name: String.fromCharCode(97 + i) }),
      ),
    );
    for (const b of out) cleanups.push(() => b.close());
    return out;
  }

  const ep = (b: TcpBackend): Endpoint => tableEndpoint(b.host, b.port);

  async function client(host: string, port = 8080): Promise<GreetedClient> {
    const c = await connectGreeted(host, port);
    cleanups.push(() => void c.socket.destroy());
    return c;
  }

  /** The error code of a connect to host:port (`connected` if it was accepted). */
  function connectResult(host: string, port = 8080): Promise<string> {
    return new Promise((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
  }

  /** Writes `text` and resolves once it came back (the echo backends echo). */
  function echoes(c: GreetedClient, text: string): Promise<boolean> {
    return new Promise((resolve) => {
      let got = '';
      const onData = (d: Buffer): void => {
        got += d.toString();
        if (got.includes(text)) done(true);
      };
      const done = (ok: boolean): void => {
        c.socket.removeListener('data', onData);
        c.socket.removeListener('close', onClose);
        resolve(ok);
      };
      const onClose = (): void => done(false);
      c.socket.on('data', onData);
      c.socket.once('close', onClose);
      c.socket.resume();
      c.socket.write(text);
    });
  }

  const ports = (p: Proxier): string[] => [...p.servicePorts()].map((sp) => sp.servicePort);

  async function squat(host: string, port: number): Promise<Server> {
    // Without SO_REUSEPORT: our listeners (which set it) cannot share the port with it.
    const s = createServer((c: Socket) => c.destroy());
    s.listen({ host, port });
    await once(s, 'listening');
    cleanups.push(() => new Promise((r) => s.close(r)));
    return s;
  }

  describe('reconciling successive tables (intercept none)', () => {
    it('binds a listener for each new Service port and serves its endpoints', async () => {
      const [a, b] = await backends(2);
      const h = harness();
      await h.p.apply(
        table(servicePort(KEY_A, VIP_A, 8080, [ep(a!)]), servicePort(KEY_B, VIP_B, 8080, [ep(b!)])),
      );
      expect(h.p.unbound).toBe(0);
      expect(h.listenersChanged).toBe(1);
      expect(ports(h.p).sort()).toEqual([KEY_A, KEY_B]);
      expect((await client(VIP_A)).backend).toBe('a');
      expect((await client(VIP_B)).backend).toBe('b');
      // A new Service port starts with its endpoints: no change to report.
      expect(h.changes).toEqual([]);
    });

    it('swaps changed endpoints without touching the listener or the open connections', async () => {
      const [a, b] = await backends(2);
      const h = harness();
      await h.p.apply(table(servicePort(KEY_A, VIP_A, 8080, [ep(a!)])));
      const proxy = h.p.get(KEY_A);
      const old = await client(VIP_A);
      expect(old.backend).toBe('a');
      h.changes.length = 0;

      await h.p.apply(table(servicePort(KEY_A, VIP_A, 8080, [ep(b!)])));
      // The same Service port proxy, no listener change to sync.
      expect(h.p.get(KEY_A)).toBe(proxy);
      expect(h.listenersChanged).toBe(1);
      expect(h.changes.sort()).toEqual([
        `${KEY_A} ${a!.host}:${a!.port} ready->removed`,
        `${KEY_A} ${b!.host}:${b!.port} new->ready`,
      ]);
      // New clients go to the new endpoint; the open one is left alone (drains are not the
      // Proxier's to decide).
      expect((await client(VIP_A)).backend).toBe('b');
      expect(await echoes(old, 'still here\n')).toBe(true);

      // The same Service port object again (an unrelated Service changed): nothing to report.
      const same = servicePort(KEY_A, VIP_A, 8080, [ep(b!)]);
      await h.p.apply(table(same));
      h.changes.length = 0;
      await h.p.apply(table(same));
      expect(h.changes).toEqual([]);
      expect(h.p.get(KEY_A)).toBe(proxy);
    });

    it('retires the old proxy when a Service port changes address; its connections live on until they end', async () => {
      const [a] = await backends(1);
      const h = harness();
      await h.p.apply(table(servicePort(KEY_A, VIP_A, 8080, [ep(a!)])));
      const before = h.p.get(KEY_A);
      const old = await client(VIP_A);
      h.changes.length = 0;

      await h.p.apply(table(servicePort(KEY_A, VIP_C, 8080, [ep(a!)])));
      expect(h.p.get(KEY_A)).not.toBe(before);
      expect(h.listenersChanged).toBe(2);
      expect(await connectResult(VIP_A)).toBe('ECONNREFUSED');
      expect((await client(VIP_C)).backend).toBe('a');
      // The old proxy's endpoints are reported gone, so its connections get drained by whoever
      // listens; the new proxy starts with them.
      expect(h.changes).toEqual([`${KEY_A} ${a!.host}:${a!.port} ready->removed`]);
      // The retired proxy is still listed while its connection is open, and still carries it.
      expect([...h.p.servicePorts()]).toContain(before);
      expect(await echoes(old, 'after the move\n')).toBe(true);
      old.socket.destroy();
      await waitFor('the retired proxy to go', () => ![...h.p.servicePorts()].includes(before!));
      expect(ports(h.p)).toEqual([KEY_A]);
    });

    it('stops listening for a removed Service port and keeps its connections until they end', async () => {
      const [a, b] = await backends(2);
      const h = harness();
      await h.p.apply(
        table(servicePort(KEY_A, VIP_A, 8080, [ep(a!)]), servicePort(KEY_B, VIP_B, 8080, [ep(b!)])),
      );
      const open = await client(VIP_A);
      expect(h.p.connectionCount).toBe(1);
      h.changes.length = 0;

      await h.p.apply(table(servicePort(KEY_B, VIP_B, 8080, [ep(b!)])));
      expect(h.p.get(KEY_A)).toBeUndefined();
      expect(h.listenersChanged).toBe(2);
      expect(h.changes).toEqual([`${KEY_A} ${a!.host}:${a!.port} ready->removed`]);
      expect(await connectResult(VIP_A)).toBe('ECONNREFUSED');
      // Retired: listed, counted, and still copying bytes.
      expect(ports(h.p).sort()).toEqual([KEY_A, KEY_B]);
      expect(h.p.connectionCount).toBe(1);
      expect(await echoes(open, 'bye\n')).toBe(true);
      // Not among the bound listeners any more.
      expect(h.p.bindings().map((x) => x.servicePort)).toEqual([KEY_B]);

      open.socket.end();
      await waitFor('the retired Service port to go', () => h.p.connectionCount === 0);
      await waitFor('the retired Service port to go', () => ports(h.p).length === 1);
      expect(ports(h.p)).toEqual([KEY_B]);
    });

    it('forgets a removed Service port without connections at once', async () => {
      const [a] = await backends(1);
      const h = harness();
      await h.p.apply(table(servicePort(KEY_A, VIP_A, 8080, [ep(a!)])));
      await h.p.apply(table());
      expect(ports(h.p)).toEqual([]);
      expect(h.p.listenerPorts()).toEqual([]);
      expect(await connectResult(VIP_A)).toBe('ECONNREFUSED');
    });

    it('retries a bind that failed, counts each failure, logs once, and tells when it is bound', async () => {
      const [a] = await backends(1);
      const squatter = await squat(VIP_A, 8080);
      const h = harness();
      await h.p.apply(table(servicePort(KEY_A, VIP_A, 8080, [ep(a!)])));
      expect(h.p.unbound).toBe(1);
      // Listed while unbound, with no bound address.
      expect(h.p.bindings()).toEqual([]);
      await waitFor('three failed binds', () => (h.p.listenFailures.get('EADDRINUSE') ?? 0) >= 3);
      const cannot = h.lines.filter((l) => l.msg.startsWith('cannot listen'));
      expect(cannot).toHaveLength(1);
      expect(cannot[0]).toMatchObject({ servicePort: KEY_A });
      const changedBefore = h.listenersChanged;

      await new Promise((r) => squatter.close(r));
      await waitFor('the retried bind', () => h.p.unbound === 0);
      expect(h.listenersChanged).toBeGreaterThan(changedBefore);
      expect(
        h.lines.find((l) => l.msg === 'service port listening' && l.afterFailures === true),
      ).toMatchObject({ servicePort: KEY_A });
      expect((await client(VIP_A)).backend).toBe('a');
    });
  });

  describe('the port ledger (intercept iptables)', () => {
    it('hands a retired Service port’s proxy port to the next one, and never one port to two', async () => {
      const range = { first: 61720, last: 61721 };
      const h = ledger(range);
      await h.p.apply(
        table(servicePort(KEY_A, '10.96.0.1', 80, []), servicePort(KEY_B, '10.96.0.2', 80, [])),
      );
      const first = new Map(h.p.bindings().map((x) => [x.servicePort, x.proxyPort]));
      expect([...first.values()].sort()).toEqual([61720, 61721]);

      // A goes, C comes in the same table: C gets A's port, B keeps its own.
      await h.p.apply(
        table(
          servicePort(KEY_B, '10.96.0.2', 80, []),
          servicePort('default/c:grpc', '10.96.0.3', 80, []),
        ),
      );
      const second = new Map(h.p.bindings().map((x) => [x.servicePort, x.proxyPort]));
      expect(second.get(KEY_B)).toBe(first.get(KEY_B));
      expect(second.get('default/c:grpc')).toBe(first.get(KEY_A));
      expect(h.p.listenFailures.size).toBe(0);
      expect(h.p.unbound).toBe(0);
    });

    it('counts a full range as ERANGEFULL and binds once a port frees', async () => {
      const range = { first: 61722, last: 61723 };
      const h = ledger(range);
      const sps = ['x', 'y', 'z'].map((n, i) =>
        servicePort(`default/${n}:grpc`, `10.96.0.${i + 1}`, 80, []),
      );
      await h.p.apply(table(...sps));
      expect(h.p.unbound).toBe(1);
      expect(h.p.listenFailures.get('ERANGEFULL')).toBeGreaterThanOrEqual(1);
      const bound = h.p.bindings();
      expect(new Set(bound.map((x) => x.proxyPort)).size).toBe(2);
      const waiting = sps.find((sp) => !bound.some((x) => x.servicePort === sp.key));
      const leaving = bound[0]!.servicePort;

      await h.p.apply(table(...sps.filter((sp) => sp.key !== leaving)));
      await waitFor('the waiting Service port to bind', () => h.p.unbound === 0);
      const now = h.p.bindings();
      expect(now.map((x) => x.servicePort).sort()).toEqual(
        [waiting!.key, bound[1]!.servicePort].sort(),
      );
      expect(new Set(now.map((x) => x.proxyPort)).size).toBe(2);
    });

    it('moves off a port someone else holds instead of sharing another Service port’s', async () => {
      const range = { first: 61724, last: 61726 };
      const blocked = preferredPort(KEY_A, range);
      await squat(REDIRECT_HOST, blocked);
      const h = ledger(range);
      await h.p.apply(
        table(servicePort(KEY_A, '10.96.0.1', 80, []), servicePort(KEY_B, '10.96.0.2', 80, [])),
      );
      await waitFor('both Service ports bound', () => h.p.unbound === 0);
      expect(h.p.listenFailures.get('EADDRINUSE')).toBeGreaterThanOrEqual(1);
      const bound = h.p.bindings().map((x) => x.proxyPort);
      expect(bound).toHaveLength(2);
      expect(new Set(bound).size).toBe(2);
      expect(bound).not.toContain(blocked);
      for (const port of bound) {
        expect(port).toBeGreaterThanOrEqual(range.first);
        expect(port).toBeLessThanOrEqual(range.last);
      }
    });

    it('keeps an adopted port for its Service port until the table no longer has it', async () => {
      const range = { first: 61727, last: 61728 };
      const adoptedPort = 61727;
      const h = ledger(range);
      expect(
        await h.p.adopt(
          [{ servicePort: KEY_A, clusterIP: '10.96.0.1', port: 80, proxyPort: adoptedPort }],
          5_000,
        ),
      ).toBe(1);
      expect(h.p.listenerPorts()).toEqual([adoptedPort]);
      // A moved to another ClusterIP: its new listener gets another port, and the adopted one
      // stays reserved (the rule to it may still carry clients), so B finds the range full.
      await h.p.apply(
        table(servicePort(KEY_A, '10.96.0.9', 80, []), servicePort(KEY_B, '10.96.0.2', 80, [])),
      );
      const bound = h.p.bindings();
      expect(bound.map((x) => x.proxyPort)).toEqual([61728]);
      expect(h.p.unbound).toBe(1);
      expect(h.p.listenFailures.get('ERANGEFULL')).toBeGreaterThanOrEqual(1);
      expect(h.p.listenerPorts()).toContain(adoptedPort);

      // A is gone: its ports are free, and B binds.
      await h.p.apply(table(servicePort(KEY_B, '10.96.0.2', 80, [])));
      await waitFor('B bound', () => h.p.unbound === 0);
      expect(h.p.bindings().map((x) => x.servicePort)).toEqual([KEY_B]);
      expect(h.p.listenerPorts()).toHaveLength(1);
    });
  });

  describe('adopt, hold and release', () => {
    it('holds the clients of an adopted port, bytes and all, and serves them once the first table comes', async () => {
      const [a] = await backends(1);
      const h = ledger({ first: 61729, last: 61729 });
      const bound = await h.p.adopt(
        [{ servicePort: KEY_A, clusterIP: '10.96.0.1', port: 80, proxyPort: 61729 }],
        60_000,
      );
      expect(bound).toBe(1);
      // Connected (the kernel accepted it), then sends before any endpoint is known.
      const s = connect({ host: REDIRECT_HOST, port: 61729 });
      cleanups.push(() => void s.destroy());
      s.on('error', () => {});
      await once(s, 'connect');
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.write('sent while held\n');
      // Held: the proxy read nothing and dialed nobody.
      await new Promise((r) => setImmediate(r));
      expect(a!.accepted).toBe(0);
      expect(h.p.connectionCount).toBe(0);

      await h.p.apply(table(servicePort(KEY_A, '10.96.0.1', 80, [ep(a!)])));
      await waitFor('the held client served', () => got.includes('sent while held\n'));
      expect(got.startsWith('a\n')).toBe(true);
      expect(h.p.bindings()).toEqual([
        { servicePort: KEY_A, clusterIP: '10.96.0.1', port: 80, proxyPort: 61729 },
      ]);
      expect(h.p.connectionCount).toBe(1);
    });

    it('resets held clients when it stops listening before any table', async () => {
      const h = ledger({ first: 61729, last: 61729 });
      await h.p.adopt(
        [{ servicePort: KEY_A, clusterIP: '10.96.0.1', port: 80, proxyPort: 61729 }],
        60_000,
      );
      const s = connect({ host: REDIRECT_HOST, port: 61729 });
      cleanups.push(() => void s.destroy());
      const closed = new Promise<string>((resolve) => {
        s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        s.on('close', () => resolve('closed'));
      });
      await once(s, 'connect');
      await h.p.stopListening();
      expect(await closed).toBe('ECONNRESET');
      expect(await connectResult(REDIRECT_HOST, 61729)).toBe('ECONNREFUSED');
    });
  });
  describe('with worker threads (the listeners are the workers’)', () => {
    /** Stands in for the worker pool: records what it is asked, fails binds on demand. */
    function workers(): RemoteListeners & { calls: string[]; failNext: string[] } {
      const w = {
        calls: [] as string[],
        failNext: [] as string[],
        async listen(servicePort: string, host: string, port: number): Promise<void> {
          const code = w.failNext.shift();
          w.calls.push(`listen ${servicePort} ${host}:${port}${code ? ` ${code}` : ''}`);
          if (code !== undefined) throw Object.assign(new Error(code), { code });
        },
        async unlisten(servicePort: string): Promise<void> {
          w.calls.push(`unlisten ${servicePort}`);
        },
      };
      return w;
    }

    it('asks the workers to listen and to stop as tables add, move and remove Service ports', async () => {
      const w = workers();
      const h = harness({ remoteListeners: w });
      await h.p.apply(
        table(servicePort(KEY_A, VIP_A, 8080, []), servicePort(KEY_B, VIP_B, 8080, [])),
      );
      expect(w.calls.sort()).toEqual([
        `listen ${KEY_A} ${VIP_A}:8080`,
        `listen ${KEY_B} ${VIP_B}:8080`,
      ]);
      expect(h.p.unbound).toBe(0);
      expect(h.listenersChanged).toBe(1);
      // Nothing is bound in this thread.
      expect(await connectResult(VIP_A)).toBe('ECONNREFUSED');
      w.calls.length = 0;

      // Endpoints change: nothing to ask. A moves: stop, then listen at the new address. B goes.
      await h.p.apply(
        table(
          servicePort(KEY_A, VIP_A, 8080, [tableEndpoint('10.0.0.1')]),
          servicePort(KEY_B, VIP_B, 8080, []),
        ),
      );
      expect(w.calls).toEqual([]);
      await h.p.apply(table(servicePort(KEY_A, VIP_C, 8080, [])));
      expect(w.calls).toEqual([
        `unlisten ${KEY_A}`,
        `unlisten ${KEY_B}`,
        `listen ${KEY_A} ${VIP_C}:8080`,
      ]);
      expect(ports(h.p)).toEqual([KEY_A]);
    });

    it('counts a bind the workers could not make and retries it', async () => {
      const w = workers();
      w.failNext.push('EADDRINUSE', 'EADDRINUSE');
      const h = harness({ remoteListeners: w });
      await h.p.apply(table(servicePort(KEY_A, VIP_A, 8080, [])));
      expect(h.p.unbound).toBe(1);
      await waitFor('the retried bind', () => h.p.unbound === 0);
      expect(h.p.listenFailures.get('EADDRINUSE')).toBe(2);
      expect(w.calls).toEqual([
        `listen ${KEY_A} ${VIP_A}:8080 EADDRINUSE`,
        `listen ${KEY_A} ${VIP_A}:8080 EADDRINUSE`,
        `listen ${KEY_A} ${VIP_A}:8080`,
      ]);
      expect(h.listenersChanged).toBe(1);
    });

    it('binds an adopted port in this thread, then hands it to the workers with the first table', async () => {
      const w = workers();
      const h = ledger({ first: 61729, last: 61729 }, { remoteListeners: w });
      await h.p.adopt(
        [{ servicePort: KEY_A, clusterIP: '10.96.0.1', port: 80, proxyPort: 61729 }],
        60_000,
      );
      // Bound here: the workers know no table yet.
      expect(w.calls).toEqual([]);
      expect(await connectResult(REDIRECT_HOST, 61729)).toBe('connected');

      await h.p.apply(table(servicePort(KEY_A, '10.96.0.1', 80, [])));
      expect(w.calls).toEqual([`listen ${KEY_A} ${REDIRECT_HOST}:61729`]);
      // This thread's listener is closed; the (stand-in) workers have the port.
      expect(await connectResult(REDIRECT_HOST, 61729)).toBe('ECONNREFUSED');
      expect(h.p.bindings()).toEqual([
        { servicePort: KEY_A, clusterIP: '10.96.0.1', port: 80, proxyPort: 61729 },
      ]);
      expect(h.p.unbound).toBe(0);
    });
  });
});
