import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModeRun, sleep } from './mode-run.js';
import { MODE_TITLES, type ModeName } from './modes.js';
import {
  describeDrains,
  unavailableMode,
  type ModeReport,
  type NodesDemoReport,
} from './nodes-report.js';
import { renderNodesFrame, type ModeColumn } from './nodes-view.js';
import { hasClusterView } from './proxy-node.js';
import { scenario } from './scenario.js';

export { formatNodesReport, type ModeReport, type NodesDemoReport } from './nodes-report.js';

/** The run's shape, from the `demo` flags. */
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

const SHOWN_EVENTS = 8;

/**
 * `kube-lc-proxy demo`: clients spread over several nodes, balanced three ways side by side,
 * through a scale-out and a rolling update. Each mode has its own backends (real grpc-js
 * servers) and its own nodes, each node with one or two grpc-js clients dialing that node's
 * ClusterIP:
 * - random: a kube-proxy-like forwarder per node (a random ready backend per TCP connection);
 * - node-local: `kube-lc-proxy run` per node, each knowing only its own connections (today);
 * - cluster: the same processes with `--node-name`, `--peers` and `--peer-secret-file`, sharing
 *   their counts (skipped, and said so, when this build has no such flags).
 * It narrates the steps and the drains the proxies report. Linux only: it binds 127.0.100.0/24.
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
  let t0: number | undefined;
  const event = (text: string): void => {
    const at = t0 === undefined ? 'setup' : `${((Date.now() - t0) / 1000).toFixed(1)}s`;
    const line = `${at.padStart(6)}  ${text}`;
    events.push(line);
    if (!o.tty) o.out.write(`  ${line}\n`);
  };
  // Interrupted (Ctrl-C, a test's timeout): no proxy process may outlive the demo.
  const onSignal = (): void => {
    for (const r of runs) r.kill();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let running = true;
  const loops: Promise<void>[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    if (o.modes.includes('cluster') && !(await hasClusterView())) {
      notes.set(
        'cluster',
        'not run: this build of kube-lc-proxy has no --peers / --peer-secret-file (the cluster view)',
      );
    }
    const secretFile = join(dir, 'peer-secret');
    await writeFile(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    event(`starting ${o.nodes} nodes per mode, ${o.clients} clients each mode`);
    for (const mode of o.modes) {
      if (!notes.has(mode)) runs.push(new ModeRun({ mode, nodes: o.nodes, dir, secretFile }));
    }
    // Every mode's nodes start at once; a node that does not come up fails the run.
    const started = await Promise.allSettled(runs.map((r) => r.start(o.initialBackends)));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    event(`nodes up: ${runs.map((r) => `${MODE_TITLES[r.mode]} (${r.nodeKind})`).join(', ')}`);
    for (const r of runs) loops.push(...r.startClients(o.clients, o.rate, () => running));
    const start = Date.now();
    t0 = start;
    event(`${o.initialBackends} backends per mode; clients connect`);

    /** The poll in flight: polls never overlap, and the last one waits for it. */
    let polling: Promise<void> | undefined;
    const pollDrains = (attempts = 1): Promise<void> => {
      polling ??= (async () => {
        for (const r of runs) {
          const moved = await r.pollDrains(attempts);
          if (moved.length > 0) event(`${MODE_TITLES[r.mode]}: ${describeDrains(moved)}`);
        }
      })().finally(() => (polling = undefined));
      return polling;
    };
    let phase = steps[0]?.label ?? '';
    const tick = (): void => {
      const t = (Date.now() - start) / 1000;
      for (const r of runs)
        r.samples.push({ t: Math.round(t * 100) / 100, connections: r.connections() });
      const columns: ModeColumn[] = o.modes.map((mode) => {
        const r = runs.find((x) => x.mode === mode);
        if (r === undefined) {
          return { mode, note: notes.get(mode) ?? 'off', skew: 1, drains: 0, failed: 0 };
        }
        return {
          mode,
          rows: r.backends
            .filter((b) => b.state !== 'removed')
            .map((b) => ({ name: b.name, state: b.state, connections: b.backend.openSessions })),
          skew: r.readySkew(),
          drains: Object.values(r.drains).reduce((a, b) => a + b, 0),
          failed: r.failed,
        };
      });
      const frame = {
        t,
        phase,
        nodes: o.nodes,
        clients: o.clients,
        columns,
        events: events.slice(-SHOWN_EVENTS),
      };
      o.out.write(renderNodesFrame(frame, o.tty, Math.ceil(o.clients / 2)));
    };
    timers.push(setInterval(tick, o.tty ? 500 : 2000));
    // Drains are told within half a second, whatever the view's pace.
    timers.push(setInterval(() => void pollDrains(), 500));

    for (const step of steps.slice(1)) {
      await sleep(Math.max(0, start + step.at * 1000 - Date.now()));
      phase = step.label;
      if (step.kind === 'terminating') {
        for (const r of runs) r.markAfterScaleOut();
        const skews = runs.map((r) => `${r.mode} ${r.readySkew().toFixed(2)}`).join(', ');
        event(`skew after the scale-out: ${skews}`);
      }
      if (step.kind !== 'end') event(step.label);
      switch (step.kind) {
        case 'scale-out':
          for (const r of runs) {
            for (let n = o.initialBackends + 1; n <= o.scaledBackends; n++) await r.addBackend(n);
          }
          await Promise.all(runs.map((r) => r.apply()));
          event('every node knows the new backends');
          break;
        case 'terminating':
          for (const r of runs)
            if (r.backends[0] !== undefined) r.backends[0].state = 'terminating';
          await Promise.all(runs.map((r) => r.apply()));
          event('kube-proxy sends it no new connections; the proxies drain it');
          break;
        case 'removed':
          for (const r of runs) if (r.backends[0] !== undefined) r.backends[0].state = 'removed';
          await Promise.all(runs.map((r) => r.apply()));
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
          for (const r of runs) await r.addBackend(o.scaledBackends + 1);
          await Promise.all(runs.map((r) => r.apply()));
          break;
        case 'end':
          break;
      }
    }
    for (const t of timers) clearInterval(t);
    await polling;
    // The report's drain counts: every proxy's, so a slow one is asked again.
    await pollDrains(3);
    tick();
    const atEnd = runs.map((r) => ({ connections: r.connections(), skew: r.readySkew() }));
    running = false;
    await Promise.all(loops);
    const modes: ModeReport[] = o.modes.map((mode) => {
      const i = runs.findIndex((r) => r.mode === mode);
      const r = runs[i];
      const end = atEnd[i];
      if (r === undefined || end === undefined) {
        return unavailableMode(mode, notes.get(mode) ?? 'not run');
      }
      return r.report(end);
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
    for (const t of timers) clearInterval(t);
    running = false;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const r of runs) r.closeClients();
    await Promise.all(loops);
    await Promise.all(runs.map((r) => r.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}
