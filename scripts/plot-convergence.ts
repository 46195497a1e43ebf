/**
 * Plots two recordings of `kube-lc-proxy demo --record FILE` (one with drains, one with
 * `--no-drain`) as one SVG: two panels stacked, connections per backend over time, with the
 * demo's steps (scale-out, terminating, removed, replacement ready) as labelled vertical lines.
 *
 *   node scripts/plot-convergence.ts DRAIN.json NO_DRAIN.json OUT.svg
 *
 * The files may be given in either order: each recording says which mode it was made in. The
 * SVG is written by hand (no plotting dependency), with a white background so that it reads
 * the same on light and dark pages. `scripts/convergence.sh` makes both recordings and runs
 * this.
 */
import { readFile, writeFile } from 'node:fs/promises';

/** The parts of a demo recording (`DemoReport` in src/demo/single-node.ts) that the plot uses. */
export interface Recording {
  readonly mode: 'drain' | 'no-drain';
  readonly clients: number;
  readonly durationSeconds: number;
  readonly totalRpcs: number;
  readonly failedRpcs: number;
  readonly convergeSeconds: number | null;
  readonly finalSkew: number;
  readonly drainsByReason: Readonly<Record<string, number>>;
  readonly connectionsAtEnd: Readonly<Record<string, number>>;
  readonly steps: readonly { readonly kind: string; readonly at: number; readonly label: string }[];
  readonly samples: readonly {
    readonly t: number;
    readonly connections: Readonly<Record<string, number>>;
  }[];
}

/** Okabe-Ito colours: distinguishable with the common colour-vision deficiencies. */
const COLOURS = ['#D55E00', '#0072B2', '#009E73', '#E69F00', '#CC79A7', '#56B4E9', '#000000'];

const WIDTH = 960;
const MARGIN_LEFT = 64;
const MARGIN_RIGHT = 24;
const PLOT_WIDTH = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
const PLOT_HEIGHT = 210;
const LABEL_ROW = 14;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';
/** Rough width of one character of the 11 px labels, to keep labels from overlapping. */
const CHAR_WIDTH = 6.2;
/** Vertical offset between the lines of two backends, in px (equal counts would hide lines). */
const LINE_SHIFT = 2;

/** Escapes text for XML character data and attribute values. */
export function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const n1 = (x: number): string => String(Math.round(x * 10) / 10);

/** Throws unless `value` looks like a demo recording; returns it typed. */
export function checkRecording(value: unknown, name: string): Recording {
  const r = value as Partial<Recording> | null;
  const fail = (what: string): never => {
    throw new Error(`${name}: not a kube-lc-proxy demo recording (${what})`);
  };
  if (typeof r !== 'object' || r === null) return fail('not a JSON object');
  if (r.mode !== 'drain' && r.mode !== 'no-drain') fail('mode is not drain or no-drain');
  if (!Array.isArray(r.samples) || r.samples.length === 0) fail('no samples');
  if (!Array.isArray(r.steps)) fail('no steps');
  if (typeof r.durationSeconds !== 'number' || !(r.durationSeconds > 0)) fail('no durationSeconds');
  for (const s of r.samples ?? []) {
    if (typeof s?.t !== 'number' || typeof s.connections !== 'object' || s.connections === null)
      fail('a sample without t or connections');
  }
  return r as Recording;
}

/** Backend names in order of first appearance over both recordings (b1, b2, ...). */
function backendNames(recs: readonly Recording[]): string[] {
  const seen = new Set<string>();
  for (const r of recs)
    for (const s of r.samples) for (const k of Object.keys(s.connections)) seen.add(k);
  return [...seen].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/** A "nice" axis maximum and tick step for values up to `max`. */
function niceAxis(max: number): { top: number; step: number } {
  const raw = Math.max(1, max) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(Math.max(1, max) / step) * step, step };
}

/** Puts each label in the first row where it does not overlap the one before it. */
function labelRows(xs: readonly { x: number; width: number }[]): number[] {
  const ends: number[] = [];
  return xs.map(({ x, width }) => {
    let row = ends.findIndex((end) => x > end + 8);
    if (row < 0) row = ends.length;
    ends[row] = x + width;
    return row;
  });
}

