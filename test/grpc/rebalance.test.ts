import { describe, expect, it } from 'vitest';
import type { DebugState } from '../../src/metrics/state.js';
import { EchoClientHandle, steadyLoad } from '../support/grpc.js';
import { useGrpcFixture } from '../support/grpc-fixture.js';

// Addresses of this file: 127.0.10.0/24.
const IPS = ['127.0.10.11', '127.0.10.12', '127.0.10.13', '127.0.10.14'];
// Max age off: any movement comes from the rebalance alone.
const env = useGrpcFixture({
  vip: '127.0.10.50',
  ips: IPS,
  initialEndpoints: 2,
  proxyArgs: ['--max-connection-age', '0', '--workers', '2'],
});

async function rebalancing(): Promise<boolean> {
  const state = (await (await fetch(`${env().proxy.metricsUrl}/debug/state`)).json()) as DebugState;
  return state.servicePorts[0]?.rebalancing === true;
}

async function activeByEndpoint(): Promise<number[]> {
  const state = (await (await fetch(`${env().proxy.metricsUrl}/debug/state`)).json()) as DebugState;
  const eps = state.servicePorts[0]?.endpoints ?? [];
  return IPS.map((ip) => eps.find((e) => e.endpoint === `${ip}:9000`)?.active ?? 0);
}

describe('rebalance after scale-out', () => {
  it('100 channels on 2 backends, 2 more become ready: max/mean <= 1.10 within 10 s, 0 failed RPCs, at most 75 drains', async () => {
    const { proxy, target } = env();
    const clients = Array.from({ length: 100 }, () => new EchoClientHandle(target));
    try {
      const load = Promise.all(clients.map((c) => steadyLoad(c, 4, 20_000)));
      await new Promise((r) => setTimeout(r, 3000));
      expect((await activeByEndpoint()).slice(0, 2)).toEqual([50, 50]);
      const t0 = Date.now();
      await env().setEndpoints(4);
      let sawRebalancing = false;
      let skew = Infinity;
      let counts: number[] = [];
      while (Date.now() - t0 < 10_000) {
        counts = await activeByEndpoint();
        sawRebalancing ||= await rebalancing();
        const total = counts.reduce((a, b) => a + b, 0);
        skew = Math.max(...counts) / (total / counts.length);
        if (total === 100 && skew <= 1.1) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const converged = (Date.now() - t0) / 1000;
      expect(sawRebalancing, '/debug/state showed the rebalance').toBe(true);
      expect(skew, `counts ${counts} after ${converged}s`).toBeLessThanOrEqual(1.1);
      const results = await load;
      expect(results.flatMap((r) => [...r.errors.keys()])).toEqual([]);
      expect(results.reduce((n, r) => n + r.failed, 0)).toBe(0);
      const drains = await proxy.metricSum('kube_lc_proxy_drains_started_total');
      // Every connection on the two new backends got there through a drain (all 100 channels
      // were connected before they became ready); 50 moves is the exact minimum for 25 each.
      expect(drains).toBeGreaterThanOrEqual((counts[2] ?? 0) + (counts[3] ?? 0));
      expect(drains).toBeLessThanOrEqual(75);
      expect(
        await proxy.metricSum('kube_lc_proxy_drains_started_total', { reason: 'rebalance' }),
      ).toBe(drains);
    } finally {
      clients.forEach((c) => c.close());
    }
  }, 60_000);
});
