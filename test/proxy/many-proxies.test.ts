import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectGreeted, startTcpBackend, type TcpBackend } from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file: 127.0.11.0/24. Four proxies, as on four nodes, each with its own
// counts, one VIP each; the same four backends.
const BACKENDS = ['127.0.11.11', '127.0.11.12', '127.0.11.13', '127.0.11.14'];
const vip = (i: number) => `127.0.11.${51 + i}`;

let backends: TcpBackend[] = [];
let proxies: TestDaemon[] = [];

beforeAll(async () => {
  backends = await Promise.all(BACKENDS.map((ip) => startTcpBackend(ip, 9000)));
  proxies = await Promise.all([0, 1, 2, 3].map(() => startTestDaemon([])));
});

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
  await Promise.all(backends.map((b) => b.close()));
});

describe('several proxies, each with its own counts', () => {
  it('four proxies each take one new client for the same four fresh endpoints: all pick the same one in under 5% of 200 trials', async () => {
    let same = 0;
    const trials = 200;
    const firsts = new Map<string, number>();
    for (let t = 0; t < trials; t++) {
      // A new Service each trial: its endpoints are fresh to every proxy.
      const name = `svc-${t}`;
      const picks = await Promise.all(
        proxies.map(async (p, i) => {
          const sink = p.daemon.sink;
          sink.upsertService(
            service(name, { clusterIP: vip(i), ports: [{ name: 'grpc', port: 8080 }] }),
          );
          sink.upsertEndpointSlice(endpointSlice(`${name}-1`, BACKENDS, { service: name }));
          sink.commit(true);
          await p.daemon.settled();
          const c = await connectGreeted(vip(i), 8080);
          c.socket.destroy();
          sink.deleteEndpointSlice('default', `${name}-1`);
          sink.deleteService('default', name);
          sink.commit(true);
          await p.daemon.settled();
          return c.backend;
        }),
      );
      if (new Set(picks).size === 1) same++;
      for (const pick of picks) firsts.set(pick, (firsts.get(pick) ?? 0) + 1);
    }
    // Every endpoint is a first pick about a quarter of the time (800 picks in all).
    expect(
      [...firsts.values()].every((n) => n > 120 && n < 280),
      JSON.stringify([...firsts]),
    ).toBe(true);
    // A random starting point gives about 1/64 (1.6%); starting at the list's head gives 100%.
    expect(same / trials).toBeLessThan(0.05);
  }, 120_000);
});
