/**
 * First step of the report: reads what bench/run.sh left in bench/out/ (runs.tsv and the raw
 * output of every load-generator run), parses each output, and writes bench/out/results.json:
 * every kept run with its figure, per test and path the median, range and CPU figures, and the
 * notes that follow from the data (noise, other work, memory, HTTP/2 detection).
 * bench/report.ts turns that into the console summary and docs/benchmarks.md.
 *
 *   node_modules/.bin/node bench/results.ts && node_modules/.bin/node bench/report.ts
 */
import { existsSync, writeFileSync } from 'node:fs';
import {
  OUT,
  pct,
  readText,
  tsv,
  type LatencyStat,
  type MemoryStat,
  type Results,
  type Run,
  type Stat,
  type Suite,
} from './common.ts';
import { latencyOf } from './latency.ts';

const SUITES: readonly Suite[] = ['bulk1', 'bulk4', 'connrate', 'h2', 'lat', 'wconnrate', 'wh2'];
const CASES = [
  'direct',
  'klp',
  'klp-untracked',
  'haproxy',
  'haproxy-http',
  'nginx-grpc',
  'klp-w1',
  'klp-w2',
  'haproxy-nb1',
  'haproxy-nb2',
];
/** CPU seconds / (figure x seconds) times this gives ms per GB (Gbit/s figures) or µs per unit. */
const PER_UNIT: Record<Suite, number> = {
  bulk1: 8000,
  bulk4: 8000,
  connrate: 1e6,
  h2: 1e6,
  lat: 1e6,
  wconnrate: 1e6,
  wh2: 1e6,
};

/** Paths in outputs are relative to the repository; never print where it is checked out. */

// ---- parsers: one per load generator ----------------------------------------------------------

function parseIperf3(text: string, errors: string[]): number | undefined {
  let json: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    errors.push('iperf3 output is not JSON');
    return undefined;
  }
  if (json.error !== undefined) errors.push(`iperf3: ${json.error}`);
  const bps = json.end?.sum_received?.bits_per_second;
  return bps === undefined ? undefined : bps / 1e9;
}

function parseWrk(text: string, errors: string[]): number | undefined {
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (sock !== null)
    errors.push(
      `socket errors: connect ${sock[1]}, read ${sock[2]}, write ${sock[3]}, timeout ${sock[4]}`,
    );
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (non2xx !== null) errors.push(`${non2xx[1]} non-2xx responses`);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  return m === null ? undefined : Number(m[1]);
}

function parseH2load(text: string, errors: string[]): number | undefined {
  const req =
    /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      text,
    );
  if (req === null) errors.push('no h2load summary');
  else if (req[1] !== req[2])
    errors.push(`${req[3]} failed, ${req[4]} errored, ${req[5]} timed out of ${req[1]}`);
  const m = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(text);
  return m === null ? undefined : Number(m[1]);
}

const PARSERS: Record<Suite, (text: string, errors: string[]) => number | undefined> = {
  bulk1: parseIperf3,
  bulk4: parseIperf3,
  connrate: parseWrk,
  h2: parseH2load,
  lat: parseH2load,
  wconnrate: parseWrk,
  wh2: parseH2load,
};

function loadRuns(): Run[] {
  return tsv(`${OUT}/runs.tsv`).map(
    ([suite, c, rep, file, wall, cpu, rc, lb, pb, steal, fo, , rss]) => {
      const s = suite as Suite;
      const errors: string[] = [];
      const value = PARSERS[s](readText(`${OUT}/${file}`), errors);
      if (rc !== '0') errors.push(`exit status ${rc}`);
      return {
        suite: s,
        case: c as string,
        rep: Number(rep),
        file: file as string,
        value,
        errors,
        wallS: Number(wall),
        proxyCpuS: cpu === '' || cpu === undefined ? undefined : Number(cpu),
        loadCpuBusy: Number(lb),
        proxyCpuBusy: Number(pb),
        steal: Number(steal),
        foreign: Number(fo ?? 0),
        rssKib: rss === undefined || rss === '' ? undefined : Number(rss),
      };
    },
  );
}

