import { afterEach, describe, expect, it } from 'vitest';
import { connectGreeted, startTcpBackend, tally, waitFor } from '../support/backends.js';
import type { GreetedClient, TcpBackend } from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file: 127.0.140.0/24.
const VIP = '127.0.140.50';
const KEY = 'default/echo:grpc';
const ips = (n: number) => Array.from({ length: n }, (_, i) => `127.0.140.${11 + i}`);
const svc = service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] });

let backends: TcpBackend[] = [];
let clients: GreetedClient[] = [];
let d: TestDaemon | undefined;

afterEach(async () => {
  for (const c of clients) c.socket.destroy();
  clients = [];
  await d?.stop();
  d = undefined;
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

/** Opens `n` connections one after another (each greeted by its backend before the next). */
async function open(n: number): Promise<GreetedClient[]> {
  const out: GreetedClient[] = [];
  for (let i = 0; i < n; i++) out.push(await connectGreeted(VIP, 8080));
  clients.push(...out);
  return out;
}

/** Connections open node-wide, every thread's (from the shared counts). */
async function nodeActive(t: TestDaemon): Promise<number> {
  const p = await t.portStats(KEY);
  return (p?.endpoints ?? []).reduce((n, ep) => n + ep.active + ep.draining, 0);
}

describe('worker threads: least connection stays exact per node', () => {
  it.each([2, 3])(
    'with %i workers: 40 connections one after another split 10/10/10/10, the next 10 go to a fifth endpoint',
    async (workers) => {
      backends = await Promise.all(ips(5).map((ip) => startTcpBackend(ip, 9000)));
      d = await startTestDaemon([svc, endpointSlice('echo-1', ips(4))], { workers });
      expect(d.daemon.pool?.size).toBe(workers);
      expect(tally(await open(40))).toEqual(
        Object.fromEntries(ips(4).map((ip) => [`${ip}:9000`, 10])),
      );
      // The kernel spread the connections over the workers (SO_REUSEPORT): more than one
      // worker took some, so the split above was made from shared counts.
      await d.daemon.refreshStats();
      expect(d.daemon.workerConnections.filter((n) => n > 0).length).toBeGreaterThan(1);

      await d.edit([svc, endpointSlice('echo-1', ips(5))]);
      expect(tally(await open(10))).toEqual({ '127.0.140.15:9000': 10 });
      expect((await d.portStats(KEY))?.endpoints.map((ep) => ep.active)).toEqual([
        10, 10, 10, 10, 10,
      ]);
    },
  );
});

describe('worker threads: a worker that fails is replaced', () => {
  it.each(['throw', 'heap'] as const)(
    'a worker killed by an injected fault (%s): the others keep accepting, its connections are counted lost, counts return to 0',
    async (kind) => {
      backends = await Promise.all(ips(2).map((ip) => startTcpBackend(ip, 9000)));
      d = await startTestDaemon([svc, endpointSlice('echo-1', ips(2))], {
        workers: 2,
        workerHeapLimitMb: 64,
      });
      const t = d;
      const pool = t.daemon.pool;
      if (pool === undefined) throw new Error('no worker pool');
      await open(30);
      await t.daemon.refreshStats();
      const held = t.daemon.workerConnections;
      expect(held.reduce((a, b) => a + b, 0)).toBe(30);
      // The victim holds some of the 30 (the kernel spread them), the other worker the rest.
      const victim = (held[0] ?? 0) > 0 ? 0 : 1;
      const lost = held[victim] ?? 0;
      expect(lost).toBeGreaterThan(0);

      pool.injectFault(victim, kind);
      await waitFor('the worker replaced', () => pool.stats.restarts.size > 0, 20_000);
      expect(pool.stats.lostConnections).toBe(lost);
      // Its connections left the node-wide counts with it; the survivors' stay counted.
      expect(await nodeActive(t)).toBe(30 - lost);

      // New clients are served all along: the other worker's listener never stopped, and the
      // replacement binds every port again once it runs.
      expect(Object.values(tally(await open(20))).reduce((a, b) => a + b, 0)).toBe(20);
      await waitFor('the replacement ready', () => pool.ready === 2, 20_000);
      expect(Object.values(tally(await open(20))).reduce((a, b) => a + b, 0)).toBe(20);
      const text = await (await fetch(`${t.metricsUrl}/metrics`)).text();
      const reason = kind === 'throw' ? 'exception' : 'heap_limit';
      expect(text).toContain(`kube_lc_proxy_worker_restarts_total{reason="${reason}"} 1`);
      expect(text).toContain(`kube_lc_proxy_worker_lost_connections_total ${lost}`);

      for (const c of clients) c.socket.destroy();
      await waitFor('counts back to 0', async () => (await nodeActive(t)) === 0, 10_000);
    },
    60_000,
  );
});
