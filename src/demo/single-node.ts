import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { nodeManifests } from './proxy-node.js';
import { Daemon, DEFAULT_DAEMON_CONFIG } from '../daemon/daemon.js';
import { silentLogger } from '../log.js';
import { FileSource } from '../source/file.js';
import { EchoClientHandle, startGrpcBackend, type GrpcBackend } from './echo.js';
import { scenario, skew, type Step } from './scenario.js';
import { renderFrame, type BackendRow } from './view.js';

export interface DemoOptions {
  readonly clients: number;
  /** RPCs per second per client. */
  readonly rate: number;
  readonly durationSeconds: number;
  readonly initialBackends: number;
  readonly scaledBackends: number;
  readonly drain: boolean;
  /** Where the view goes (process.stdout); `tty` picks the redrawn table. */
  readonly out: NodeJS.WritableStream;
  readonly tty: boolean;
  /** Print nothing while running (only the report). */
  readonly quiet: boolean;
}

/** One sample of connections per backend, for plots. */
export interface Sample {
  readonly t: number;
  readonly connections: Record<string, number>;
}

export interface DemoReport {
  readonly mode: 'drain' | 'no-drain';
  readonly clients: number;
  readonly durationSeconds: number;
  readonly totalRpcs: number;
  readonly failedRpcs: number;
  readonly errors: Record<string, number>;
  /** Seconds from the scale-out until skew <= 1.1 held; null if it never did. */
  readonly convergeSeconds: number | null;
  /** max/mean connections over the ready backends at the end. */
  readonly finalSkew: number;
  readonly drainsByReason: Record<string, number>;
  readonly connectionsAtEnd: Record<string, number>;
  readonly rpcsPerBackend: Record<string, number>;
  readonly steps: readonly Step[];
  readonly samples: readonly Sample[];
}

const VIP = '127.0.100.100';
const PORT = 50051;
const CONVERGED_SKEW = 1.1;
const backendAddress = (i: number): string => `127.0.100.${i}`;

interface BackendState {
  readonly n: number;
  backend: GrpcBackend;
  state: 'ready' | 'terminating' | 'removed';
  lastServed: number;
  rpcPerSecond: number;
}

/**
 * `kube-lc-proxy demo --single-node`: the drain mechanism on one proxy. Real gRPC backends
 * (@grpc/grpc-js) on 127.0.100.x, a manifests file, the proxy in this process (file source,
 * intercept none) and many grpc-js clients with long-lived channels sending steady RPCs,
 * through a scale-out and a rolling replacement. Linux only (it binds 127.0.100.0/24).
 */