/** "One sample per second" or the like, from the median interval of the recordings. */
function samplingNote(recs: readonly Recording[]): string {
  const gaps: number[] = [];
  for (const r of recs)
    for (let i = 1; i < r.samples.length; i++)
      gaps.push((r.samples[i]?.t ?? 0) - (r.samples[i - 1]?.t ?? 0));
  gaps.sort((a, b) => a - b);
  const median = gaps[Math.floor(gaps.length / 2)] ?? 1;
  return median >= 0.95 && median <= 1.05
    ? 'One sample per second'
    : `One sample every ${Math.round(median * 1000)} ms`;
}

function summary(r: Recording): string {
  const drains = Object.entries(r.drainsByReason)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const converge =
    r.convergeSeconds === null
      ? 'skew never ≤ 1.1 after the scale-out'
      : `skew ≤ 1.1 within ${r.convergeSeconds} s of the scale-out`;
  return (
    `${r.clients} clients, ${r.totalRpcs} RPCs, ${r.failedRpcs} failed; ${converge}; ` +
    `final skew ${r.finalSkew.toFixed(2)}; ` +
    // Without drains, connections of a leaving endpoint are still counted as drains: they are
    // closed (at the grace or by the backend) without a GOAWAY.
    `${r.mode === 'drain' ? 'drains' : 'closed without GOAWAY'}: ${drains === '' ? 'none' : drains}`
  );
}

