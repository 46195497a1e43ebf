/**
 * Second step of the report: reads bench/out/results.json (written by bench/results.ts) and the
 * rest of what bench/run.sh left in bench/out/ (meta.tsv, rss.tsv, commands.tsv, the rendered
 * configs), prints the results, ratios and targets, and regenerates docs/benchmarks.md. Run both
 * steps again to re-render the last run:
 *
 *   node_modules/.bin/node bench/results.ts && node_modules/.bin/node bench/report.ts
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { OUT, pct, readText, tsv, type Results, type Stat, type Suite } from './common.ts';
import {
  cpuSection,
  goalsConsole,
  goalsSection,
  latencySection,
  memorySection,
  PROXIES,
  workersSection,
  type RunData,
} from './report-goals.ts';

const DOC = 'docs/benchmarks.md';

const SUITES: Record<Suite, { title: string; unit: string; digits: number; cpuUnit: string }> = {
  bulk1: {
    title: 'Bulk throughput, 1 stream (iperf3)',
    unit: 'Gbit/s',
    digits: 2,
    cpuUnit: 'ms/GB',
  },
  bulk4: {
    title: 'Bulk throughput, 4 streams (iperf3)',
    unit: 'Gbit/s',
    digits: 2,
    cpuUnit: 'ms/GB',
  },
  connrate: {
    title: 'New connections (wrk, Connection: close)',
    unit: 'conn/s',
    digits: 0,
    cpuUnit: 'µs/conn',
  },
  h2: {
    title: 'HTTP/2 requests (h2load, 10 connections x 10 streams)',
    unit: 'req/s',
    digits: 0,
    cpuUnit: 'µs/req',
  },
  lat: {
    title: 'HTTP/2 requests at a fixed rate (h2load --rps; latency above)',
    unit: 'req/s',
    digits: 0,
    cpuUnit: 'µs/req',
  },
  wconnrate: {
    title: 'Workers: new connections (wrk -t2, Connection: close)',
    unit: 'conn/s',
    digits: 0,
    cpuUnit: 'µs/conn',
  },
  wh2: {
    title: 'Workers: HTTP/2 requests (h2load -t2, 20 connections x 10 streams)',
    unit: 'req/s',
    digits: 0,
    cpuUnit: 'µs/req',
  },
};
const CASES: Record<string, string> = {
  direct: 'direct (no proxy)',
  ...PROXIES,
  'klp-w1': 'kube-lc-proxy --workers 1',
  'klp-w2': 'kube-lc-proxy --workers 2',
  'haproxy-nb1': 'HAProxy nbthread 1',
  'haproxy-nb2': 'HAProxy nbthread 2',
};

/** Paths in outputs are relative to the repository; never print where it is checked out. */
const scrub = (text: string): string => text.split(`${process.cwd()}/`).join('');

/** Which side limited a case: a core at 90% or more, else latency. */
const limit = (s: Stat): string =>
  (s.proxyCpuBusy ?? 0) >= 90
    ? 'proxy core'
    : (s.loadCpuBusy ?? 0) >= 90
      ? 'load core'
      : 'latency (no core saturated)';

const fmt = (v: number | undefined, digits: number): string =>
  v === undefined
    ? 'n/a'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

// ---- report -----------------------------------------------------------------------------------

const {
  runs,
  stats: statsByKey,
  latency = {},
  memory = {},
  notes = [],
} = JSON.parse(readText(`${OUT}/results.json`) || '{}') as Partial<Results>;
if (runs === undefined || statsByKey === undefined || runs.length === 0) {
  console.error(`no results in ${OUT}/results.json: run bench/run.sh (or bench/results.ts) first`);
  process.exit(1);
}
const meta = new Map(tsv(`${OUT}/meta.tsv`).map(([k, v]) => [k as string, v ?? '']));
const m = (k: string): string => meta.get(k) ?? 'unknown';
const stats = new Map(Object.entries(statsByKey));
const runData: RunData = { stats, latency, memory, m };
const med = (suite: Suite, c: string): number | undefined => stats.get(`${suite}/${c}`)?.median;
const ratio = (suite: Suite, a: string, b: string): number | undefined => {
  const x = med(suite, a);
  const y = med(suite, b);
  return x === undefined || y === undefined || y === 0 ? undefined : x / y;
};
/** The same ratio from the undisturbed runs only. */
const cleanRatio = (suite: Suite, a: string, b: string): number | undefined => {
  const x = stats.get(`${suite}/${a}`)?.cleanMedian;
  const y = stats.get(`${suite}/${b}`)?.cleanMedian;
  return x === undefined || y === undefined || y === 0 ? undefined : x / y;
};

