import { describe, expect, it } from 'vitest';
import { EchoClientHandle, steadyLoad } from '../support/grpc.js';
import { useGrpcFixture } from '../support/grpc-fixture.js';

// Addresses of this file: 127.0.8.0/24.
const IPS = ['127.0.8.11', '127.0.8.12', '127.0.8.13'];
// The default budget (10% of 20 connections = 2 at once) still drains each one every ~2 s.
const env = useGrpcFixture({
  vip: '127.0.8.50',
  ips: IPS,
  proxyArgs: ['--max-connection-age', '2s'],
});

describe('many grpc-js clients under max age', () => {
  it('20 channels, steady RPCs for 30 s, max age 2 s: every connection drained several times, 0 failed RPCs, every client reaches every backend', async () => {
    const { proxy, target } = env();
    const clients = Array.from({ length: 20 }, () => new EchoClientHandle(target));
    try {
      const results = await Promise.all(clients.map((c) => steadyLoad(c, 10, 30_000)));
      expect(results.flatMap((r) => [...r.errors.keys()])).toEqual([]);
      expect(results.reduce((n, r) => n + r.failed, 0)).toBe(0);
      expect(results.reduce((n, r) => n + r.ok, 0)).toBe(20 * 300);
      for (const [i, r] of results.entries()) {
        expect([...r.perBackend.keys()].sort(), `client ${i}`).toEqual(
          IPS.map((ip) => `${ip}:9000`),
        );
      }
      // 20 connections over 30 s with a 2 s age: each drained several times.
      const drains = await proxy.metricSum('kube_lc_proxy_drains_started_total', {
        reason: 'max_age',
      });
      expect(drains).toBeGreaterThanOrEqual(20 * 4);
      expect(await proxy.metricSum('kube_lc_proxy_drains_ended_total', { outcome: 'forced' })).toBe(
        0,
      );
      expect(
        await proxy.metricSum('kube_lc_proxy_drained_streams_total', { outcome: 'reset' }),
      ).toBe(0);
    } finally {
      clients.forEach((c) => c.close());
    }
  }, 60_000);
});
