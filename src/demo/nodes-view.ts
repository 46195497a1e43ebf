import { MODE_TITLES, type ModeName } from './modes.js';

/** One mode's column in the live view. */
export interface ModeColumn {
  readonly mode: ModeName;
  /** Undefined when the mode does not run (the reason is shown instead). */
  readonly rows?: readonly {
    readonly name: string;
    readonly state: string;
    readonly connections: number;
  }[];
  readonly note?: string;
  readonly skew: number;
  readonly drains: number;
  readonly failed: number;
}

/** A moment of the run: every mode side by side, and what happened lately. */
export interface NodesFrame {
  readonly t: number;
  readonly phase: string;
  readonly nodes: number;
  readonly clients: number;
  readonly columns: readonly ModeColumn[];
  /** The latest events, oldest first, already formatted. */
  readonly events: readonly string[];
}

const LABEL = 14;
const COLUMN = 30;
const BAR_MAX = 10;

/**
 * The live view of the multi-node demo. On a TTY: the modes side by side, connections per
 * backend as bars, redrawn in place, with the latest events below. Otherwise: one compact line
 * (events are printed by the caller as they happen). Pure: returns the text.
 */
export function renderNodesFrame(f: NodesFrame, tty: boolean, maxConnections: number): string {
  if (!tty) {
    const parts = f.columns.map((c) =>
      c.rows === undefined
        ? `${c.mode}: off`
        : `${c.mode}: ${c.rows.map((r) => `${r.name}=${r.connections}`).join(' ')} skew=${c.skew.toFixed(2)}`,
    );
    return `t=${f.t.toFixed(1)}s ${parts.join(' | ')}\n`;
  }
  const scale = Math.max(1, maxConnections);
  const cell = (s: string): string => s.slice(0, COLUMN - 1).padEnd(COLUMN);
  const names = [...new Set(f.columns.flatMap((c) => (c.rows ?? []).map((r) => r.name)))];
  const lines = [
    `kube-lc-proxy demo: ${f.clients} gRPC clients on ${f.nodes} nodes, three ways   t=${f.t.toFixed(1)}s`,
    `phase: ${f.phase}`,
    '',
    ''.padEnd(LABEL) + f.columns.map((c) => cell(MODE_TITLES[c.mode])).join(''),
  ];
  for (const name of names) {
    const cells = f.columns.map((c) => {
      const r = c.rows?.find((x) => x.name === name);
      if (r === undefined) return cell('');
      const bar = '█'.repeat(Math.round((r.connections / scale) * BAR_MAX));
      const state = r.state === 'ready' ? '' : ` (${r.state})`;
      return cell(`${String(r.connections).padStart(2)} ${bar}${state}`);
    });
    lines.push(`backend ${name}`.padEnd(LABEL) + cells.join(''));
  }
  const row = (label: string, v: (c: ModeColumn) => string): string =>
    label.padEnd(LABEL) + f.columns.map((c) => cell(c.rows === undefined ? '' : v(c))).join('');
  lines.push(
    '',
    row('skew', (c) => c.skew.toFixed(2)),
    row('drains', (c) => String(c.drains)),
    row('failed RPCs', (c) => String(c.failed)),
  );
  for (const c of f.columns) if (c.note !== undefined) lines.push(`${c.mode}: ${c.note}`);
  lines.push('', 'what happened:', ...f.events.map((e) => `  ${e}`));
  // Home the cursor and clear the screen below it, so the view redraws in place.
  return `\x1b[H\x1b[J${lines.join('\n')}\n`;
}