interface Target {
  what: string;
  value: string;
  met: boolean | undefined;
  /** Whether every pairing of repetitions agrees with the medians (ranges clear of the bar). */
  clear: boolean;
  /** The ratio (or cost) over the most and least favourable pairing of repetitions. */
  range: string;
}
/** Ratio of suite's case a to case b over the least and most favourable pairing of runs. */
const ratioRange = (suite: Suite, a: string, b: string): [number, number] | undefined => {
  const x = stats.get(`${suite}/${a}`);
  const y = stats.get(`${suite}/${b}`);
  if (x?.min === undefined || x.max === undefined || y?.min === undefined || y.max === undefined)
    return undefined;
  return [x.min / y.max, x.max / y.min];
};
const atLeastOne = (what: string, suite: Suite, a: string, b: string): Target => {
  const r = ratio(suite, a, b);
  const rr = ratioRange(suite, a, b);
  return {
    what,
    value: r === undefined ? 'not yet measured' : `${r.toFixed(2)}x`,
    met: r === undefined ? undefined : r >= 1.0,
    clear: rr === undefined || rr[0] >= 1.0 || rr[1] < 1.0,
    range: rr === undefined ? '' : `${rr[0].toFixed(2)}x - ${rr[1].toFixed(2)}x`,
  };
};
const trackedVsUntracked = ratio('h2', 'klp', 'klp-untracked');
const trackingCost = trackedVsUntracked === undefined ? undefined : 1 - trackedVsUntracked;
const costRange = ratioRange('h2', 'klp', 'klp-untracked')?.map((r) => 1 - r) as
  [number, number] | undefined;
const targets: Target[] = [
  atLeastOne(
    'Bulk throughput, 1 stream: kube-lc-proxy / HAProxy >= 1.0',
    'bulk1',
    'klp',
    'haproxy',
  ),
  atLeastOne(
    'Bulk throughput, 4 streams: kube-lc-proxy / HAProxy >= 1.0',
    'bulk4',
    'klp',
    'haproxy',
  ),
  atLeastOne('New-connection rate: kube-lc-proxy / HAProxy >= 1.0', 'connrate', 'klp', 'haproxy'),
  {
    what: 'HTTP/2 tracking cost (1 - tracked / untracked req/s) < 10%',
    value: trackingCost === undefined ? 'not yet measured' : pct(trackingCost),
    met: trackingCost === undefined ? undefined : trackingCost < 0.1,
    clear: costRange === undefined || costRange[0] < 0.1 === costRange[1] < 0.1,
    range: costRange === undefined ? '' : `${pct(costRange[1])} - ${pct(costRange[0])}`,
  },
  atLeastOne('HTTP/2 requests: kube-lc-proxy (tracked) / HAProxy >= 1.0', 'h2', 'klp', 'haproxy'),
];
const status = (t: Target): string =>
  t.met === undefined
    ? 'not yet measured'
    : `${t.met ? 'met' : '**not met**'}${t.clear ? '' : ' (uncertain: the repetitions disagree)'}`;

const lines: string[] = [];
const out = (...ls: string[]): void => void lines.push(...ls);

