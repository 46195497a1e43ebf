/** Backend pods for end-to-end tests: fixture TCP servers or grpc-js servers, one per pod. */
import { fileURLToPath } from 'node:url';
import { startTcpServer, type NsProcess, type Pod, type TcpServer } from '../harness/index.js';
import type { Cluster } from './cluster.js';

/** Path of the grpc-js server fixture. */
export const GRPC_SERVER_PROGRAM = fileURLToPath(
  new URL('../fixtures/grpc-server.ts', import.meta.url),
);
/** Path of the grpc-js client fixture. */
export const GRPC_CLIENT_PROGRAM = fileURLToPath(
  new URL('../fixtures/grpc-client.ts', import.meta.url),
);

/** A backend pod; `name` (its role) is what it answers with. */
export interface TcpBackend {
  readonly name: string;
  readonly pod: Pod;
  readonly server: TcpServer;
}

/**
 * Adds pods `<tag>-b<from>` .. `<tag>-b<from+count-1>` to the cluster's node, each running a TCP
 * server on `port` that greets with the pod's role.
 */
export async function startTcpBackends(
  c: Cluster,
  tag: string,
  count: number,
  port: number,
  from = 1,
): Promise<TcpBackend[]> {
  const out: TcpBackend[] = [];
  for (let i = from; i < from + count; i++) {
    const pod = await c.node.addPod(`${tag}-b${i}`);
    const server = await startTcpServer(c.h, pod.ns, [{ name: pod.role, port }]);
    out.push({ name: pod.role, pod, server });
  }
  return out;
}

/** A grpc-js backend pod. */
export interface GrpcBackend {
  readonly name: string;
  readonly pod: Pod;
  readonly process: NsProcess;
  /** RPCs served, sessions accepted, sessions open, now. */
  stats(): Promise<{ served: number; sessions: number; open: number }>;
}

/** Like `startTcpBackends`, with grpc-js servers (fixtures/grpc-server.ts) on `port`. */
export async function startGrpcBackends(
  c: Cluster,
  tag: string,
  count: number,
  port: number,
): Promise<GrpcBackend[]> {
  const out: GrpcBackend[] = [];
  for (let i = 1; i <= count; i++) {
    const pod = await c.node.addPod(`${tag}-g${i}`);
    const p = c.h.spawn(pod.ns, [
      process.execPath,
      GRPC_SERVER_PROGRAM,
      '--name',
      pod.role,
      '--port',
      String(port),
      '--max-seconds',
      '300',
    ]);
    await p.waitForEvent((e) => e.event === 'ready', 15_000);
    out.push({
      name: pod.role,
      pod,
      process: p,
      stats: async () => {
        const seen = p.events().filter((e) => e.event === 'stats').length;
        p.write('stats\n');
        const e = await p.waitForEvent((ev) => ev.event === 'stats', 5000, seen);
        return { served: Number(e.served), sessions: Number(e.sessions), open: Number(e.open) };
      },
    });
  }
  return out;
}

/** Totals of a grpc-client fixture. */
export interface GrpcClientStats {
  readonly ok: number;
  readonly failed: number;
  readonly perBackend: Readonly<Record<string, number>>;
  /** The backend each channel's last RPC reached. */
  readonly channels: readonly string[];
}

/** A running grpc-client fixture (see fixtures/grpc-client.ts for its events). */
export interface GrpcClient {
  readonly process: NsProcess;
  /** The backend each channel reached first. */
  readonly backends: readonly string[];
  /** Its events of type `event` so far. */
  events(event: string): Record<string, unknown>[];
  stats(): Promise<GrpcClientStats>;
  /** Ends the RPC loops, waits for RPCs in flight, resolves with the final totals. */
  stop(): Promise<GrpcClientStats>;
}

/**
 * Starts grpc-client in `ns` with `channels` channels to `target` and resolves once every
 * channel has made its first RPC (they connect one after the other).
 */
export async function startGrpcClient(
  h: Cluster['h'],
  ns: string,
  target: string,
  opts: { channels: number; delayMs?: number; maxSeconds?: number },
): Promise<GrpcClient> {
  const p = h.spawn(ns, [
    process.execPath,
    GRPC_CLIENT_PROGRAM,
    '--target',
    target,
    '--channels',
    String(opts.channels),
    '--delay-ms',
    String(opts.delayMs ?? 100),
    '--max-seconds',
    String(opts.maxSeconds ?? 120),
  ]);
  const ready = await p.waitForEvent((e) => e.event === 'ready' || e.event === 'error', 20_000);
  if (ready.event === 'error')
    throw new Error(`${p.describe()}: ${JSON.stringify(ready)}\n${p.stderr}`);
  const asStats = (e: Record<string, unknown>): GrpcClientStats => ({
    ok: Number(e.ok),
    failed: Number(e.failed),
    perBackend: e.perBackend as Record<string, number>,
    channels: e.channels as string[],
  });
  return {
    process: p,
    backends: (ready.backends as string[]).slice(),
    events: (event) => p.events().filter((e) => e.event === event),
    stats: async () => {
      const seen = p.events().filter((e) => e.event === 'stats').length;
      p.write('stats\n');
      return asStats(await p.waitForEvent((e) => e.event === 'stats', 5000, seen));
    },
    stop: async () => {
      p.write('stop\n');
      return asStats(await p.waitForEvent((e) => e.event === 'done', 15_000));
    },
  };
}