function panel(
  r: Recording,
  title: string,
  top: number,
  names: readonly string[],
  yTop: number,
  yStep: number,
  xMax: number,
): { svg: string; height: number } {
  const out: string[] = [];
  const steps = r.steps.filter((s) => s.at > 0 && s.at < r.durationSeconds);
  const x = (t: number): number => MARGIN_LEFT + (Math.min(t, xMax) / xMax) * PLOT_WIDTH;
  const labels = steps.map((s) => ({
    x: x(s.at),
    width: (s.label.length + 6) * CHAR_WIDTH,
  }));
  const rows = labelRows(labels);
  const nRows = Math.max(1, ...rows.map((row) => row + 1));
  out.push(
    `<text x="${MARGIN_LEFT}" y="${top + 18}" ${FONT} font-size="15" font-weight="bold" fill="#111">${xmlEscape(title)}</text>`,
    `<text x="${MARGIN_LEFT}" y="${top + 36}" ${FONT} font-size="11.5" fill="#333">${xmlEscape(summary(r))}</text>`,
  );
  const plotTop = top + 48 + nRows * LABEL_ROW + 6;
  const y = (v: number): number => plotTop + PLOT_HEIGHT - (v / yTop) * PLOT_HEIGHT;
  // Grid and y axis.
  for (let v = 0; v <= yTop + 1e-9; v += yStep) {
    out.push(
      `<line x1="${MARGIN_LEFT}" x2="${MARGIN_LEFT + PLOT_WIDTH}" y1="${n1(y(v))}" y2="${n1(y(v))}" stroke="#e3e3e3" stroke-width="1"/>`,
      `<text x="${MARGIN_LEFT - 8}" y="${n1(y(v) + 4)}" ${FONT} font-size="11" fill="#444" text-anchor="end">${n1(v)}</text>`,
    );
  }
  // x axis ticks every 5 or 10 s.
  const xStep = xMax > 60 ? niceAxis(xMax).step : xMax > 30 ? 5 : 2;
  for (let t = 0; t <= xMax + 1e-9; t += xStep) {
    out.push(
      `<line x1="${n1(x(t))}" x2="${n1(x(t))}" y1="${n1(plotTop + PLOT_HEIGHT)}" y2="${n1(plotTop + PLOT_HEIGHT + 4)}" stroke="#444"/>`,
      `<text x="${n1(x(t))}" y="${n1(plotTop + PLOT_HEIGHT + 17)}" ${FONT} font-size="11" fill="#444" text-anchor="middle">${n1(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN_LEFT}" y="${plotTop}" width="${PLOT_WIDTH}" height="${PLOT_HEIGHT}" fill="none" stroke="#888" stroke-width="1"/>`,
    `<text x="${MARGIN_LEFT + PLOT_WIDTH / 2}" y="${n1(plotTop + PLOT_HEIGHT + 32)}" ${FONT} font-size="11" fill="#444" text-anchor="middle">seconds since start</text>`,
    `<text transform="translate(18 ${n1(plotTop + PLOT_HEIGHT / 2)}) rotate(-90)" ${FONT} font-size="11" fill="#444" text-anchor="middle">connections per backend</text>`,
  );
  // Steps: a dashed line through the plot and a label in the rows above it.
  steps.forEach((s, i) => {
    const row = rows[i] ?? 0;
    const lx = labels[i]?.x ?? x(s.at);
    const ly = top + 48 + row * LABEL_ROW + 10;
    out.push(
      `<line x1="${n1(lx)}" x2="${n1(lx)}" y1="${n1(ly + 3)}" y2="${n1(plotTop + PLOT_HEIGHT)}" stroke="#777" stroke-width="1" stroke-dasharray="4 3"/>`,
      `<text x="${n1(lx + 3)}" y="${n1(ly)}" ${FONT} font-size="11" fill="#222">${xmlEscape(`${n1(s.at)} s: ${s.label}`)}</text>`,
    );
  });
  // One line per backend, each shifted by a pixel or two so that equal counts stay visible.
  names.forEach((name, i) => {
    const shift = (i - (names.length - 1) / 2) * LINE_SHIFT;
    const pts = r.samples
      .filter((s) => name in s.connections)
      .map((s) => `${n1(x(s.t))},${n1(y(s.connections[name] ?? 0) + shift)}`);
    if (pts.length === 0) return;
    out.push(
      `<polyline points="${pts.join(' ')}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2.2" stroke-linejoin="round"><title>${xmlEscape(name)}</title></polyline>`,
    );
  });
  return { svg: out.join('\n'), height: plotTop - top + PLOT_HEIGHT + 40 };
}

/** Renders the two recordings as one SVG document. Pure. */
export function renderConvergenceSvg(drain: Recording, noDrain: Recording): string {
  const names = backendNames([drain, noDrain]);
  let max = 0;
  for (const r of [drain, noDrain])
    for (const s of r.samples) for (const v of Object.values(s.connections)) max = Math.max(max, v);
  const { top: yTop, step: yStep } = niceAxis(max);
  const xMax = Math.max(drain.durationSeconds, noDrain.durationSeconds);
  const body: string[] = [];
  let y = 12;
  const legendY = y + 14;
  body.push(
    `<text x="${MARGIN_LEFT}" y="${legendY}" ${FONT} font-size="13" fill="#111">gRPC connections per backend during kube-lc-proxy demo (grpc-js clients with one long-lived channel each)</text>`,
  );
  let lx = MARGIN_LEFT;
  const legendRowY = legendY + 20;
  names.forEach((name, i) => {
    body.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${legendRowY - 4}" y2="${legendRowY - 4}" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="3"/>`,
      `<text x="${lx + 28}" y="${legendRowY}" ${FONT} font-size="12" fill="#222">${xmlEscape(name)}</text>`,
    );
    lx += 40 + name.length * 8;
  });
  y = legendRowY + 12;
  const a = panel(drain, 'With drains (GOAWAY rebalance)', y, names, yTop, yStep, xMax);
  body.push(a.svg);
  y += a.height;
  const b = panel(
    noDrain,
    'Without drains (--no-drain: placement only)',
    y,
    names,
    yTop,
    yStep,
    xMax,
  );
  body.push(b.svg);
  y += b.height;
  body.push(
    `<text x="${MARGIN_LEFT}" y="${y + 12}" ${FONT} font-size="11" fill="#555">${samplingNote([drain, noDrain])}; lines are offset by ${LINE_SHIFT} px per backend so that equal counts stay visible. Skew: max/mean connections over the ready backends.</text>`,
  );
  y += 24;
  const height = Math.ceil(y + 8);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-labelledby="convergence-title">`,
    `<title id="convergence-title">Connections per backend with and without GOAWAY drains, through a scale-out and a rolling replacement</title>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

async function load(path: string): Promise<Recording> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return checkRecording(value, path);
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.length !== 3 || argv.includes('--help') || argv.includes('-h')) {
    process.stderr.write(
      'usage: node scripts/plot-convergence.ts RECORDING.json RECORDING.json OUT.svg\n' +
        '  the two recordings come from `kube-lc-proxy demo --record FILE`, one with drains and\n' +
        '  one with --no-drain, in either order\n',
    );
    return 2;
  }
  const [first, second] = await Promise.all([load(argv[0] as string), load(argv[1] as string)]);
  const drain = [first, second].find((r) => r.mode === 'drain');
  const noDrain = [first, second].find((r) => r.mode === 'no-drain');
  if (drain === undefined || noDrain === undefined) {
    process.stderr.write(
      'plot-convergence: need one recording with drains and one with --no-drain\n',
    );
    return 2;
  }
  await writeFile(argv[2] as string, renderConvergenceSvg(drain, noDrain));
  process.stderr.write(`plot-convergence: wrote ${argv[2]}\n`);
  return 0;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(
        `plot-convergence: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
