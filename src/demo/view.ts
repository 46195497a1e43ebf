/** One backend's row in the live view. */
export interface BackendRow {
  readonly name: string;
  readonly address: string;
  readonly state: string;
  readonly connections: number;
  readonly rpcPerSecond: number;
}

export interface Frame {
  readonly t: number;
  readonly phase: string;
  readonly mode: 'drain' | 'no-drain';
  readonly rows: readonly BackendRow[];
  readonly skew: number;
  readonly drains: number;
  readonly failed: number;
  readonly rpcs: number;
}

const BAR_WIDTH = 40;

/**
 * The live terminal view: a table redrawn in place on a TTY, one compact line per frame
 * otherwise. Pure: returns the text; the caller writes it.
 */
export function renderFrame(f: Frame, tty: boolean, maxConnections: number): string {
  if (!tty) {
    const conns = f.rows.map((r) => `${r.name}=${r.connections}`).join(' ');
    return `t=${f.t.toFixed(1)}s ${conns} skew=${f.skew.toFixed(2)} drains=${f.drains} failed=${f.failed}\n`;
  }
  const scale = Math.max(1, maxConnections);
  const lines = [
    `kube-lc-proxy demo (${f.mode === 'drain' ? 'with GOAWAY drains' : 'without drains: --no-drain'})   t=${f.t.toFixed(1)}s`,
    `phase: ${f.phase}`,
    '',
    `${'backend'.padEnd(22)}${'state'.padEnd(13)}${'conns'.padStart(6)}${'RPC/s'.padStart(8)}  connections`,
  ];
  for (const r of f.rows) {
    const bar = '█'.repeat(Math.round((r.connections / scale) * BAR_WIDTH));
    lines.push(
      `${`${r.name} ${r.address}`.padEnd(22)}${r.state.padEnd(13)}${String(r.connections).padStart(6)}${String(Math.round(r.rpcPerSecond)).padStart(8)}  ${bar}`,
    );
  }
  lines.push(
    '',
    `skew (max/mean connections) ${f.skew.toFixed(2)}   drains ${f.drains}   RPCs ${f.rpcs}   failed RPCs ${f.failed}`,
  );
  // Home the cursor and clear the screen below it, so the table redraws in place.
  return `\x1b[H\x1b[J${lines.join('\n')}\n`;
}
