import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { EchoClientHandle, startGrpcBackend, type GrpcBackend } from './echo.js';
import { backendAddress, clientsOnNode, MODE_TITLES, nodeAddress, type ModeName } from './modes.js';
import { renderNodesFrame, type ModeColumn } from './nodes-view.js';
import { hasClusterView, nodeManifests, ProxyNode, type ManifestEndpoint } from './proxy-node.js';
import { RandomForwarder } from './random-forwarder.js';
import { scenario, skew, type Step } from './scenario.js';

export interface NodesDemoOptions {
  /** "Nodes" per mode: proxy processes (or kube-proxy-like forwarders), each with its clients. */
  readonly nodes: number;
  /** grpc-js clients per mode, spread evenly over the nodes. */
  readonly clients: number;
  /** RPCs per second per client. */
  readonly rate: number;
  readonly durationSeconds: number;
  readonly initialBackends: number;
  readonly scaledBackends: number;
  readonly modes: readonly ModeName[];
  /** Where the view goes; `tty` picks the redrawn table. */
  readonly out: NodeJS.WritableStream;
  readonly tty: boolean;
}

/** Connections per backend at one moment. */
export interface Sample {
  readonly t: number;
  readonly connections: Record<string, number>;
}

/** What one mode did. Connections are counted at the backends (open HTTP/2 sessions). */
export interface ModeReport {
  readonly mode: ModeName;
  readonly title: string;
  /** False when the mode could not run in this build; `note` says why. */
  readonly available: boolean;
  readonly note?: string;
  readonly totalRpcs: number;
  readonly failedRpcs: number;
  readonly errors: Record<string, number>;
  /** max/mean connections over the ready backends just before the rolling update starts. */
  readonly skewAfterScaleOut: number | null;
  readonly connectionsAfterScaleOut: Record<string, number>;
  /** max/mean connections over the ready backends at the end. */
  readonly finalSkew: number | null;
  readonly connectionsAtEnd: Record<string, number>;
  /** Drains the mode's proxies started, by reason (none for random: kube-proxy moves nothing). */
  readonly drainsByReason: Record<string, number>;
  /** RPCs per backend as the clients saw them (the name in each reply)... */
  readonly rpcsPerBackend: Record<string, number>;
  /** ... and as the backends counted them. */
  readonly servedByBackend: Record<string, number>;
  readonly samples: readonly Sample[];
}

export interface NodesDemoReport {
  readonly nodes: number;
  readonly clients: number;
  readonly durationSeconds: number;
  readonly steps: readonly Step[];
  /** Everything that happened, as shown while running. */
  readonly events: readonly string[];
  readonly modes: readonly ModeReport[];
  /** Failed RPCs over every mode that ran. */
  readonly failedRpcs: number;
}

const PORT = 50051;
const METRICS_PORT = 9901;
const SHOWN_EVENTS = 8;

interface BackendState {
  readonly name: string;
  readonly backend: GrpcBackend;
  state: 'ready' | 'terminating' | 'removed';
}

/** One mode's moving parts. */
interface ModeRun {
  readonly mode: ModeName;
  readonly backends: BackendState[];
  readonly proxies: ProxyNode[];
  readonly forwarders: RandomForwarder[];
  readonly clients: EchoClientHandle[];
  ok: number;
  failed: number;
  readonly errors: Record<string, number>;
  readonly perBackend: Record<string, number>;
  readonly drains: Record<string, number>;
  readonly drainsSeen: Map<string, Record<string, number>>;
  readonly samples: Sample[];
  afterScaleOut?: Record<string, number>;
  afterScaleOutSkew?: number;
}

/**
 * `kube-lc-proxy demo`: clients spread over several nodes, balanced three ways side by side,
 * through a scale-out and a rolling update. Each mode has its own backends (real grpc-js
 * servers) and its own nodes, each node with one or two grpc-js clients dialing that node's
 * ClusterIP:
 * - random: a kube-proxy-like forwarder per node (a random ready backend per TCP connection);
 * - node-local: `kube-lc-proxy run` per node, each knowing only its own connections (today);
 * - cluster: the same processes with `--node-name`, `--peers` and `--peer-secret-file`, sharing
 *   their counts (skipped, and said so, when this build has no such flags).
 * Linux only: it binds 127.0.100.0/24.
 */
