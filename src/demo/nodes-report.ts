import { MODE_TITLES, type ModeName } from './modes.js';
import type { Step } from './scenario.js';

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

/** The report of `kube-lc-proxy demo` (the multi-node one). */
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

/** The report of a mode that did not run. */
export function unavailableMode(mode: ModeName, note: string): ModeReport {
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

/** Drains one node started since the last look. */
export interface NodeDrains {
  readonly node: string;
  readonly reason: string;
  readonly n: number;
}

/** "7 connections drained with GOAWAY (rebalance 6, endpoint_terminating 1) on node-1, ..." */
export function describeDrains(moved: readonly NodeDrains[]): string {
  const byReason = new Map<string, number>();
  for (const m of moved) byReason.set(m.reason, (byReason.get(m.reason) ?? 0) + m.n);
  const total = moved.reduce((a, m) => a + m.n, 0);
  const nodes = [...new Set(moved.map((m) => m.node))].sort(
    (a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]),
  );
  const reasons = [...byReason].map(([k, v]) => `${k} ${v}`).join(', ');
  return `${total} connection${total === 1 ? '' : 's'} drained with GOAWAY (${reasons}) on ${nodes.join(', ')}`;
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