// ---- statistics -------------------------------------------------------------------------------

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function stat(runs: Run[], foreignMax: number): Stat {
  const clean = runs
    .filter((r) => r.foreign <= foreignMax)
    .map((r) => r.value)
    .filter((v): v is number => v !== undefined);
  const vals = runs.map((r) => r.value).filter((v): v is number => v !== undefined);
  const med = median(vals);
  const min = vals.length > 0 ? Math.min(...vals) : undefined;
  const max = vals.length > 0 ? Math.max(...vals) : undefined;
  const cpus = runs
    .filter((r) => r.proxyCpuS !== undefined && r.wallS > 0)
    .map((r) => (100 * (r.proxyCpuS as number)) / r.wallS);
  return {
    n: vals.length,
    median: med,
    min,
    max,
    spread: med && min !== undefined && max !== undefined ? (max - min) / med : undefined,
    cpu: median(cpus),
    cpuPerUnit: median(
      runs
        .filter((r) => r.proxyCpuS !== undefined && r.value !== undefined && r.value > 0)
        .map(
          (r) => ((r.proxyCpuS as number) * PER_UNIT[r.suite]) / ((r.value as number) * r.wallS),
        ),
    ),
    loadCpuBusy: median(runs.map((r) => r.loadCpuBusy)),
    proxyCpuBusy: median(runs.map((r) => r.proxyCpuBusy)),
    steal: Math.max(...runs.map((r) => r.steal)),
    foreign: Math.max(...runs.map((r) => r.foreign)),
    cleanMedian: median(clean),
    cleanN: clean.length,
    errors: runs.flatMap((r) => r.errors.map((e) => `run ${r.rep}: ${e}`)),
  };
}

// ---- main -------------------------------------------------------------------------------------

const runs = loadRuns();
if (runs.length === 0) {
  console.error(`no runs in ${OUT}/runs.tsv: run bench/run.sh first`);
  process.exit(1);
}
const meta = new Map(tsv(`${OUT}/meta.tsv`).map(([k, v]) => [k as string, v ?? '']));
const foreignMax = Number(meta.get('foreign_max') ?? 10);
const stats: Record<string, Stat> = {};
for (const suite of SUITES) {
  for (const c of CASES) {
    const rs = runs.filter((r) => r.suite === suite && r.case === c);
    if (rs.length > 0) stats[`${suite}/${c}`] = stat(rs, foreignMax);
  }
}
// ---- notes that follow from the data -------------------------------------------------------
const notes: string[] = [];
if (stats['h2/klp-untracked'] === undefined)
  notes.push(
    '`run --help` listed no `--no-h2-drain` flag when this ran, so the untracked HTTP/2 case and the tracking cost are not yet measured; the script measures them by itself once the flag exists.',
  );
// Whether HTTP/2 detection ran: per-protocol connection counters of the h2 Service port.
const protocolCounts = (c: string): string[] =>
  readText(`${OUT}/metrics-h2-${c}.txt`)
    .split('\n')
    .filter((l) =>
      /^kube_lc_proxy_\w+_total\{[^}]*bench-h2[^}]*protocol="[^"]+"[^}]*\} [1-9]/.test(l),
    )
    .map((l) => `\`${l.replace(/service_port="[^"]*",?/, '')}\``);
for (const c of ['klp', 'klp-untracked']) {
  if (!existsSync(`${OUT}/metrics-h2-${c}.txt`)) continue;
  const counts = protocolCounts(c);
  notes.push(
    counts.length === 0
      ? `${c === 'klp' ? 'kube-lc-proxy' : 'kube-lc-proxy, --no-h2-drain'}: /metrics after the HTTP/2 runs shows no per-protocol connection count, so nothing shows whether HTTP/2 detection ran.`
      : `${c === 'klp' ? 'kube-lc-proxy' : 'kube-lc-proxy, --no-h2-drain'}: /metrics after the HTTP/2 runs: ${counts.join(', ')} (warm-up connections included).`,
  );
}
const noisy = Object.entries(stats).filter(([, s]) => (s.spread ?? 0) > 0.1);
if (noisy.length > 0)
  notes.push(
    `Spread above 10% (treat these medians with care): ${noisy.map(([k, s]) => `${k} ${pct(s.spread)}`).join(', ')}.`,
  );