export async function runNodesDemo(o: NodesDemoOptions): Promise<NodesDemoReport> {
  const steps = scenario({
    initialBackends: o.initialBackends,
    scaledBackends: o.scaledBackends,
    durationSeconds: o.durationSeconds,
  });
  const dir = await mkdtemp(join(tmpdir(), 'kube-lc-proxy-demo-'));
  const runs: ModeRun[] = [];
  const notes = new Map<ModeName, string>();
  const events: string[] = [];
  /** When the scenario started (the clients connect); undefined while setting up. */
  let start: number | undefined;
  const event = (text: string): void => {
    const at = start === undefined ? 'setup' : `${((Date.now() - start) / 1000).toFixed(1)}s`;
    const line = `${at.padStart(6)}  ${text}`;
    events.push(line);
    if (!o.tty) o.out.write(`  ${line}\n`);
  };
  const killAll = (): void => {
    for (const r of runs) for (const p of r.proxies) p.kill();
  };
  // Interrupted (Ctrl-C, a test's timeout): no proxy process may outlive the demo.
  const onSignal = (): void => {
    killAll();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let running = true;
  const loops: Promise<void>[] = [];
  try {
    const cluster = o.modes.includes('cluster') && (await hasClusterView());
    if (o.modes.includes('cluster') && !cluster) {
      notes.set(
        'cluster',
        'not run: this build of kube-lc-proxy has no --peers / --peer-secret-file (the cluster view)',
      );
    }
    const secretFile = join(dir, 'peer-secret');
    await writeFile(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    event(`starting ${o.nodes} nodes per mode, ${o.clients} clients each mode`);

    const endpointsOf = (r: ModeRun): ManifestEndpoint[] =>
      r.backends
        .filter((b) => b.state !== 'removed')
        .map((b) => ({ address: b.backend.address, state: b.state as ManifestEndpoint['state'] }));
    const addBackend = async (r: ModeRun, n: number): Promise<void> => {
      const backend = await startGrpcBackend(backendAddress(r.mode, n), PORT, `b${n}`);
      r.backends.push({ name: `b${n}`, backend, state: 'ready' });
    };
    const apply = async (r: ModeRun): Promise<void> => {
      const eps = endpointsOf(r);
      await Promise.all(
        r.proxies.map((p, k) => p.apply(nodeManifests(nodeAddress(r.mode, k + 1), PORT, eps), eps)),
      );
    };

    for (const mode of o.modes) {
      if (mode === 'cluster' && !cluster) continue;
      const r: ModeRun = {
        mode,
        backends: [],
        proxies: [],
        forwarders: [],
        clients: [],
        ok: 0,
        failed: 0,
        errors: {},
        perBackend: {},
        drains: {},
        drainsSeen: new Map(),
        samples: [],
      };
      runs.push(r);
      for (let n = 1; n <= o.initialBackends; n++) await addBackend(r, n);
      const nodeNames = Array.from({ length: o.nodes }, (_, k) => `node-${k + 1}`);
      if (mode === 'random') {
        for (let k = 1; k <= o.nodes; k++) {
          const f = new RandomForwarder(nodeAddress(mode, k), PORT, () =>
            r.backends
              .filter((b) => b.state === 'ready')
              .map((b) => `${b.backend.address}:${PORT}`),
          );
          await f.listen();
          r.forwarders.push(f);
        }
      } else {
        const eps = endpointsOf(r);
        const started = await Promise.allSettled(
          nodeNames.map((name, k) =>
            ProxyNode.start(
              {
                name,
                address: nodeAddress(mode, k + 1),
                metricsPort: METRICS_PORT,
                file: join(dir, `${mode}-${name}.yaml`),
                peers:
                  mode === 'cluster'
                    ? {
                        nodeName: name,
                        peers: nodeNames
                          .map((_, j) => `${nodeAddress(mode, j + 1)}:${METRICS_PORT}`)
                          .filter((_, j) => j !== k),
                        secretFile,
                      }
                    : undefined,
              },
              nodeManifests(nodeAddress(mode, k + 1), PORT, eps),
            ),
          ),
        );
        for (const s of started) if (s.status === 'fulfilled') r.proxies.push(s.value);
        const failed = started.find((s) => s.status === 'rejected');
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      }
    }
    event(
      `nodes up: ${runs.map((r) => `${MODE_TITLES[r.mode]} (${r.forwarders.length > 0 ? 'forwarders' : 'proxy processes'})`).join(', ')}`,
    );

    // Clients: long-lived channels to their node's ClusterIP, steady RPCs, each at its own phase.
    for (const r of runs) {
      for (let k = 0; k < o.nodes; k++) {
        for (let i = 0; i < clientsOnNode(k, o.nodes, o.clients); i++) {
          const c = new EchoClientHandle(`${nodeAddress(r.mode, k + 1)}:${PORT}`);
          r.clients.push(c);
          loops.push(clientLoop(c, r, o.rate, () => running));
        }
      }
    }
    const t0 = Date.now();
    start = t0;
    event(`${o.initialBackends} backends per mode; clients connect`);

    const connections = (r: ModeRun): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const b of r.backends) if (b.state !== 'removed') out[b.name] = b.backend.openSessions;
      return out;
    };
    const readySkew = (r: ModeRun): number =>
      skew(r.backends.filter((b) => b.state === 'ready').map((b) => b.backend.openSessions));
    let phase = steps[0]?.label ?? '';
    let polling = false;
    const pollDrains = async (): Promise<void> => {
      if (polling) return;
      polling = true;
      try {
        for (const r of runs) {
          const moved: { node: string; reason: string; n: number }[] = [];
          await Promise.all(
            r.proxies.map(async (p) => {
              const now = await p.drains().catch(() => undefined);
              if (now === undefined) return;
              const before = r.drainsSeen.get(p.name) ?? {};
              for (const [reason, n] of Object.entries(now)) {
                const d = n - (before[reason] ?? 0);
                if (d <= 0) continue;
                r.drains[reason] = (r.drains[reason] ?? 0) + d;
                moved.push({ node: p.name, reason, n: d });
              }
              r.drainsSeen.set(p.name, now);
            }),
          );
          if (moved.length > 0) event(`${MODE_TITLES[r.mode]}: ${describeDrains(moved)}`);
        }
      } finally {
        polling = false;
      }
    };
    const tick = (): void => {
      const t = Math.round(((Date.now() - t0) / 1000) * 100) / 100;
      for (const r of runs) r.samples.push({ t, connections: connections(r) });
      void pollDrains();
      const columns: ModeColumn[] = o.modes.map((mode) => {
        const r = runs.find((x) => x.mode === mode);
        const note = notes.get(mode);
        if (r === undefined) return { mode, note: note ?? 'off', skew: 1, drains: 0, failed: 0 };
        return {
          mode,
          rows: r.backends
            .filter((b) => b.state !== 'removed')
            .map((b) => ({ name: b.name, state: b.state, connections: b.backend.openSessions })),
          skew: readySkew(r),
          drains: Object.values(r.drains).reduce((a, b) => a + b, 0),
          failed: r.failed,
        };
      });
      o.out.write(
        renderNodesFrame(
          {
            t: (Date.now() - t0) / 1000,
            phase,
            nodes: o.nodes,
            clients: o.clients,
            columns,
            events: events.slice(-SHOWN_EVENTS),
          },
          o.tty,
          Math.ceil(o.clients / 2),
        ),
      );
    };
    const sampler = setInterval(tick, o.tty ? 500 : 2000);

    for (const step of steps.slice(1)) {
      await sleep(Math.max(0, t0 + step.at * 1000 - Date.now()));
      phase = step.label;
      if (step.kind === 'terminating') {
        const skews = runs.map((r) => `${r.mode} ${readySkew(r).toFixed(2)}`).join(', ');
        event(`skew after the scale-out: ${skews}`);
      }
      if (step.kind !== 'end') event(step.label);
      switch (step.kind) {
        case 'scale-out':
          for (const r of runs) {
            for (let n = o.initialBackends + 1; n <= o.scaledBackends; n++) await addBackend(r, n);
          }
          await Promise.all(runs.map(apply));
          event('every node knows the new backends');
          break;
        case 'terminating':
          for (const r of runs) {
            r.afterScaleOut = connections(r);
            r.afterScaleOutSkew = readySkew(r);
          }
          for (const r of runs)
            if (r.backends[0] !== undefined) r.backends[0].state = 'terminating';
          await Promise.all(runs.map(apply));
          event('kube-proxy sends it no new connections; the proxies drain it');
          break;
        case 'removed':
          for (const r of runs) if (r.backends[0] !== undefined) r.backends[0].state = 'removed';
          await Promise.all(runs.map(apply));
          // The pod exits: a gRPC server stops gracefully on SIGTERM (GOAWAY to what is left).
          await Promise.all(
            runs.map(async (r) => {
              const first = r.backends[0];
              if (first === undefined) return;
              await Promise.race([first.backend.shutdownGracefully(), sleep(2_000)]);
              await first.backend.close();
            }),
          );
          event('its last clients, if any, got a GOAWAY from the server and reconnect');
          break;
        case 'replacement-ready':
          for (const r of runs) await addBackend(r, o.scaledBackends + 1);
          await Promise.all(runs.map(apply));
          break;
        case 'end':
          break;
      }
    }
    clearInterval(sampler);
    await pollDrains();
    tick();
    const atEnd = runs.map((r) => ({ connections: connections(r), skew: readySkew(r) }));
    running = false;
    await Promise.all(loops);
    const modes: ModeReport[] = o.modes.map((mode) => {
      const i = runs.findIndex((r) => r.mode === mode);
      const r = runs[i];
      if (r === undefined) return unavailable(mode, notes.get(mode) ?? 'not run');
      const served: Record<string, number> = {};
      for (const b of r.backends) served[b.name] = b.backend.served;
      const after = r.afterScaleOut;
      return {
        mode,
        title: MODE_TITLES[mode],
        available: true,
        totalRpcs: r.ok + r.failed,
        failedRpcs: r.failed,
        errors: r.errors,
        skewAfterScaleOut: r.afterScaleOutSkew === undefined ? null : round3(r.afterScaleOutSkew),
        connectionsAfterScaleOut: after ?? {},
        finalSkew: round3(atEnd[i]!.skew),
        connectionsAtEnd: atEnd[i]!.connections,
        drainsByReason: r.drains,
        rpcsPerBackend: r.perBackend,
        servedByBackend: served,
        samples: r.samples,
      };
    });
    return {
      nodes: o.nodes,
      clients: o.clients,
      durationSeconds: o.durationSeconds,
      steps,
      events,
      modes,
      failedRpcs: modes.reduce((a, m) => a + m.failedRpcs, 0),
    };
  } finally {
    running = false;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const r of runs) for (const c of r.clients) c.close();
    await Promise.all(loops);
    await Promise.all(runs.flatMap((r) => r.proxies.map((p) => p.stop())));
    await Promise.all(runs.flatMap((r) => r.forwarders.map((f) => f.close())));
    await Promise.all(runs.flatMap((r) => r.backends.map((b) => b.backend.close())));
    await rm(dir, { recursive: true, force: true });
  }
}

