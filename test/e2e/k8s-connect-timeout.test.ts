/**
 * A backend whose SYNs vanish (a node gone, a black-holed route) rather than being refused:
 * the proxy's dial times out and it moves the client to the next endpoint, so the client sees
 * a working connection, only later. On loopback a dead port always refuses, so this needs a
 * DROP rule inside the backend pod's namespace.
 */
import { describe, expect, it } from 'vitest';
import { canUseNetns, setupHarness, startTcpClient } from './harness/index.js';
import { startTcpBackends } from './support/backends.js';
import { startCluster, type ServiceSpec } from './support/cluster.js';
import { tally } from './support/wait.js';

describe.runIf(canUseNetns())('connect timeout (k8s source)', () => {
  const harness = setupHarness();

  it('moves clients of an endpoint that drops SYNs to the others after --connect-timeout, and counts it', async () => {
    const h = harness();
    const c = await startCluster(h, 'to');
    const [silent, ...others] = await startTcpBackends(c, 'to', 3, 8080);
    // Inside the silent backend's own namespace: its SYNs are dropped, nothing answers.
    await h.exec(
      silent!.pod.ns,
      ['iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '8080', '-j', 'DROP'],
      { check: true },
    );
    const svc: ServiceSpec = {
      name: 'echo',
      clusterIP: '10.96.0.10',
      port: 80,
      targetPort: 8080,
      endpoints: [silent!, ...others].map((b) => b.pod.ip),
    };
    const { proxy } = await c.serve(svc, ['--connect-timeout', '300ms', '--metrics-per-endpoint']);

    const pod = await c.node.addPod('to-c1');
    const client = await startTcpClient(h, pod.ns, svc.clusterIP, svc.port, {
      count: 12,
      connectTimeoutMs: 5000,
    });
    const got = tally(client.backends);
    expect(got[silent!.name]).toBeUndefined();
    expect(Object.values(got).reduce((a, b) => a + b, 0)).toBe(12);
    const metrics = await proxy.metrics();
    const timeouts = new RegExp(
      `kube_lc_proxy_connect_failures_total\\{service_port="default/echo:tcp",endpoint="${silent!.pod.ip.replace(/\./g, '\\.')}:8080",reason="timeout"\\} ([0-9]+)`,
    ).exec(metrics);
    // At least one dial timed out; after it the endpoint is ejected, so not every client waits.
    expect(Number(timeouts?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(Number(timeouts?.[1] ?? 0)).toBeLessThan(12);
    await client.close();
  });
});
