/**
 * An API server outage end to end: the stand-in stops for 10 s in `reset` mode (it accepts every
 * TCP connection and resets it at once, counting them), while clients keep using the proxy.
 */
import { describe, expect, it } from 'vitest';
import { canUseNetns, setupHarness, startTcpClient } from './harness/index.js';
import { startTcpBackends } from './support/backends.js';
import { endpointsOf, servicePortName, startCluster, type ServiceSpec } from './support/cluster.js';
import { sleep, tally, waitUntil } from './support/wait.js';

const OUTAGE_MS = 10_000;

/** The most timestamps that fall in any window [t, t + windowMs) starting at one of them. */
function maxInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[j]! - sorted[i]! < windowMs && j < sorted.length) j++;
    max = Math.max(max, j - i);
  }
  return max;
}

describe.runIf(canUseNetns())('API server outage (k8s source)', () => {
  const harness = setupHarness();

  it('keeps connections and balancing through a 10 s outage, applies the change made meanwhile within 5 s of the return, and retries at most 5 times a second', async () => {
    const h = harness();
    const c = await startCluster(h, 'out');
    const backends = await startTcpBackends(c, 'out', 5, 8080);
    const first4 = backends.slice(0, 4);
    const b5 = backends[4]!;
    const svc: ServiceSpec = {
      name: 'echo',
      clusterIP: '10.96.0.10',
      port: 80,
      targetPort: 8080,
      endpoints: first4.map((b) => b.pod.ip),
    };
    const spName = servicePortName(svc);
    const { proxy } = await c.serve(svc);
    const pod = await c.node.addPod('out-c1');
    const held = await startTcpClient(h, pod.ns, svc.clusterIP, svc.port, {
      count: 8,
      maxSeconds: 90,
    });
    expect(Object.values(tally(held.backends))).toEqual([2, 2, 2, 2]);

    const stoppedAt = await c.api.stop('reset');

    // During the outage: new connections are balanced over the last known endpoints...
    await sleep(1000);
    const during = await startTcpClient(h, pod.ns, svc.clusterIP, svc.port, {
      count: 8,
      maxSeconds: 90,
    });
    expect(tally(during.backends)).toEqual({ 'out-b1': 2, 'out-b2': 2, 'out-b3': 2, 'out-b4': 2 });
    // ...and a scale-out happens that the proxy cannot see yet.
    await c.applySlice({ ...svc, endpoints: backends.map((b) => b.pod.ip) });
    await sleep(stoppedAt + OUTAGE_MS / 2 - Date.now());
    expect([...endpointsOf(await proxy.state(), spName).keys()]).toHaveLength(4);
    expect(await held.ping()).toEqual({ alive: [...Array(8).keys()], dead: [] });

    await sleep(stoppedAt + OUTAGE_MS - Date.now());
    const attempts = (await c.api.outageConnections()).filter((t) => t >= stoppedAt);
    const restartedAt = await c.api.restart();

    // Not one open connection failed: every one still carries bytes both ways.
    for (const cl of [held, during]) {
      expect(cl.peerClosed()).toEqual([]);
      expect(await cl.ping()).toEqual({ alive: [...Array(8).keys()], dead: [] });
    }

    // While it was down, the proxy tried again, but never more than 5 times in any second, all
    // request loops together (two informers and the node poller). Each connection is reset
    // before a byte of HTTP, so the stand-in cannot tell which loop made it: the total is what
    // can be measured, and it is the stricter bound (the per-informer token bucket alone would
    // allow 5 a second for each informer).
    expect(attempts.length).toBeGreaterThan(0);
    expect(
      maxInWindow(attempts, 1000),
      `attempts at ms ${attempts.map((t) => t - stoppedAt)}`,
    ).toBeLessThanOrEqual(5);

    // The change made during the outage applies within 5 s of the return...
    const appliedAt = await waitUntil(
      'the fifth endpoint in the proxy after the return',
      async () =>
        endpointsOf(await proxy.state(), spName).get(`${b5.pod.ip}:8080`)?.eligible === true &&
        Date.now(),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    // (Soft, so that the checks below still run and report when this one fails.)
    expect
      .soft(
        appliedAt - restartedAt,
        `ms from the return to the change applied; retries at ms ${attempts.map((t) => t - stoppedAt)}`,
      )
      .toBeLessThanOrEqual(5000);
    // ...and the next connections go to the new, empty backend.
    const next = await startTcpClient(h, pod.ns, svc.clusterIP, svc.port, { count: 4 });
    expect(next.backends).toEqual(Array(4).fill('out-b5'));
  });
});
