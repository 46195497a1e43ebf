import { afterEach, describe, expect, it } from 'vitest';
import {
  EchoClientHandle,
  startGrpcBackend,
  steadyLoad,
  type GrpcBackend,
} from '../support/grpc.js';
import { waitFor } from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';
import { endpointSlice, service } from '../support/objects.js';
import { startProxyProcess } from '../support/proxy-process.js';
import { manifestsFile } from '../support/manifests.js';

// Addresses of this file: 127.0.7.0/24.
const VIP = '127.0.7.50';
const IPS = ['127.0.7.11', '127.0.7.12'];
const svc = service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function backends(ips = IPS): Promise<GrpcBackend[]> {
  const bs = await Promise.all(ips.map((ip) => startGrpcBackend(ip, 9000)));
  cleanups.push(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

function clients(n: number): EchoClientHandle[] {
  const cs = Array.from({ length: n }, () => new EchoClientHandle(`${VIP}:8080`));
  cleanups.push(() => cs.forEach((c) => c.close()));
  return cs;
}

const endpointState = async (d: TestDaemon, ip: string) =>
  (await d.portStats('default/echo:grpc'))?.endpoints.find((e) => e.key === `${ip}:9000`);
const counters = async (d: TestDaemon) => (await d.portStats('default/echo:grpc'))?.counters;

describe('draining a leaving endpoint with real grpc-js clients', () => {
  it('an endpoint marked terminating in the file: its connections get GOAWAY within 1 s, close when their RPCs end, no RPC fails', async () => {
    await backends();
    const d = await startTestDaemon([svc, endpointSlice('echo-1', IPS)], { maxConnectionAgeMs: 0 });
    cleanups.push(() => d.stop());
    const cs = clients(10);
    await Promise.all(cs.map((c) => c.who()));
    const first = await endpointState(d, IPS[0] as string);
    expect(first?.active).toBe(5);
    // Steady 200 ms RPCs on every channel while the endpoint leaves.
    const load = Promise.all(cs.map((c) => steadyLoad(c, 10, 4000, 200)));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await d.edit([
      svc,
      endpointSlice('echo-1', [
        { ip: IPS[0] as string, ready: false, serving: true, terminating: true },
        IPS[1] as string,
      ]),
    ]);
    await waitFor(
      'GOAWAY to every connection of the endpoint',
      async () => ((await counters(d))?.drainsStarted.get('endpoint_terminating') ?? 0) === 5,
      1000,
    );
    const goawayWithin = Date.now() - t0;
    await waitFor(
      'its connections closed',
      async () => (await endpointState(d, IPS[0] as string))?.draining === 0,
      3000,
    );
    const results = await load;
    const failed = results.reduce((n, r) => n + r.failed, 0);
    expect(results.flatMap((r) => [...r.errors.keys()])).toEqual([]);
    expect(failed).toBe(0);
    expect(goawayWithin).toBeLessThan(1000);
    expect((await counters(d))?.drainsEnded.get('graceful')).toBe(5);
    expect((await endpointState(d, IPS[1] as string))?.active).toBe(10);
  });

  it('a server stream longer than the drain grace is closed at the deadline and counted as forced', async () => {
    await backends([IPS[0] as string]);
    const d = await startTestDaemon([svc, endpointSlice('echo-1', [IPS[0] as string])], {
      maxConnectionAgeMs: 300,
      drainGraceMs: 1000,
      rebalanceThreshold: 0,
    });
    cleanups.push(() => d.stop());
    const [c] = clients(1) as [EchoClientHandle];
    const started = Date.now();
    const stream = c.ticks(60, 100); // 6 s of messages
    await expect(stream).rejects.toMatchObject({ code: expect.any(Number) });
    const took = Date.now() - started;
    await waitFor(
      'forced drain counted',
      async () => (await counters(d))?.drainsEnded.get('forced') === 1,
    );
    expect(took).toBeLessThan(3000);
    expect((await counters(d))?.drainsStarted.get('max_age')).toBe(1);
  });

  it('SIGTERM drains h2c connections: an RPC in flight completes, then the proxy exits 0 before the grace', async () => {
    const [b] = await backends([IPS[0] as string]);
    const file = await manifestsFile([svc, endpointSlice('echo-1', [IPS[0] as string])]);
    cleanups.push(() => file.remove());
    const proxy = await startProxyProcess([
      '--source',
      `file:${file.path}`,
      '--intercept',
      'none',
      '--shutdown-grace',
      '20s',
    ]);
    cleanups.push(() => proxy.stop('SIGKILL'));
    const [c] = clients(1) as [EchoClientHandle];
    await c.who();
    const inflight = c.who(1500);
    await waitFor('RPC at the backend', () => (b?.served ?? 0) === 2);
    const t0 = Date.now();
    const code = proxy.stop('SIGTERM');
    await expect(inflight).resolves.toBe(`${IPS[0]}:9000`);
    expect(await code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const shutdown = proxy.logs.find(
      (l) => l.msg === 'stopped accepting; draining open connections',
    );
    expect(shutdown?.draining).toBe(1);
  });
});
