import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EchoClientHandle,
  startGrpcBackend,
  steadyLoad,
  type GrpcBackend,
} from '../support/grpc.js';
import { manifestsFile, type ManifestsFile } from '../support/manifests.js';
import { endpointSlice, service } from '../support/objects.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';

// Addresses of this file: 127.0.5.0/24.
const VIP = '127.0.5.50';
const IPS = ['127.0.5.11', '127.0.5.12', '127.0.5.13'];

let backends: GrpcBackend[] = [];
let file: ManifestsFile;
let proxy: ProxyProcess;

beforeAll(async () => {
  backends = await Promise.all(
    // Servers must allow pings this often, or they answer with GOAWAY ENHANCE_YOUR_CALM.
    IPS.map((ip) =>
      startGrpcBackend(ip, 9000, undefined, {
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.http2.min_ping_interval_without_data_ms': 500,
      }),
    ),
  );
  file = await manifestsFile([
    service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] }),
    endpointSlice('echo-1', IPS),
  ]);
  proxy = await startProxyProcess([
    '--source',
    `file:${file.path}`,
    '--intercept',
    'none',
    '--max-connection-age',
    '2s',
  ]);
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all(backends.map((b) => b.close()));
  await file?.remove();
});

describe('grpc-js with keepalive (grpc/grpc-node#3068)', () => {
  it('keepalive 1000 ms, RPCs of 200 ms, max age 2 s: no failed RPC in 60 s', async () => {
    const client = new EchoClientHandle(`${VIP}:8080`, {
      'grpc.keepalive_time_ms': 1000,
      'grpc.keepalive_timeout_ms': 5000,
    });
    try {
      const r = await steadyLoad(client, 20, 60_000, 200);
      expect(Object.fromEntries(r.errors)).toEqual({});
      expect(r.failed).toBe(0);
      expect(r.ok).toBe(1200);
      expect(
        await proxy.metricSum('kube_lc_proxy_drains_started_total', { reason: 'max_age' }),
      ).toBeGreaterThanOrEqual(20);
      expect(await proxy.metricSum('kube_lc_proxy_drains_ended_total', { outcome: 'forced' })).toBe(
        0,
      );
    } finally {
      client.close();
    }
  }, 90_000);
});
