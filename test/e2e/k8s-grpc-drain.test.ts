/**
 * HTTP/2 drain end to end: grpc-js clients in pods call a ClusterIP whose endpoints are grpc-js
 * servers in pods; one endpoint turns terminating in its EndpointSlice, and the proxy must drain
 * that endpoint's connections with a graceful GOAWAY while every RPC succeeds.
 */
import { describe, expect, it } from 'vitest';
import { canUseNetns, setupHarness } from './harness/index.js';
import { startGrpcBackends, startGrpcClient, type GrpcClient } from './support/backends.js';
import { endpointsOf, servicePortName, startCluster, type ServiceSpec } from './support/cluster.js';
import { metricSum } from './support/proxy.js';
import { sleep, tally, waitUntil } from './support/wait.js';

const MAX_STREAM_ID = 2 ** 31 - 1;

describe.runIf(canUseNetns())('HTTP/2 drain of a terminating endpoint (k8s source)', () => {
  const harness = setupHarness();

  it('sends GOAWAY on its connections, which close; clients reconnect elsewhere and no RPC fails', async () => {
    const h = harness();
    const c = await startCluster(h, 'gd');
    const backends = await startGrpcBackends(c, 'gd', 4, 50051);
    const svc: ServiceSpec = {
      name: 'grpc',
      portName: 'grpc',
      clusterIP: '10.96.0.20',
      port: 9000,
      targetPort: 50051,
      endpoints: backends.map((b) => b.pod.ip),
    };
    const spName = servicePortName(svc);
    const { proxy } = await c.serve(svc);

    // Two client pods, 6 channels each (one TCP connection per channel), connected one client
    // after the other: least connection puts 3 on each backend.
    const target = `${svc.clusterIP}:${svc.port}`;
    const clients: GrpcClient[] = [];
    for (const role of ['gd-c1', 'gd-c2']) {
      const pod = await c.node.addPod(role);
      clients.push(await startGrpcClient(h, pod.ns, target, { channels: 6, delayMs: 50 }));
    }
    const initial = clients.flatMap((cl) => cl.backends);
    expect(tally(initial)).toEqual({ 'gd-g1': 3, 'gd-g2': 3, 'gd-g3': 3, 'gd-g4': 3 });
    // The proxy counts the same.
    const before = endpointsOf(await proxy.state(), spName);
    expect([...before.values()].map((e) => e.active)).toEqual([3, 3, 3, 3]);
    await sleep(1000); // RPCs under way on every connection

    // gd-g4 starts terminating: not ready, still serving.
    const leaving = backends[3]!;
    await c.applySlice({
      ...svc,
      endpoints: [
        ...backends.slice(0, 3).map((b) => b.pod.ip),
        { ip: leaving.pod.ip, ready: false, serving: true, terminating: true },
      ],
    });

    const goaways = () =>
      clients.flatMap((cl) => cl.events('goaway')).filter((g) => g.lastStreamId === MAX_STREAM_ID);
    const moves = () => clients.flatMap((cl) => cl.events('moved'));
    await waitUntil(
      'GOAWAY on the 3 connections of the terminating backend, and their clients moved',
      async () =>
        goaways().length >= 3 && moves().length >= 3 && (await leaving.stats()).open === 0,
      {
        timeoutMs: 15_000,
        intervalMs: 200,
        describe: () => ({
          goaways: goaways(),
          moves: moves(),
          sessions: clients.map((cl) => cl.events('session').length),
          closed: clients.map((cl) => cl.events('session-close').length),
          errors: clients.flatMap((cl) => cl.events('rpc-error')).slice(0, 5),
          proxyLog: proxy
            .logs()
            .filter((l) => Number(l.level) >= 30)
            .slice(-15),
        }),
      },
    );
    await sleep(1000); // more RPCs, now on the new connections
    const servedByLeaving = (await leaving.stats()).served;
    await sleep(500);
    expect((await leaving.stats()).served).toBe(servedByLeaving);

    const totals = await Promise.all(clients.map((cl) => cl.stop()));
    // Not one RPC failed, before, during or after the drain.
    expect(clients.flatMap((cl) => cl.events('rpc-error'))).toEqual([]);
    expect(totals.map((t) => t.failed)).toEqual([0, 0]);
    expect(totals.reduce((n, t) => n + t.ok, 0)).toBeGreaterThan(12 * 20);

    // Exactly the connections that were on gd-g4 got the proxy's graceful GOAWAY, each once,
    // as the first GOAWAY they saw, and then closed. A GOAWAY that follows on the same
    // connection is the backend's own, sent when the proxy ended its side of the connection: it
    // is NO_ERROR with a lower last-stream-id, which RFC 9113 §6.8 allows.
    const all = clients.flatMap((cl, i) =>
      cl.events('goaway').map((e) => ({
        session: `${i}/${String(e.session)}`,
        code: Number(e.code),
        lastStreamId: Number(e.lastStreamId),
        debug: String(e.debug),
      })),
    );
    const ours = all.filter((g) => g.debug.startsWith('kube-lc-proxy'));
    expect(ours).toHaveLength(3);
    expect(new Set(ours.map((g) => g.session)).size).toBe(3);
    for (const g of ours) {
      expect(g).toMatchObject({
        code: 0, // NO_ERROR
        lastStreamId: MAX_STREAM_ID,
        debug: 'kube-lc-proxy: endpoint_terminating',
      });
      expect(all.find((x) => x.session === g.session)).toBe(g);
    }
    for (const g of all.filter((x) => !ours.includes(x))) {
      expect(ours.map((o) => o.session)).toContain(g.session);
      expect(g.code).toBe(0);
      expect(g.lastStreamId).toBeLessThan(MAX_STREAM_ID);
    }
    const closedSessions = clients.flatMap((cl, i) =>
      cl.events('session-close').map((e) => `${i}/${String(e.session)}`),
    );
    for (const g of ours) expect(closedSessions).toContain(g.session);

    // Those channels, and only those, moved; each to one of the ready backends.
    const movedFrom = clients.flatMap((cl, i) =>
      cl.events('moved').map((e) => ({ channel: `${i}/${e.channel}`, from: e.from, to: e.to })),
    );
    const onLeaving = clients.flatMap((cl, i) =>
      cl.backends.flatMap((b, ch) => (b === leaving.name ? [`${i}/${ch}`] : [])),
    );
    expect(movedFrom.map((m) => m.channel).sort()).toEqual(onLeaving.sort());
    for (const m of movedFrom) {
      expect(m.from).toBe(leaving.name);
      expect(['gd-g1', 'gd-g2', 'gd-g3']).toContain(m.to);
    }
    expect(tally(totals.flatMap((t) => t.channels))).toEqual({
      'gd-g1': 4,
      'gd-g2': 4,
      'gd-g3': 4,
    });

    // The proxy's view: gd-g4 terminating, nothing left on it; drains ended without a reset stream.
    const after = endpointsOf(await proxy.state(), spName).get(`${leaving.pod.ip}:50051`);
    expect(after).toMatchObject({ state: 'terminating', eligible: false, active: 0, draining: 0 });
    const metrics = await proxy.metrics();
    expect(
      metricSum(metrics, 'kube_lc_proxy_drains_started_total', { reason: 'endpoint_terminating' }),
    ).toBe(3);
    expect(metricSum(metrics, 'kube_lc_proxy_drains_started_total')).toBe(3);
    // Each ended by the protocol (streams done after the PING ACK, or the client closing
    // first), none at the grace deadline.
    const ended = (outcome: string): number =>
      metricSum(metrics, 'kube_lc_proxy_drains_ended_total', { outcome });
    expect(ended('graceful') + ended('client_closed')).toBe(3);
    expect(ended('forced')).toBe(0);
    expect(metricSum(metrics, 'kube_lc_proxy_drained_streams_total', { outcome: 'reset' })).toBe(0);
  });
});
