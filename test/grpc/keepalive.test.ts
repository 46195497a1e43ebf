import { describe, expect, it } from 'vitest';
import { EchoClientHandle, steadyLoad } from '../support/grpc.js';
import { useGrpcFixture } from '../support/grpc-fixture.js';

// Addresses of this file: 127.0.5.0/24.
const env = useGrpcFixture({
  vip: '127.0.5.50',
  ips: ['127.0.5.11', '127.0.5.12', '127.0.5.13'],
  proxyArgs: ['--max-connection-age', '2s'],
  // Servers must allow pings this often, or they answer with GOAWAY ENHANCE_YOUR_CALM.
  serverOptions: {
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 500,
  },
});

describe('grpc-js with keepalive (grpc/grpc-node#3068)', () => {
  it('keepalive 1000 ms, RPCs of 200 ms, max age 2 s: no failed RPC in 60 s', async () => {
    const { proxy, target } = env();
    const client = new EchoClientHandle(target, {
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