export async function runDemo(o: DemoOptions): Promise<DemoReport> {
  const steps = scenario({
    initialBackends: o.initialBackends,
    scaledBackends: o.scaledBackends,
    durationSeconds: o.durationSeconds,
  });
  const dir = await mkdtemp(join(tmpdir(), 'kube-lc-proxy-demo-'));
  const file = join(dir, 'services.yaml');
  const backends: BackendState[] = [];
  const clients: EchoClientHandle[] = [];
  let daemon: Daemon | undefined;
  try {
    const addBackend = async (n: number): Promise<void> => {
      const backend = await startGrpcBackend(backendAddress(n), PORT, `b${n}`);
      backends.push({ n, backend, state: 'ready', lastServed: 0, rpcPerSecond: 0 });
    };
    const source = new FileSource({
      path: file,
      logger: silentLogger(),
      pollIntervalMs: 100,
      debounceMs: 10,
    });
    const writeManifests = async (): Promise<void> => {
      const before = source.stats.applies;
      await writeFile(
        file,
        nodeManifests(
          VIP,
          PORT,
          backends.flatMap((b) =>
            b.state === 'removed' ? [] : [{ address: b.backend.address, state: b.state }],
          ),
        ),
      );
      if (daemon === undefined) return;
      await source.reload();
      if (source.stats.applies === before) throw new Error('the demo manifests were not applied');
      await daemon.settled();
    };

    for (let i = 1; i <= o.initialBackends; i++) await addBackend(i);
    await writeManifests();
    daemon = new Daemon(
      {
        ...DEFAULT_DAEMON_CONFIG,
        metricsAddress: { host: '127.0.0.1', port: 0 },
        h2Drain: o.drain,
        // Movement in the demo comes from the rebalance and the leaving endpoint, not from age.
        maxConnectionAgeMs: 0,
        rebalanceThreshold: o.drain ? DEFAULT_DAEMON_CONFIG.rebalanceThreshold : 0,
        shutdownGraceMs: 2_000,
      },
      { source, logger: silentLogger(), defaultMetrics: false },
    );
    await daemon.start();
    await daemon.settled();

    // Clients: long-lived channels, steady RPCs, each at its own phase.
    let ok = 0;
    let failed = 0;
    const errors: Record<string, number> = {};
    const perBackend: Record<string, number> = {};
    let running = true;
    const loops: Promise<void>[] = [];
    for (let i = 0; i < o.clients; i++) {
      const c = new EchoClientHandle(`${VIP}:${PORT}`);
      clients.push(c);
      loops.push(
        (async () => {
          const interval = 1000 / o.rate;
          await sleep(Math.random() * interval);
          while (running) {
            const started = Date.now();
            try {
              const name = await c.who(0, 5_000);
              ok++;
              perBackend[name] = (perBackend[name] ?? 0) + 1;
            } catch (err) {
              failed++;
              const e = err as grpc.ServiceError;
              const key = `${e.code ?? '?'} ${e.details ?? e.message}`;
              errors[key] = (errors[key] ?? 0) + 1;
            }
            await sleep(Math.max(0, interval - (Date.now() - started)));
          }
        })(),
      );
    }

    const d = daemon;
    const port = (): ReturnType<Daemon['proxier']['get']> => d.proxier.get('default/demo:grpc');
    const connectionsOf = (b: BackendState): number => {
      const ep = port()?.balancer.get(`${b.backend.address}:${PORT}`);
      return ep === undefined ? 0 : ep.active + ep.draining;
    };
    const drainsByReason = (): Record<string, number> =>
      Object.fromEntries(port()?.counters.drainsStarted ?? []);
    const readySkew = (): number =>
      skew(
        backends
          .filter((b) => b.state === 'ready')
          .map((b) => port()?.balancer.get(`${b.backend.address}:${PORT}`)?.active ?? 0),
      );

    const start = Date.now();
    const samples: Sample[] = [];
    let scaledAt: number | undefined;
    let convergeSeconds: number | null = null;
    let phase = steps[0]?.label ?? '';
    let lastRate = start;
    const tick = (): void => {
      const t = (Date.now() - start) / 1000;
      const connections: Record<string, number> = {};
      for (const b of backends) connections[b.backend.name] = connectionsOf(b);
      samples.push({ t: Math.round(t * 100) / 100, connections });
      const s = readySkew();
      if (scaledAt !== undefined && convergeSeconds === null && s <= CONVERGED_SKEW) {
        convergeSeconds = Math.round((t - scaledAt) * 100) / 100;
      }
      if (Date.now() - lastRate >= 1000) {
        const dt = (Date.now() - lastRate) / 1000;
        lastRate = Date.now();
        for (const b of backends) {
          b.rpcPerSecond = (b.backend.served - b.lastServed) / dt;
          b.lastServed = b.backend.served;
        }
      }
      if (o.quiet) return;
      const rows: BackendRow[] = backends.map((b) => ({
        name: b.backend.name,
        address: b.backend.address,
        state: b.state,
        connections: connectionsOf(b),
        rpcPerSecond: b.rpcPerSecond,
      }));
      const drains = Object.values(drainsByReason()).reduce((a, b) => a + b, 0);
      o.out.write(
        renderFrame(
          {
            t,
            phase,
            mode: o.drain ? 'drain' : 'no-drain',
            rows,
            skew: s,
            drains,
            failed,
            rpcs: ok + failed,
          },
          o.tty,
          o.clients / 2,
        ),
      );
    };
    const sampler = setInterval(tick, o.tty ? 250 : 1000);

    for (const step of steps.slice(1)) {
      await sleep(Math.max(0, start + step.at * 1000 - Date.now()));
      phase = step.label;
      switch (step.kind) {
        case 'scale-out':
          for (let i = o.initialBackends + 1; i <= o.scaledBackends; i++) await addBackend(i);
          await writeManifests();
          scaledAt = (Date.now() - start) / 1000;
          break;
        case 'terminating': {
          const first = backends[0];
          if (first !== undefined) first.state = 'terminating';
          await writeManifests();
          break;
        }
        case 'removed': {
          const first = backends[0];
          if (first !== undefined) {
            first.state = 'removed';
            await writeManifests();
            // The pod exits: a gRPC server stops gracefully on SIGTERM.
            await Promise.race([first.backend.shutdownGracefully(), sleep(2_000)]);
            await first.backend.close();
          }
          break;
        }
        case 'replacement-ready':
          await addBackend(o.scaledBackends + 1);
          await writeManifests();
          break;
        case 'end':
          break;
      }
    }
    clearInterval(sampler);
    tick();
    running = false;
    await Promise.all(loops);
    const connectionsAtEnd: Record<string, number> = {};
    for (const b of backends)
      if (b.state !== 'removed') connectionsAtEnd[b.backend.name] = connectionsOf(b);
    return {
      mode: o.drain ? 'drain' : 'no-drain',
      clients: o.clients,
      durationSeconds: o.durationSeconds,
      totalRpcs: ok + failed,
      failedRpcs: failed,
      errors,
      convergeSeconds,
      finalSkew: Math.round(readySkew() * 1000) / 1000,
      drainsByReason: drainsByReason(),
      connectionsAtEnd,
      rpcsPerBackend: perBackend,
      steps,
      samples,
    };
  } finally {
    for (const c of clients) c.close();
    if (daemon !== undefined) {
      daemon.forceClose();
      await daemon.shutdown();
    }
    await Promise.all(backends.map((b) => b.backend.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The human-readable report printed at the end of a run. */
export function formatReport(r: DemoReport): string {
  const lines = [
    '',
    `kube-lc-proxy demo report (${r.mode === 'drain' ? 'with drains' : 'without drains'})`,
    `  clients                ${r.clients} grpc-js channels, ${r.totalRpcs} RPCs in ${r.durationSeconds} s`,
    `  failed RPCs            ${r.failedRpcs}${r.failedRpcs > 0 ? `  ${JSON.stringify(r.errors)}` : ''}`,
    `  scale-out to skew<=1.1 ${r.convergeSeconds === null ? 'never' : `${r.convergeSeconds} s`}`,
    `  final skew             ${r.finalSkew.toFixed(2)} (max/mean connections over ready backends)`,
    `  connections at end     ${Object.entries(r.connectionsAtEnd)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `  drains by reason       ${
      Object.keys(r.drainsByReason).length === 0
        ? 'none'
        : Object.entries(r.drainsByReason)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')
    }`,
  ];
  if (r.mode === 'no-drain') {
    lines.push(
      '  Without drains the clients stay where they first connected: the backends added by the',
    );
    lines.push(
      '  scale-out and the replacement get (almost) nothing. Run without --no-drain to compare.',
    );
  }
  return `${lines.join('\n')}\n`;
}
