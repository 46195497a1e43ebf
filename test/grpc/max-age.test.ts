import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startGrpcBackend,
  EchoClientHandle,
  steadyLoad,
  type GrpcBackend,
} from '../support/grpc.js';
import { manifestsFile, type ManifestsFile } from '../support/manifests.js';
import { endpointSlice, service } from '../support/objects.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';

// Addresses of this file: 127.0.3.0/24.
const VIP = '127.0.3.50';
const IPS = ['127.0.3.11', '127.0.3.12', '127.0.3.13'];

let backends: GrpcBackend[] = [];
let file: ManifestsFile;
let proxy: ProxyProcess;

beforeAll(async () => {
  backends = await Promise.all(IPS.map((ip) => startGrpcBackend(ip, 9000)));
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
    '5s',
  ]);
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all(backends.map((b) => b.close()));
  await file?.remove();
});

describe('max connection age with a real grpc-js client', () => {
  it('one channel, 50 RPC/s for 60 s, max age 5 s: no failed RPC, drains counted, RPCs spread evenly', async () => {
    const client = new EchoClientHandle(`${VIP}:8080`);
    try {
      const r = await steadyLoad(client, 50, 60_000);
      expect(Object.fromEntries(r.errors)).toEqual({});
      expect(r.failed).toBe(0);
      expect(r.ok).toBe(3000);
      const drains = await proxy.metricSum('kube_lc_proxy_drains_started_total', {
        reason: 'max_age',
      });
      expect(drains).toBeGreaterThanOrEqual(10);
      const mean = r.ok / IPS.length;
      for (const ip of IPS) {
        const n = r.perBackend.get(`${ip}:9000`) ?? 0;
        expect(Math.abs(n - mean) / mean, `${ip} served ${n}, mean ${mean}`).toBeLessThanOrEqual(
          0.2,
        );
      }
      expect(await proxy.metricSum('kube_lc_proxy_drains_ended_total', { outcome: 'forced' })).toBe(
        0,
      );
    } finally {
      client.close();
    }
  }, 90_000);
});