function unavailable(mode: ModeName, note: string): ModeReport {
  return {
    mode,
    title: MODE_TITLES[mode],
    available: false,
    note,
    totalRpcs: 0,
    failedRpcs: 0,
    errors: {},
    skewAfterScaleOut: null,
    connectionsAfterScaleOut: {},
    finalSkew: null,
    connectionsAtEnd: {},
    drainsByReason: {},
    rpcsPerBackend: {},
    servedByBackend: {},
    samples: [],
  };
}

/** One client: an RPC every 1/rate s on its long-lived channel while `running()`. */
async function clientLoop(
  c: EchoClientHandle,
  r: ModeRun,
  rate: number,
  running: () => boolean,
): Promise<void> {
  const interval = 1000 / rate;
  await sleep(Math.random() * interval);
  while (running()) {
    const started = Date.now();
    try {
      const name = await c.who(0, 5_000);
      r.ok++;
      r.perBackend[name] = (r.perBackend[name] ?? 0) + 1;
    } catch (err) {
      r.failed++;
      const e = err as grpc.ServiceError;
      const key = `${e.code ?? '?'} ${e.details ?? e.message}`;
      r.errors[key] = (r.errors[key] ?? 0) + 1;
    }
    await sleep(Math.max(0, interval - (Date.now() - started)));
  }
}

