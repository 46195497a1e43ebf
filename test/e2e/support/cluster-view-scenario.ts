import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import type { Harness, Node } from '../harness/index.js';
import {
  startGrpcBackends,
  startGrpcClient,
  type GrpcBackend,
  type GrpcClient,
} from './backends.js';
import { startCluster, type Cluster, type ServiceSpec } from './cluster.js';
import { wireNodes } from './nodes.js';
import { metricSum, type ProxyProcess } from './proxy.js';
import { waitUntil } from './wait.js';

/** Three wired node namespaces, one API server, a peer secret, and a Service with 2 of 3 backends. */
export interface ThreeNodes {
  readonly c: Cluster;
  readonly nodes: readonly Node[];
  readonly secretFile: string;
  readonly backends: readonly GrpcBackend[];
  readonly svc: ServiceSpec;
}

/**
 * The setup both cluster-view e2e tests share: three node namespaces wired to each other (the
 * first holds the API server and the three grpc-js backends), a random peer secret in a file
 * removed when the test ends, and the Service `clusterIP:9000` with only its first two backends
 * ready.
 */
export async function startThreeNodes(
  h: Harness,
  tag: string,
  clusterIP: string,
): Promise<ThreeNodes> {
  const c = await startCluster(h, tag);
  const nodes = [c.node, await h.addNode(), await h.addNode()];
  for (const n of nodes.slice(1))
    await c.api.upsert('nodes', { metadata: { name: n.ns, labels: {} } });
  await wireNodes(h, nodes);
  const dir = await mkdtemp(join(tmpdir(), 'klp-e2e-secret-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const secretFile = join(dir, 'secret');
  await writeFile(secretFile, randomBytes(32).toString('base64'));
  const backends = await startGrpcBackends(c, tag, 3, 50051);
  const svc: ServiceSpec = {
    name: 'grpc',
    portName: 'grpc',
    clusterIP,
    port: 9000,
    targetPort: 50051,
    endpoints: backends.slice(0, 2).map((b) => b.pod.ip),
  };
  await c.applyService(svc);
  return { c, nodes, secretFile, backends, svc };
}

/**
 * The cluster view's scale-out, as both cluster-view e2e tests run it: two client pods per node,
 * one channel each, dial `svc` while only its first two backends are ready (6 connections: 3 and
 * 3, or so). Then the third backend turns ready. Each node holds one or two connections per
 * backend, so no node-local rule would move anything: 2, 2, 2 needs the cluster view. Asserts
 * that balance, and that no RPC failed; returns the rebalance drains started over `proxies` (2
 * moves are the minimum).
 */
export async function spreadClientsThenScaleOut(opts: {
  readonly h: Harness;
  readonly c: Cluster;
  readonly nodes: readonly Node[];
  readonly backends: readonly GrpcBackend[];
  readonly svc: ServiceSpec;
  readonly proxies: readonly ProxyProcess[];
  /** Prefix of the client pods' names. */
  readonly tag: string;
}): Promise<number> {
  const { h, c, nodes, backends, svc, proxies, tag } = opts;
  const target = `${svc.clusterIP}:${svc.port}`;
  const clients: GrpcClient[] = [];
  for (const [i, n] of nodes.entries()) {
    for (const k of [1, 2]) {
      const pod = await n.addPod(`${tag}-c${i}${k}`);
      clients.push(await startGrpcClient(h, pod.ns, target, { channels: 1, delayMs: 50 }));
    }
  }
  const open = async (): Promise<number[]> =>
    Promise.all(backends.map(async (b) => (await b.stats()).open));
  await waitUntil(
    '6 connections on the two backends',
    async () => {
      const o = await open();
      return o[0]! + o[1]! === 6 && o[2] === 0;
    },
    { timeoutMs: 15_000, intervalMs: 250 },
  );

  await c.applySlice({ ...svc, endpoints: backends.map((b) => b.pod.ip) });
  const balanced = await waitUntil(
    'the connections 2, 2, 2 over the three backends',
    async () => {
      const o = await open();
      return o.every((n) => n === 2) ? o : false;
    },
    { timeoutMs: 30_000, intervalMs: 250, describe: async () => ({ open: await open() }) },
  );
  expect(balanced).toEqual([2, 2, 2]);

  const totals = await Promise.all(clients.map((cl) => cl.stop()));
  expect(clients.flatMap((cl) => cl.events('rpc-error'))).toEqual([]);
  expect(totals.reduce((n, t) => n + t.failed, 0)).toBe(0);
  let drains = 0;
  for (const p of proxies) {
    drains += metricSum(await p.metrics(), 'kube_lc_proxy_drains_started_total', {
      reason: 'rebalance',
    });
  }
  return drains;
}