out(
  '# Benchmarks',
  '',
  `Generated by \`npm run bench\` (\`bench/run.sh\`) on ${m('date')}. Do not edit by hand: run the`,
  'bench again, or `node_modules/.bin/node bench/results.ts && node_modules/.bin/node bench/report.ts`',
  'to re-render the last run from `bench/out/`.',
  '',
  ...goalsSection(runData),
  '',
  '## Targets',
  '',
  '| target | measured (medians) | over all pairings of repetitions | status |',
  '| --- | --- | --- | --- |',
  ...targets.map((t) => `| ${t.what} | ${t.value} | ${t.range} | ${status(t)} |`),
  '',
  '"Over all pairings" is the ratio from the least to the most favourable pairing of one repetition of each side; a target is marked uncertain when that range straddles the bar.',
  '',
  '## Machine',
  '',
  `- CPU: ${m('cpu_model')}, ${m('cpus')} cores${m('virtualization') ? ` (virtual machine, ${m('virtualization')})` : ''}, ${m('memory')} RAM`,
  `- Kernel ${m('kernel')}, ${m('os')}; ${m('sysctl')}`,
  `- Node.js ${m('node')}; HAProxy ${m('haproxy')}; nginx ${m('nginx')}; wrk ${m('wrk')}; iperf3 ${m('iperf3')}; h2load and nghttpd ${m('h2load')}`,
  `- kube-lc-proxy at commit ${m('commit')}${m('src_changed') !== '0' ? ` plus ${m('src_changed')} uncommitted change(s) under src/` : ''}; dist/ ${m('build') === 'ok' ? 'built from those sources' : 'NOT rebuilt (the build failed): an older build was measured'}`,
  `- Other work just before the start: ${m('busy_before')}% of both CPUs busy; load average (1, 5, 15 min) at start ${m('loadavg_start')}, at end ${m('loadavg_end')}; the whole bench took ${m('duration_s')} s`,
  '',
  '## Method',
  '',
  m('pin') === '1'
    ? `- CPU pinning (\`taskset\`): load generators and backends on CPU ${m('load_cpu')}, the proxy under test (kube-lc-proxy: the whole Node.js process with its helper threads; HAProxy: \`nbthread 1\`) alone on CPU ${m('proxy_cpu')}. Both proxies get the same core; "direct" runs use only the load CPU, so it is a reference point, not an upper bound.`
    : '- No CPU pinning (BENCH_PIN=0).',
  `- ${m('reps')} repetitions per case (latency and workers phases: see their sections). Each round runs every case once, in an order rotated per round. Each proxy gets an unrecorded warm-up run first. kube-lc-proxy is started afresh for each phase${m('workers_flag') === '1' ? `, with \`--workers ${m('workers')}\` outside the workers phase` : ' (its `run --help` listed no `--workers`)'}; HAProxy, the L7 proxies and the backends run throughout. The L7 proxies run like HAProxy TCP: one process, one thread (nginx with \`master_process off\`), on the proxy CPU. Phases run: ${m('phases')}.`,
  '- "spread" is (max - min) / median over the repetitions. "proxy process" is the median CPU time of the proxy in the path over the wall time of the run, in % of one core; "proxy CPU per unit" is its CPU time per GB carried, per connection or per request (median over the runs), which compares the cost of the proxies even when the proxy core was not the limit. "proxy core" and "load core" are how busy each CPU was over the run, kernel work included, from `/proc/stat`: a core at 90% or more is taken as what limited the run ("limited by"); when neither is, the limit is latency (the load generators keep a fixed number of connections or streams in flight). When the load core is the limit, the figure of a proxy also reflects how much extra work it causes the client and the server (for example more, smaller TCP segments to read), not only its own cost.',
  `- Other work: the CPU time of every process outside the bench's own process tree (kernel threads left out) is read from \`/proc\` before and after each run; a run during which it exceeded ${m('foreign_max')}% of one core is run once more and the less disturbed of the two is kept, up to ${m('retry_budget')} times per phase (the latency phase: every run once) while the bench is under ${m('retry_until')} s old.`,
  '- kube-lc-proxy runs as the image runs it: with the glibc malloc settings of the Dockerfile (`MALLOC_ARENA_MAX=1`, larger trim threshold and top pad; see docs/operations.md, "Memory allocator"), exactly as in the commands below.',
  '- Peak RSS is `VmHWM` from `/proc/PID/status`, read at the end of each phase (the kernel keeps the high-water mark).',
  `- Only loopback: everything listens on ${m('net')}.x; nothing leaves the machine.`,
  '',
  ...latencySection(runData),
  '',
  ...memorySection(runData),
  '',
  ...cpuSection(runData),
  '',
  ...workersSection(runData),
  '',
  '## Results',
  '',
  '| test | path | median | min - max | spread | undisturbed runs: median (n) | proxy process | proxy CPU per unit | proxy core | load core | limited by | other work | problems |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |',
);
for (const [suite, def] of Object.entries(SUITES) as [Suite, (typeof SUITES)[Suite]][]) {
  for (const [c, label] of Object.entries(CASES)) {
    const s = stats.get(`${suite}/${c}`);
    if (s === undefined) {
      if (suite === 'h2' && c === 'klp-untracked')
        out(
          `| ${def.title} | ${label} | not yet measured | | | | | | | | | | flag not available |`,
        );
      continue;
    }
    const d = def.digits;
    out(
      `| ${def.title} | ${label} | ${fmt(s.median, d)} ${def.unit} | ${fmt(s.min, d)} - ${fmt(s.max, d)} | ${pct(s.spread)} | ${s.cleanN === 0 ? 'none' : `${fmt(s.cleanMedian, d)} (${s.cleanN})`} | ${s.cpu === undefined ? '' : `${s.cpu.toFixed(0)}%`} | ${s.cpuPerUnit === undefined ? '' : `${s.cpuPerUnit.toFixed(2)} ${def.cpuUnit}`} | ${fmt(s.proxyCpuBusy, 0)}% | ${fmt(s.loadCpuBusy, 0)}% | ${limit(s)} | ${s.foreign.toFixed(0)}% | ${s.errors.length === 0 ? '' : s.errors.join('; ')} |`,
    );
  }
}
const ratioDefs: [string, Suite, string, string][] = [
  ['Bulk, 1 stream: kube-lc-proxy / HAProxy', 'bulk1', 'klp', 'haproxy'],
  ['Bulk, 4 streams: kube-lc-proxy / HAProxy', 'bulk4', 'klp', 'haproxy'],
  ['New connections: kube-lc-proxy / HAProxy', 'connrate', 'klp', 'haproxy'],
  ['HTTP/2: kube-lc-proxy tracked / HAProxy', 'h2', 'klp', 'haproxy'],
  ['HTTP/2: kube-lc-proxy tracked / untracked', 'h2', 'klp', 'klp-untracked'],
  ['HTTP/2: kube-lc-proxy untracked / HAProxy', 'h2', 'klp-untracked', 'haproxy'],
  ['Bulk, 1 stream: kube-lc-proxy / direct', 'bulk1', 'klp', 'direct'],
  ['New connections: kube-lc-proxy / direct', 'connrate', 'klp', 'direct'],
  ['New connections: HAProxy / direct', 'connrate', 'haproxy', 'direct'],
];
const ratioRows = ratioDefs.map(
  ([k, suite, a, b]) =>
    [k, ratio(suite, a, b), cleanRatio(suite, a, b)] as [
      string,
      number | undefined,
      number | undefined,
    ],
);
/** Proxy CPU per unit of work of a over b (lower is cheaper). */
const cpuRatio = (suite: Suite, a: string, b: string): number | undefined => {
  const x = stats.get(`${suite}/${a}`)?.cpuPerUnit;
  const y = stats.get(`${suite}/${b}`)?.cpuPerUnit;
  return x === undefined || y === undefined || y === 0 ? undefined : x / y;
};
const cpuRatioRows: [string, number | undefined][] = [
  ['Bulk, 1 stream: kube-lc-proxy / HAProxy', cpuRatio('bulk1', 'klp', 'haproxy')],
  ['Bulk, 4 streams: kube-lc-proxy / HAProxy', cpuRatio('bulk4', 'klp', 'haproxy')],
  ['New connections: kube-lc-proxy / HAProxy', cpuRatio('connrate', 'klp', 'haproxy')],
  ['HTTP/2: kube-lc-proxy tracked / HAProxy', cpuRatio('h2', 'klp', 'haproxy')],
  ['HTTP/2: kube-lc-proxy tracked / untracked', cpuRatio('h2', 'klp', 'klp-untracked')],
];
const times = (v: number | undefined, none = 'not yet measured'): string =>
  v === undefined ? none : `${v.toFixed(2)}x`;
