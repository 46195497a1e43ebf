/**
 * The proxy end to end, from the real CLI with the Kubernetes source: a stand-in API server in a
 * pod, the proxy in the node namespace writing its REDIRECT rules there, fixture TCP servers as
 * backend pods and fixture clients in client pods dialling ClusterIPs.
 */
import { describe, expect, it } from 'vitest';
import { canUseNetns, probeTcp, setupHarness, startTcpClient } from './harness/index.js';
import { startTcpBackends } from './support/backends.js';
import {
  endpointsOf,
  listenPort,
  listens,
  natSave,
  redirects,
  servicePortName,
  startCluster,
  waitForSync,
  type ServiceSpec,
} from './support/cluster.js';
import { tally, waitUntil } from './support/wait.js';

describe.runIf(canUseNetns())('least connection through ClusterIPs (k8s source)', () => {
  const harness = setupHarness();

  it('/readyz answers 503 until the first full sync and 200 after', async () => {
    const h = harness();
    const c = await startCluster(h, 'rz');
    const [b1] = await startTcpBackends(c, 'rz', 1, 8080);
    const svc: ServiceSpec = {
      name: 'echo',
      clusterIP: '10.96.0.10',
      port: 80,
      targetPort: 8080,
      endpoints: [b1!.pod.ip],
    };
    await c.applyService(svc);
    // Lists are answered 3 s late: the proxy runs, serves /readyz, and has not synced yet.
    await c.api.setFaults({ listDelayMs: 3000 });
    const proxy = await c.startProxy();

    expect(await proxy.readyz()).toBe(503);
    const listed = async (): Promise<string[]> =>
      (await c.api.requests())
        .filter((r) => r.verb === 'list' && r.status === 200)
        .map((r) => String(r.resource));
    // Both lists were still unanswered after that 503: it came before the full sync.
    expect((await listed()).sort()).not.toEqual(['endpointslices', 'services']);

    await waitUntil('/readyz 200', async () => (await proxy.readyz()) === 200, {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    expect(new Set(await listed())).toEqual(new Set(['endpointslices', 'services']));
    const state = await proxy.state();
    expect(state.ready).toBe(true);
    expect(state.servicePorts.map((p) => p.servicePort)).toEqual([servicePortName(svc)]);
  });

  it('spreads 40 connections from client pods exactly 10/10/10/10 over 4 backends', async () => {
    const h = harness();
    const c = await startCluster(h, 'lc');
    const backends = await startTcpBackends(c, 'lc', 4, 8080);
    const svc: ServiceSpec = {
      name: 'echo',
      clusterIP: '10.96.0.10',
      port: 80,
      targetPort: 8080,
      endpoints: backends.map((b) => b.pod.ip),
    };
    const { proxy } = await c.serve(svc);

    const pods = [await c.node.addPod('lc-c1'), await c.node.addPod('lc-c2')];
    // Two client pods, 20 held connections each, opened at the same time.
    const clients = await Promise.all(
      pods.map((p) => startTcpClient(h, p.ns, svc.clusterIP, svc.port, { count: 20 })),
    );
    expect(tally(clients.flatMap((cl) => cl.backends))).toEqual({
      'lc-b1': 10,
      'lc-b2': 10,
      'lc-b3': 10,
      'lc-b4': 10,
    });

    // The proxy's own count agrees, and each backend saw 10 connections from the node (a
    // userspace proxy: backends see the node's address, not the client's).
    const eps = endpointsOf(await proxy.state(), servicePortName(svc));
    for (const b of backends) {
      expect(eps.get(`${b.pod.ip}:8080`)).toMatchObject({ active: 10, total: 10, eligible: true });
      const seen = b.server.process.events().filter((e) => e.event === 'connection');
      expect(seen.map((e) => String(e.remote).split(':')[0])).toEqual(
        Array(10).fill(c.node.bridgeIP),
      );
    }
    for (const cl of clients)
      expect(await cl.ping()).toEqual({ alive: [...Array(20).keys()], dead: [] });
  });

  it('sends the next 10 new connections to a fifth backend added by an EndpointSlice update', async () => {
    const h = harness();
    const c = await startCluster(h, 'so');
    const backends = await startTcpBackends(c, 'so', 4, 8080);
    const svc: ServiceSpec = {
      name: 'echo',
      clusterIP: '10.96.0.10',
      port: 80,
      targetPort: 8080,
      endpoints: backends.map((b) => b.pod.ip),
    };
    const { proxy } = await c.serve(svc);
    const pod = await c.node.addPod('so-c1');
    const held = await startTcpClient(h, pod.ns, svc.clusterIP, svc.port, { count: 40 });
    expect(Object.values(tally(held.backends))).toEqual([10, 10, 10, 10]);

    // Scale-out: the slice gets a fifth ready endpoint.
    const [b5] = await startTcpBackends(c, 'so', 1, 8080, 5);
    await c.applySlice({ ...svc, endpoints: [...svc.endpoints, b5!.pod.ip] });
    await waitUntil(
      'the fifth endpoint in the proxy',
      async () =>
        endpointsOf(await proxy.state(), servicePortName(svc)).get(`${b5!.pod.ip}:8080`)?.eligible,
    );

    const next = await startTcpClient(h, pod.ns, svc.clusterIP, svc.port, { count: 10 });
    expect(next.backends).toEqual(Array(10).fill('so-b5'));
    // Now all five hold 10: the next five go one to each.
    const after = await startTcpClient(h, pod.ns, svc.clusterIP, svc.port, { count: 5 });
    expect(tally(after.backends)).toEqual({
      'so-b1': 1,
      'so-b2': 1,
      'so-b3': 1,
      'so-b4': 1,
      'so-b5': 1,
    });
    // Nothing held was disturbed by the update.
    expect(held.peerClosed()).toEqual([]);
  });

  it('removes the REDIRECT rule and the listener of a deleted Service, and only those', async () => {
    const h = harness();
    const c = await startCluster(h, 'del');
    const backends = await startTcpBackends(c, 'del', 2, 8080);
    const endpoints = backends.map((b) => b.pod.ip);
    const gone: ServiceSpec = {
      name: 'gone',
      clusterIP: '10.96.0.10',
      port: 80,
      targetPort: 8080,
      endpoints,
    };
    const kept: ServiceSpec = {
      name: 'kept',
      clusterIP: '10.96.0.11',
      port: 81,
      targetPort: 8080,
      endpoints,
    };
    const { proxy, state } = await c.serve([gone, kept]);
    const goneListener = listenPort(state, servicePortName(gone))!;
    const keptListener = listenPort(state, servicePortName(kept))!;
    const client = await c.node.addPod('del-c1');
    expect(await probeTcp(h, client.ns, gone.clusterIP, gone.port)).toMatchObject({ ok: true });
    expect(await listens(h, c.node.ns, goneListener)).toBe(true);

    await c.api.delete('services', 'default', gone.name);
    const after = await waitForSync(c, proxy, [servicePortName(kept)]);
    expect(after.rules).toEqual([
      {
        comment: servicePortName(kept),
        clusterIP: kept.clusterIP,
        port: kept.port,
        toPort: keptListener,
      },
    ]);
    expect(await natSave(h, c.node.ns)).not.toContain(servicePortName(gone));
    expect(redirects(await natSave(h, c.node.ns)).map((r) => r.clusterIP)).toEqual([
      kept.clusterIP,
    ]);

    // The listener is closed, and the ClusterIP goes nowhere.
    expect(await listens(h, c.node.ns, goneListener)).toBe(false);
    expect(
      await probeTcp(h, client.ns, gone.clusterIP, gone.port, { connectTimeoutMs: 1500 }),
    ).toMatchObject({ ok: false });
    expect(await probeTcp(h, client.ns, kept.clusterIP, kept.port)).toMatchObject({ ok: true });
  });
});