const busyBefore = Number(meta.get('busy_before') ?? 0);
if (busyBefore > 10)
  notes.push(
    `Other work kept the machine ${busyBefore}% busy just before the bench started (measured over 2 s); it competes with the bench for the two cores.`,
  );
const retries = Number(meta.get('retries') ?? 0);
const disturbed = runs.filter((r) => r.foreign > foreignMax);
notes.push(
  `Other work on the machine: ${retries} run(s) were run again because other processes used more than ${foreignMax}% of a core meanwhile${
    disturbed.length === 0
      ? '; no kept run was disturbed that much'
      : `; ${disturbed.length} kept run(s) were still disturbed (the rerun was disturbed too, or no rerun was left), the worst: ${[
          ...disturbed,
        ]
          .sort((a, b) => b.foreign - a.foreign)
          .slice(0, 8)
          .map((r) => `${r.suite}/${r.case} run ${r.rep} (${r.foreign.toFixed(0)}%)`)
          .join(', ')}`
  }. The "other work" column is the most CPU other processes used during a kept run of the case, in % of one core.`,
);
const h2Proxied = ['klp', 'klp-untracked', 'haproxy']
  .map((c) => stats[`h2/${c}`])
  .filter((x): x is Stat => x !== undefined);
if (h2Proxied.length > 0 && h2Proxied.every((x) => (x.loadCpuBusy ?? 0) >= 90))
  notes.push(
    'The HTTP/2 runs were limited by the load core (h2load and nghttpd share it), not by the proxy core: their req/s say as much about how each proxy affects the client and the server as about the proxy, and the proxy CPU per request is the better measure of what each proxy costs.',
  );
const steal = Math.max(...Object.values(stats).map((s) => s.steal));
if (steal > 1) notes.push(`The hypervisor stole up to ${steal.toFixed(1)}% of CPU time in a run.`);
if ((meta.get('virtualization') ?? '') !== '')
  notes.push('Virtual machine: steal time and noisy neighbours can move results between runs.');
for (const suite of SUITES) {
  const rss = runs.filter((r) => r.suite === suite && r.case === 'klp' && r.rssKib !== undefined);
  if (rss.length > 1)
    notes.push(
      `kube-lc-proxy RSS after each of its ${suite} runs, in run order: ${rss.map((r) => `${((r.rssKib as number) / 1024).toFixed(0)}`).join(', ')} MiB.`,
    );
}
// ---- latency (fixed-rate phase) and memory --------------------------------------------------
const latency: Record<string, LatencyStat> = {};
for (const c of CASES) {
  const rs = runs.filter((r) => r.suite === 'lat' && r.case === c);
  if (rs.length === 0) continue;
  const logs = rs.map((r) => readText(`${OUT}/${r.file.replace(/\.txt$/, '.log')}`));
  const all = latencyOf(logs);
  latency[c] = {
    ...all,
    perRun: rs.map((r, i) => {
      const one = latencyOf([logs[i] as string]);
      return { rep: r.rep, p50: one.p50, p99: one.p99, p999: one.p999 };
    }),
  };
  if (all.bad > 0)
    notes.push(
      `Latency, ${c}: ${all.bad} request(s) not answered 200 (left out of the percentiles).`,
    );
  if (all.n === 0) notes.push(`Latency, ${c}: no request log was found or it was empty.`);
}
const num = (v: string | undefined): number | undefined =>
  v === undefined || v === '' ? undefined : Number(v);
const memory: Record<string, MemoryStat> = {};
for (const [c, rest, open, opened, failed, fds] of tsv(`${OUT}/idle.tsv`)) {
  const restKib = Number(rest);
  const openKib = num(open);
  const n = num(opened);
  memory[c as string] = {
    restKib,
    openKib,
    opened: n,
    failed: num(failed),
    fds: num(fds),
    perConnBytes:
      openKib === undefined || n === undefined || n === 0
        ? undefined
        : ((openKib - restKib) * 1024) / n,
  };
  if ((num(failed) ?? 0) > 0)
    notes.push(`Memory, ${c}: ${failed} of the idle connections failed to open.`);
}
const results: Results = { runs, stats, latency, memory, notes };
writeFileSync(`${OUT}/results.json`, `${JSON.stringify(results, null, 1)}\n`);