out(
  '',
  '## Ratios (of medians)',
  '',
  '| ratio | all kept runs | undisturbed runs only |',
  '| --- | ---: | ---: |',
  ...ratioRows.map(
    ([k, v, c]) =>
      `| ${k} | ${times(v)} | ${times(c, v === undefined ? 'not yet measured' : 'no undisturbed run')} |`,
  ),
  '',
  '## Proxy CPU per unit of work (of medians; lower is cheaper)',
  '',
  '| ratio | value |',
  '| --- | ---: |',
  ...cpuRatioRows.map(([k, v]) => `| ${k} | ${times(v)} |`),
  '',
  '## Peak memory',
  '',
  '| phase | process | peak RSS |',
  '| --- | --- | ---: |',
  ...tsv(`${OUT}/rss.tsv`).map(
    ([phase, proc, kib]) =>
      `| ${phase} | ${CASES[proc as string] ?? proc} | ${(Number(kib) / 1024).toFixed(1)} MiB |`,
  ),
);

// The section bench/metrics-flood.ts writes is kept as it is (it has its own run and date).
{
  const old = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '';
  const i = old.indexOf('<!-- metrics-flood:begin -->');
  const end = '<!-- metrics-flood:end -->';
  const j = old.indexOf(end);
  if (i >= 0 && j > i) out('', old.slice(i, j + end.length));
}

