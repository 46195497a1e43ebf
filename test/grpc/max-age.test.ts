import { describe, expect, it } from 'vitest';
import { EchoClientHandle, steadyLoad } from '../support/grpc.js';
import { useGrpcFixture } from '../support/grpc-fixture.js';

// Addresses of this file: 127.0.3.0/24.
const IPS = ['127.0.3.11', '127.0.3.12', '127.0.3.13'];
const env = useGrpcFixture({
  vip: '127.0.3.50',
  ips: IPS,
  proxyArgs: ['--max-connection-age', '5s'],
});

describe('max connection age with a real grpc-js client', () => {
  it('one channel, 50 RPC/s for 60 s, max age 5 s: no failed RPC, drains counted, RPCs spread evenly', async () => {
    const { proxy, target } = env();
    const client = new EchoClientHandle(target);
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
