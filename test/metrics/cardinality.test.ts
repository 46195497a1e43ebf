import { afterEach, describe, expect, it } from 'vitest';
import { endpointSlice, service } from '../support/objects.js';
import {
  connectGreeted,
  startTcpBackend,
  type GreetedClient,
  type TcpBackend,
} from '../support/backends.js';
import { startTestDaemon, type TestDaemon } from '../support/daemon.js';

// Addresses of this file: 127.13.0.0/16 (other test files use 127.0.x.y). 1,000 Services with
// 3 endpoints each, one listener per Service on its own ClusterIP (intercept none).
const N = 1000;
const vip = (i: number) => `127.13.${Math.floor(i / 200)}.${(i % 200) + 1}`;
const BACKEND = '127.13.250.1';

function objects(): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < N; i++) {
    const name = `svc-${i}`;
    out.push(service(name, { clusterIP: vip(i), ports: [{ name: 'grpc', port: 8080 }] }));
    // Service 0 reaches a real backend; the other endpoints are never dialled.
    const eps =
      i === 0
        ? [BACKEND, '127.13.251.2', '127.13.251.3']
        : [1, 2, 3].map((k) => `10.13.${i >> 8}.${k}`);
    out.push(endpointSlice(`${name}-1`, eps, { service: name }));
  }
  return out;
}

/** Series lines (not comments) of a scrape. */
const series = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

let d: TestDaemon | undefined;
let backend: TcpBackend | undefined;
const clients: GreetedClient[] = [];

afterEach(async () => {
  for (const c of clients) c.socket.destroy();
  clients.length = 0;
  await d?.stop();
  d = undefined;
  await backend?.close();
  backend = undefined;
});

describe('metrics with 1,000 idle Service ports', () => {
  it('has no per-endpoint series by default, and per-Service-port series only for the port in use', async () => {
    backend = await startTcpBackend(BACKEND, 9000);
    d = await startTestDaemon(objects());
    const scrape = async () => series(await (await fetch(`${d?.metricsUrl}/metrics`)).text());

    const idle = await scrape();
    expect(idle.filter((l) => l.includes('endpoint="'))).toEqual([]);
    expect(idle.filter((l) => l.includes('service_port="'))).toEqual([]);
    expect(idle).toContain('kube_lc_proxy_service_ports{state="listening"} 1000');
    expect(idle).toContain('kube_lc_proxy_service_ports{state="in_use"} 0');
    // Node-level series only: a few dozen, whatever the number of Service ports.
    expect(idle.length).toBeLessThan(100);

    clients.push(await connectGreeted(vip(0), 8080));
    const used = await scrape();
    expect(used.filter((l) => l.includes('endpoint="'))).toEqual([]);
    expect(used).toContain('kube_lc_proxy_active_connections{service_port="default/svc-0:grpc"} 1');
    expect(used).toContain(
      'kube_lc_proxy_endpoints{service_port="default/svc-0:grpc",state="ready"} 3',
    );
    expect(used).toContain('kube_lc_proxy_service_ports{state="in_use"} 1');
    expect(used).toContain('kube_lc_proxy_service_port_skew{le="+Inf"} 1');
    const ports = new Set(
      used.flatMap((l) => /service_port="([^"]+)"/.exec(l)?.[1] ?? []).filter((p) => p !== ''),
    );
    expect([...ports]).toEqual(['default/svc-0:grpc']);
  });

  it('has one series per endpoint of every Service port with --metrics-per-endpoint', async () => {
    d = await startTestDaemon(objects(), { metricsPerEndpoint: true });
    const lines = series(await (await fetch(`${d.metricsUrl}/metrics`)).text());
    const active = lines.filter((l) => l.startsWith('kube_lc_proxy_active_connections{'));
    expect(active).toHaveLength(3 * N);
    expect(active).toContain(
      'kube_lc_proxy_active_connections{service_port="default/svc-7:grpc",endpoint="10.13.0.2:9000"} 0',
    );
    expect(lines.filter((l) => l.startsWith('kube_lc_proxy_connections_total{'))).toHaveLength(
      3 * N,
    );
  });
});