/** "7 connections drained with GOAWAY (rebalance 6, endpoint_terminating 1) on node-1, ..." */
function describeDrains(moved: readonly { node: string; reason: string; n: number }[]): string {
  const byReason = new Map<string, number>();
  for (const m of moved) byReason.set(m.reason, (byReason.get(m.reason) ?? 0) + m.n);
  const total = moved.reduce((a, m) => a + m.n, 0);
  const nodes = [...new Set(moved.map((m) => m.node))].sort(
    (a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]),
  );
  const reasons = [...byReason].map(([k, v]) => `${k} ${v}`).join(', ');
  return `${total} connection${total === 1 ? '' : 's'} drained with GOAWAY (${reasons}) on ${nodes.join(', ')}`;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The human-readable report printed at the end of a run. */
export function formatNodesReport(r: NodesDemoReport): string {
  const kv = (o: Record<string, number>): string =>
    Object.keys(o).length === 0
      ? 'none'
      : Object.entries(o)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
  const lines = [
    '',
    `kube-lc-proxy demo report: ${r.clients} gRPC clients on ${r.nodes} nodes per mode, ${r.durationSeconds} s`,
  ];
  for (const m of r.modes) {
    lines.push('', `  ${m.title}`);
    if (!m.available) {
      lines.push(`    ${m.note ?? 'not run'}`);
      continue;
    }
    lines.push(
      `    RPCs                     ${m.totalRpcs}, failed ${m.failedRpcs}${m.failedRpcs > 0 ? `  ${JSON.stringify(m.errors)}` : ''}`,
      `    after the scale-out      skew ${m.skewAfterScaleOut?.toFixed(2) ?? '-'}   connections ${kv(m.connectionsAfterScaleOut)}`,
      `    at the end               skew ${m.finalSkew?.toFixed(2) ?? '-'}   connections ${kv(m.connectionsAtEnd)}`,
      `    drains by reason         ${kv(m.drainsByReason)}`,
    );
  }
  lines.push(
    '',
    '  Skew is max/mean connections over the ready backends, counted at the backends. kube-proxy',
    '  never moves a connection, and a node-local proxy holding one or two connections has nothing',
    '  to rebalance: the backends of the scale-out wait. The cluster view moves just the excess.',
  );
  return `${lines.join('\n')}\n`;
}
