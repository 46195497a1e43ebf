import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EchoClientHandle, startGrpcBackend, type GrpcBackend, type LoadResult } from './grpc.js';
import { manifestsFile, type ManifestsFile } from './manifests.js';
import { endpointSlice, service } from './objects.js';
import { startProxyProcess, type ProxyProcess } from './proxy-process.js';
import type { DebugState } from '../../src/metrics/state.js';

/**
 * Several "nodes" on one machine, for the cluster view: each node is a `kube-lc-proxy run`
 * process with its own manifests file, in which Service default/echo:grpc has the same
 * namespace/name:port but the node's own ClusterIP (`${vipNet}.N`), and its own metrics address
 * (`${metricsNet}.N:9901`), which is what the peers list. The backends are shared, as pods are.
 */
export interface ClusterNodesOptions {
  /** First three octets of the nodes' ClusterIPs, e.g. `127.0.110`. */
  readonly vipNet: string;
  /** First three octets of the nodes' metrics addresses. */
  readonly metricsNet: string;
  /** First three octets of the backends' addresses. */
  readonly backendNet: string;
  readonly nodes: number;
  readonly backends: number;
  /** Backends in the EndpointSlice at the start. */
  readonly initialEndpoints: number;
  /** Cluster view on (`--peers` with every node) or off. */
  readonly clusterView: boolean;
  readonly extraArgs?: readonly string[];
}

/** A gRPC backend that also counts its open HTTP/2 sessions (TCP connections). */
export interface CountedBackend extends GrpcBackend {
  open(): number;
}

async function countedBackend(host: string): Promise<CountedBackend> {
  const b = (await startGrpcBackend(host, 9000)) as CountedBackend;
  let open = 0;
  const http2 = (
    b.server as unknown as {
      http2Servers?: Map<
        { on(e: 'session', f: (s: { once(e: 'close', g: () => void): void }) => void): void },
        unknown
      >;
    }
  ).http2Servers;
  for (const s of http2?.keys() ?? []) {
    s.on('session', (session) => {
      open++;
      session.once('close', () => open--);
    });
  }
  b.open = () => open;
  return b;
}

export interface ClusterNodes {
  readonly backends: CountedBackend[];
  readonly proxies: (ProxyProcess | undefined)[];
  readonly files: ManifestsFile[];
  readonly secretFile: string;
  /** `host:port` of node i's ClusterIP and of its metrics server. */
  vip(i: number): string;
  metricsAddress(i: number): string;
  /** The `run` flags of node i. */
  args(i: number): string[];
  /** Starts node i's proxy (again). */
  startNode(i: number): Promise<ProxyProcess>;
  /** Rewrites every node's EndpointSlice with the first `n` backends. */
  setEndpoints(n: number): Promise<void>;
  /** Open connections per backend, counted at the backends. */
  counts(): number[];
  state(i: number): Promise<DebugState>;
  close(): Promise<void>;
}

export async function startClusterNodes(o: ClusterNodesOptions): Promise<ClusterNodes> {
  const ips = Array.from({ length: o.backends }, (_, j) => `${o.backendNet}.${j + 11}`);
  const backends = await Promise.all(ips.map((ip) => countedBackend(ip)));
  const objects = (i: number, n: number): unknown[] => [
    service('echo', { clusterIP: `${o.vipNet}.${i + 1}`, ports: [{ name: 'grpc', port: 8080 }] }),
    endpointSlice('echo-1', ips.slice(0, n)),
  ];
  const files = await Promise.all(
    Array.from({ length: o.nodes }, (_, i) => manifestsFile(objects(i, o.initialEndpoints))),
  );
  const dir = await mkdtemp(join(tmpdir(), 'klp-secret-'));
  const secretFile = join(dir, 'secret');
  await writeFile(secretFile, `${randomBytes(24).toString('base64')}\n`, { mode: 0o600 });
  const metricsAddress = (i: number): string => `${o.metricsNet}.${i + 1}:9901`;
  const peers = Array.from({ length: o.nodes }, (_, i) => metricsAddress(i)).join(',');
  const args = (i: number): string[] => [
    '--source',
    `file:${files[i]?.path}`,
    '--intercept',
    'none',
    '--node-name',
    `node-${i + 1}`,
    ...(o.clusterView ? ['--peers', peers, '--peer-secret-file', secretFile] : []),
    ...(o.extraArgs ?? []),
  ];
  const proxies: (ProxyProcess | undefined)[] = Array.from({ length: o.nodes }, () => undefined);
  const startNode = async (i: number): Promise<ProxyProcess> => {
    const p = await startProxyProcess(args(i), 60_000, metricsAddress(i));
    proxies[i] = p;
    return p;
  };
  const nodes: ClusterNodes = {
    backends,
    proxies,
    files,
    secretFile,
    vip: (i) => `${o.vipNet}.${i + 1}:8080`,
    metricsAddress,
    args,
    startNode,
    setEndpoints: async (n) => {
      await Promise.all(files.map((f, i) => f.write(objects(i, n))));
    },
    counts: () => backends.map((b) => b.open()),
    state: async (i) => {
      const p = proxies[i];
      if (p === undefined) throw new Error(`node ${i} is not running`);
      return (await (await fetch(`${p.metricsUrl}/debug/state`)).json()) as DebugState;
    },
    close: async () => {
      await Promise.all(proxies.map((p) => p?.stop('SIGKILL')));
      await Promise.all(backends.map((b) => b.close()));
      await Promise.all(files.map((f) => f.remove()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    // A few at a time: two cores start Node processes slowly, and all at once only queues them.
    for (let i = 0; i < o.nodes; i += 6) {
      await Promise.all(
        Array.from({ length: Math.min(6, o.nodes - i) }, (_, k) => startNode(i + k)),
      );
    }
  } catch (err) {
    await nodes.close();
    throw err;
  }
  return nodes;
}

/** max/mean of `counts`; 1 when all are 0. */
export function skew(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  return total === 0 ? 1 : Math.max(...counts) / (total / counts.length);
}

/** One grpc-js channel per node, to that node's ClusterIP. */
export function clientsPerNode(nodes: ClusterNodes, n: number): EchoClientHandle[] {
  return Array.from({ length: n }, (_, i) => new EchoClientHandle(nodes.vip(i)));
}

/**
 * Unary RPCs at `ratePerSec` on one client until `stop()` turns true or `maxMs` passes,
 * whichever is first: bounded in count and time.
 */
export async function loadUntil(
  client: EchoClientHandle,
  ratePerSec: number,
  maxMs: number,
  stop: () => boolean,
): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, errors: new Map(), perBackend: new Map() };
  const interval = 1000 / ratePerSec;
  const total = Math.floor(maxMs / interval);
  const start = Date.now() + Math.random() * interval;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total && !stop(); i++) {
    const wait = start + i * interval - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      client.who().then(
        (name) => {
          result.ok++;
          result.perBackend.set(name, (result.perBackend.get(name) ?? 0) + 1);
        },
        (err: { code?: number; details?: string; message?: string }) => {
          result.failed++;
          const key = `${err.code}: ${err.details ?? err.message}`;
          result.errors.set(key, (result.errors.get(key) ?? 0) + 1);
        },
      ),
    );
  }
  await Promise.all(inflight);
  return result;
}