out('', '## Notes', '', ...notes.map((n) => `- ${n}`));

// ---- exact commands and configs ----
out(
  '',
  '## Commands',
  '',
  'Run from the repository root, in this order (backends and proxies stay up). `$SNAPSHOT` is a copy of `bin/`, `dist/` and `package.json` taken when the bench starts, with a link to `node_modules/`, so that a rebuild of `dist/` during the bench cannot change the code under test.',
  '',
  '```sh',
);
// @LOG@ stands for each run's own request log (bench/run.sh fills it in per run).
for (const [label, cmd] of tsv(`${OUT}/commands.tsv`))
  out(`# ${label}`, scrub(cmd ?? '').replaceAll('@LOG@', `${OUT}/raw/${label}-rREP-aATTEMPT.log`));
out('```', '');
for (const [title, path, lang] of [
  ['HAProxy, TCP', `${OUT}/conf/haproxy.cfg`, 'haproxy'],
  ['HAProxy, mode http', `${OUT}/conf/haproxy-http.cfg`, 'haproxy'],
  ['nginx grpc_pass', `${OUT}/nginx-grpc/nginx.conf`, 'nginx'],
  ['nginx (backend of the connection-rate test)', `${OUT}/nginx/nginx.conf`, 'nginx'],
  ['kube-lc-proxy manifests (tracked instance)', `${OUT}/manifests/tracked.yaml`, 'yaml'],
] as const) {
  out(`### ${title}: \`${path}\``, '', `\`\`\`${lang}`, scrub(readText(path)).trimEnd(), '```', '');
}
// The scale section is written by bench/scale.ts (a separate run): keep it as it is.
const scale = /<!-- scale:begin -->[\s\S]*<!-- scale:end -->/.exec(readText(DOC))?.[0];
if (scale !== undefined) out('', scale);
writeFileSync(DOC, `${lines.join('\n').trimEnd()}\n`);

// ---- console summary ----
console.log('');
for (const [suite, def] of Object.entries(SUITES) as [Suite, (typeof SUITES)[Suite]][]) {
  for (const c of Object.keys(CASES)) {
    const s = stats.get(`${suite}/${c}`);
    if (s === undefined) continue;
    console.log(
      `${suite.padEnd(9)} ${c.padEnd(14)} median ${fmt(s.median, def.digits).padStart(10)} ${def.unit.padEnd(7)} ` +
        `range ${fmt(s.min, def.digits)} - ${fmt(s.max, def.digits)} spread ${pct(s.spread).padStart(6)}` +
        ` undisturbed ${s.cleanN === 0 ? 'none' : `${fmt(s.cleanMedian, def.digits)} (${s.cleanN})`}` +
        `${s.cpu === undefined ? '' : ` proxy ${s.cpu.toFixed(0)}%`}${s.cpuPerUnit === undefined ? '' : ` ${s.cpuPerUnit.toFixed(2)} ${def.cpuUnit}`} cores: proxy ${fmt(s.proxyCpuBusy, 0)}% load ${fmt(s.loadCpuBusy, 0)}%${s.errors.length > 0 ? `  problems: ${s.errors.join('; ')}` : ''}`,
    );
  }
}
console.log('');
for (const [k, v, c] of ratioRows)
  console.log(`${k.padEnd(44)} ${times(v).padEnd(8)} (undisturbed runs only: ${times(c, 'none')})`);
console.log('');
for (const [k, v] of cpuRatioRows) console.log(`proxy CPU per unit, ${k.padEnd(44)} ${times(v)}`);
console.log('');
for (const t of targets)
  console.log(`${status(t).replace(/\*/g, '')}: ${t.what}: ${t.value} (pairings ${t.range})`);
console.log('');
for (const line of goalsConsole(runData)) console.log(line);
for (const [phase, proc, kib] of tsv(`${OUT}/rss.tsv`))
  console.log(`peak RSS ${phase}/${proc}: ${(Number(kib) / 1024).toFixed(1)} MiB`);
