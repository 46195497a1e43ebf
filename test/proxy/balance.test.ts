import { afterEach, describe, expect, it } from 'vitest';
import type { DebugState } from '../../src/metrics/state.js';
import { endpointSlice, service } from '../support/objects.js';
import {
  connectGreeted,
  startTcpBackend,
  tally,
  waitFor,
  type GreetedClient,
  type TcpBackend,
} from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';

// Addresses of this file: 127.0.1.0/24 (other test files use other blocks).
const VIP = '127.0.1.50';
const ips = (n: number) => Array.from({ length: n }, (_, i) => `127.0.1.${11 + i}`);
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

async function open(n: number): Promise<GreetedClient[]> {
  const out: GreetedClient[] = [];
  for (let i = 0; i < n; i++) out.push(await connectGreeted(VIP, 8080));
  clients.push(...out);
  return out;
}

describe('least-connection balancing from a manifests file', () => {
  it('spreads 40 long-lived connections 10/10/10/10, sends the next 10 to a fifth endpoint, avoids a terminating one', async () => {
    backends = await Promise.all(ips(5).map((ip) => startTcpBackend(ip, 9000)));
    d = await startTestDaemon([svc, endpointSlice('echo-1', ips(4))]);
    expect(tally(await open(40))).toEqual(
      Object.fromEntries(ips(4).map((ip) => [`${ip}:9000`, 10])),
    );

    await d.edit([svc, endpointSlice('echo-1', ips(5))]);
    expect(tally(await open(10))).toEqual({ '127.0.1.15:9000': 10 });

    const [first, ...rest] = ips(5) as [string, ...string[]];
    await d.edit([
      svc,
      endpointSlice('echo-1', [
        { ip: first, ready: false, serving: true, terminating: true },
        ...rest,
      ]),
    ]);
    const next = tally(await open(8));
    expect(next[`${first}:9000`]).toBeUndefined();
    expect(Object.values(next).reduce((a, b) => a + b, 0)).toBe(8);
    // Existing connections to the terminating endpoint were not touched.
    expect(backends[0]?.sockets.size).toBe(10);
  });

  it('shows matching per-endpoint counts in /metrics (--metrics-per-endpoint) and /debug/state', async () => {
    backends = await Promise.all(ips(2).map((ip) => startTcpBackend(ip, 9000)));
    d = await startTestDaemon([svc, endpointSlice('echo-1', ips(2))], {
      metricsPerEndpoint: true,
    });
    await open(6);
    const metrics = await (await fetch(`${d.metricsUrl}/metrics`)).text();
    for (const ip of ips(2)) {
      expect(metrics).toContain(
        `kube_lc_proxy_active_connections{service_port="default/echo:grpc",endpoint="${ip}:9000"} 3`,
      );
    }
    expect(metrics).toMatch(
      /kube_lc_proxy_connection_skew_ratio\{service_port="default\/echo:grpc"\} 1\b/,
    );
    const state = (await (await fetch(`${d.metricsUrl}/debug/state`)).json()) as DebugState;
    expect(state.ready).toBe(true);
    expect(state.servicePorts[0]?.endpoints.map((e) => e.active)).toEqual([3, 3]);
    expect((await fetch(`${d.metricsUrl}/readyz`)).status).toBe(200);
  });

  it('retries the next endpoint when one refuses: no client sees a failure', async () => {
    backends = await Promise.all(ips(3).map((ip) => startTcpBackend(ip, 9000)));
    d = await startTestDaemon([svc, endpointSlice('echo-1', ips(3))], {
      metricsPerEndpoint: true,
    });
    await (backends[1] as TcpBackend).close();
    const got = tally(await open(20));
    expect(got['127.0.1.12:9000']).toBeUndefined();
    expect((got['127.0.1.11:9000'] ?? 0) + (got['127.0.1.13:9000'] ?? 0)).toBe(20);
    const metrics = await (await fetch(`${d.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /kube_lc_proxy_connect_failures_total\{service_port="default\/echo:grpc",endpoint="127\.0\.1\.12:9000",reason="refused"\} [1-9]/,
    );
  });

  it('resets the client when no endpoint accepts, and counts it', async () => {
    d = await startTestDaemon([svc, endpointSlice('echo-1', ips(2))], { maxConnectAttempts: 2 });
    await expect(connectGreeted(VIP, 8080, 2000)).rejects.toThrow();
    const t = d;
    await waitFor(
      'turned-away count',
      async () =>
        ((await t.portStats('default/echo:grpc'))?.counters.turnedAway.get('refused') ?? 0) === 1,
    );
    const metrics = await (await fetch(`${d.metricsUrl}/metrics`)).text();
    expect(metrics).toContain(
      'kube_lc_proxy_clients_turned_away_total{service_port="default/echo:grpc",reason="refused"} 1',
    );
    // Both endpoints refused: summed per Service port by default.
    expect(metrics).toContain(
      'kube_lc_proxy_connect_failures_total{service_port="default/echo:grpc",reason="refused"} 2',
    );
  });

  it('keeps serving the last good table after a bad edit, and counts it', async () => {
    backends = await Promise.all(ips(1).map((ip) => startTcpBackend(ip, 9000)));
    d = await startTestDaemon([svc, endpointSlice('echo-1', ips(1))]);
    await d.file.writeText(
      'kind: Service\nmetadata: {name: echo}\nspec: {clusterIP: 127.0.1.50, ports: [{name: grpc, port: 99999}]}\n',
    );
    const source = d.daemon.source as unknown as { stats: { rejectedUpdates: number } };
    await waitFor('rejected edit', () => source.stats.rejectedUpdates >= 1);
    expect(tally(await open(2))).toEqual({ '127.0.1.11:9000': 2 });
    const metrics = await (await fetch(`${d.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /kube_lc_proxy_rejected_updates_total\{source="file",kind="file"\} [1-9]/,
    );
  });

  it('reports not ready (what /readyz answers) once shutdown starts', async () => {
    backends = await Promise.all(ips(1).map((ip) => startTcpBackend(ip, 9000)));
    d = await startTestDaemon([svc, endpointSlice('echo-1', ips(1))], { shutdownGraceMs: 2000 });
    const [c] = await open(1);
    const stopping = d.daemon.shutdown();
    expect(d.daemon.ready).toBe(false);
    c?.socket.destroy();
    await stopping;
  });

  it('removes a deleted Service listener but keeps its open connections', async () => {
    backends = await Promise.all(ips(1).map((ip) => startTcpBackend(ip, 9000)));
    d = await startTestDaemon([svc, endpointSlice('echo-1', ips(1))]);
    const [c] = await open(1);
    await d.edit([]);
    await expect(connectGreeted(VIP, 8080, 1000)).rejects.toThrow();
    c?.socket.write('still here\n');
    const echoed = await new Promise<string>((r) => {
      c?.socket.once('data', (x) => r(String(x)));
      c?.socket.resume();
    });
    expect(echoed).toBe('still here\n');
  });
});
