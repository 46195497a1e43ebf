/**
 * The parts of docs/benchmarks.md that issue 11 asks for, from one run's results: the goals
 * table (ratios to HAProxy in the same run), latency added at a fixed rate, memory at rest and
 * per idle connection, proxy CPU per unit of work for every proxy, and --workers against
 * nbthread. Pure: bench/report.ts hands in what it read and writes the lines out.
 */
import type { LatencyStat, MemoryStat, Stat, Suite } from './common.ts';

/** What one run left, as bench/report.ts read it. */
export interface RunData {
  stats: Map<string, Stat>;
  latency: Record<string, LatencyStat>;
  memory: Record<string, MemoryStat>;
  /** A meta.tsv value ('unknown' when missing). */
  m: (key: string) => string;
}

/** One row of the goals table. */
export interface Goal {
  figure: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
}

export const PROXIES: Record<string, string> = {
  klp: 'kube-lc-proxy',
  'klp-untracked': 'kube-lc-proxy, --no-h2-drain',
  haproxy: 'HAProxy, TCP, leastconn',
  'haproxy-http': 'HAProxy, mode http (h2 both sides)',
  'nginx-grpc': 'nginx grpc_pass',
};

const ms = (us: number | undefined): string =>
  us === undefined ? 'n/a' : `${(us / 1000).toFixed(3)} ms`;
const signedMs = (us: number | undefined): string =>
  us === undefined ? 'n/a' : `${us >= 0 ? '+' : '-'}${(Math.abs(us) / 1000).toFixed(3)} ms`;
const mib = (kib: number | undefined): string =>
  kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`;
const x = (v: number | undefined): string => (v === undefined ? 'n/a' : `${v.toFixed(2)}x`);
const div = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

/** Latency added by a proxy at percentile key: through it minus direct, same run (µs). */
export function added(
  lat: Record<string, LatencyStat>,
  c: string,
  key: 'p50' | 'p99' | 'p999',
): number | undefined {
  const a = lat[c]?.[key];
  const d = lat.direct?.[key];
  return a === undefined || d === undefined ? undefined : a - d;
}

/**
 * "kube-lc-proxy's added latency <= bar x HAProxy's". When HAProxy added nothing measurable (0
 * or less) the ratio has no meaning: the goal is then met only if kube-lc-proxy added no more.
 */
function latencyGoal(d: RunData, key: 'p99' | 'p999', label: string, bar: number): Goal {
  const k = added(d.latency, 'klp', key);
  const h = added(d.latency, 'haproxy', key);
  const figure = `${label} latency added at ${Number(d.m('lat_clients')) * Number(d.m('lat_rps'))} HTTP/2 requests/s`;
  const goal = `<= ${bar.toFixed(1)}x HAProxy TCP`;
  if (k === undefined || h === undefined)
    return { figure, goal, measured: 'not measured', met: undefined };
  if (h <= 0)
    return {
      figure,
      goal,
      measured: `${signedMs(k)} vs ${signedMs(h)} (HAProxy added nothing measurable: no ratio)`,
      met: k <= h,
    };
  const r = k / h;
  return { figure, goal, measured: `${signedMs(k)} vs ${signedMs(h)}: ${x(r)}`, met: r <= bar };
}

function cpuGoal(d: RunData, figure: string, suites: Suite[], unit: string, bar: number): Goal {
  const parts = suites.map((s) => {
    const k = d.stats.get(`${s}/klp`)?.cpuPerUnit;
    const h = d.stats.get(`${s}/haproxy`)?.cpuPerUnit;
    return { s, k, h, r: div(k, h) };
  });
  const goal = `<= ${bar.toFixed(1)}x HAProxy TCP`;
  if (parts.some((p) => p.r === undefined))
    return { figure, goal, measured: 'not measured', met: undefined };
  const label = (s: Suite): string =>
    suites.length === 1 ? '' : s === 'bulk1' ? '1 stream: ' : '4 streams: ';
  return {
    figure,
    goal,
    measured: parts
      .map((p) => `${label(p.s)}${p.k?.toFixed(2)} vs ${p.h?.toFixed(2)} ${unit}: ${x(p.r)}`)
      .join('; '),
    met: parts.every((p) => (p.r as number) <= bar),
  };
}

/** The goals of issue 11, each met or not from this run's figures. */
export function goals(d: RunData): Goal[] {
  const kRest = d.memory.klp?.restKib;
  const kConn = d.memory.klp?.perConnBytes;
  const hConn = d.memory.haproxy?.perConnBytes;
  const connRatio =
    kConn !== undefined && hConn !== undefined && hConn > 0 ? kConn / hConn : undefined;
  return [
    cpuGoal(d, 'Proxy CPU per HTTP/2 request (h2load, full speed)', ['h2'], 'µs', 1.0),
    cpuGoal(d, 'Proxy CPU per new connection (wrk, Connection: close)', ['connrate'], 'µs', 1.3),
    cpuGoal(d, 'Proxy CPU per GB (iperf3)', ['bulk1', 'bulk4'], 'ms', 1.3),
    latencyGoal(d, 'p99', 'p99', 1.0),
    latencyGoal(d, 'p999', 'p99.9', 1.2),
    {
      figure: 'RSS at rest',
      goal: '<= 40 MiB',
      measured:
        kRest === undefined
          ? 'not measured'
          : `${mib(kRest)} (HAProxy ${mib(d.memory.haproxy?.restKib)})`,
      met: kRest === undefined ? undefined : kRest <= 40 * 1024,
    },
    {
      figure: `RSS per idle HTTP/2 connection (${d.m('idle_conns')} open)`,
      goal: '<= 1.0x HAProxy TCP',
      measured:
        connRatio === undefined
          ? 'not measured'
          : `${((kConn as number) / 1024).toFixed(2)} KiB vs ${((hConn as number) / 1024).toFixed(2)} KiB: ${x(connRatio)}`,
      met: connRatio === undefined ? undefined : connRatio <= 1.0,
    },
  ];
}

const status = (g: Goal): string =>
  g.met === undefined ? 'not measured' : g.met ? 'met' : '**not met**';

export function goalsSection(d: RunData): string[] {
  const w =
    d.m('workers_flag') === '1'
      ? `\`--workers ${d.m('workers')}\``
      : 'no `--workers` flag (one event loop)';
  return [
    '## Goals (issue 11)',
    '',
    `kube-lc-proxy (${w}, pinned to one core) against HAProxy 2.6 in TCP mode with \`nbthread 1\` on the same core, both measured in this run. CPU figures are medians over the repetitions; latency figures are percentiles of every request of the fixed-rate runs.`,
    '',
    '| figure | goal | measured: kube-lc-proxy vs HAProxy | status |',
    '| --- | --- | --- | --- |',
    ...goals(d).map((g) => `| ${g.figure} | ${g.goal} | ${g.measured} | ${status(g)} |`),
  ];
}

export function latencySection(d: RunData): string[] {
  const rate = Number(d.m('lat_clients')) * Number(d.m('lat_rps'));
  const rows = ['direct', 'klp', 'haproxy', 'haproxy-http', 'nginx-grpc'].filter(
    (c) => d.latency[c] !== undefined,
  );
  if (rows.length === 0) return [];
  return [
    '## Latency added at a fixed rate',
    '',
    `\`h2load --rps\`: ${d.m('lat_clients')} connections of ${d.m('lat_rps')} requests/s each (${rate.toLocaleString('en-US')} requests/s in all, up to 10 streams per connection), ${d.m('lat_seconds')} s per run after 1 s of unrecorded warm-up, ${d.m('lat_reps')} runs per path in rotated order. Percentiles come from h2load's per-request log (\`--log-file\`: every request's time to the end of its response), pooled over the runs of a path; "per run" gives each run's own p99. "Added" is the percentile through the proxy minus the same percentile direct, in this run. The load generator and nghttpd share one core, the proxy has the other (one process, one thread or event loop each). Tail percentiles are where other work on a shared machine shows first: a run during which other processes used a whole core or more has a p99 that measures waiting for a CPU, not the proxy (see the last column, and compare the runs of a path). Other work just before this phase: ${d.m('busy_before_latency')}% of both CPUs busy.`,
    '',
    '| path | requests | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | p99 per run | proxy CPU per request at this rate | other work (most in a run) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
    ...rows.map((c) => {
      const l = d.latency[c] as LatencyStat;
      const direct = c === 'direct';
      const st = d.stats.get(`lat/${c}`);
      const cpu = st?.cpuPerUnit;
      return `| ${direct ? 'direct (no proxy)' : PROXIES[c]} | ${l.n.toLocaleString('en-US')}${l.bad > 0 ? ` (${l.bad} bad)` : ''} | ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.p999)} | ${direct ? '' : signedMs(added(d.latency, c, 'p50'))} | ${direct ? '' : signedMs(added(d.latency, c, 'p99'))} | ${direct ? '' : signedMs(added(d.latency, c, 'p999'))} | ${l.perRun.map((r) => ms(r.p99)).join(', ')} | ${cpu === undefined ? '' : `${cpu.toFixed(2)} µs`} | ${st === undefined ? '' : `${st.foreign.toFixed(0)}% of a core`} |`;
    }),
  ];
}

export function memorySection(d: RunData): string[] {
  const rows = ['klp', 'haproxy', 'haproxy-http', 'nginx-grpc'].filter(
    (c) => d.memory[c] !== undefined,
  );
  if (rows.length === 0) return [];
  const n = Number(d.m('idle_conns'));
  return [
    '## Memory at rest and per idle connection',
    '',
    `RSS (\`VmRSS\`) of each proxy 5 s after it started listening, before any traffic ("at rest"; kube-lc-proxy is a fresh process, the others have been up since the start of the bench with no traffic). Then, through each TCP proxy, ${n.toLocaleString('en-US')} HTTP/2 connections are opened and left idle (each as an idle gRPC channel: preface and SETTINGS exchanged, one request answered; \`bench/idle-conns.ts\` on both ends) and the RSS is read 3 s after the last one opened. Per connection: (RSS with them open - RSS at rest) / connections. Descriptors: ${n.toLocaleString('en-US')} for the client process, ${n.toLocaleString('en-US')} for the backend process and ${(2 * n).toLocaleString('en-US')} for the proxy, each under the open-file limit of ${d.m('nofile')}.`,
    '',
    '| proxy | RSS at rest | RSS with the idle connections | per idle connection | proxy descriptors open |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((c) => {
      const s = d.memory[c] as MemoryStat;
      return `| ${PROXIES[c]} | ${mib(s.restKib)} | ${s.openKib === undefined ? 'not measured' : `${mib(s.openKib)} (${s.opened} open${s.failed ? `, ${s.failed} failed` : ''})`} | ${s.perConnBytes === undefined ? '' : `${(s.perConnBytes / 1024).toFixed(2)} KiB`} | ${s.fds ?? ''} |`;
    }),
  ];
}

/** Proxy CPU per unit of work of every proxy, and its ratio to HAProxy TCP. */
export function cpuSection(d: RunData): string[] {
  const cols: [Suite, string][] = [
    ['bulk1', 'ms per GB, 1 stream'],
    ['bulk4', 'ms per GB, 4 streams'],
    ['connrate', 'µs per new connection'],
    ['h2', 'µs per HTTP/2 request, full speed'],
    ['lat', 'µs per HTTP/2 request, fixed rate'],
  ];
  const cell = (c: string, s: Suite): string => {
    const v = d.stats.get(`${s}/${c}`)?.cpuPerUnit;
    if (v === undefined) return '';
    const r = c === 'haproxy' ? undefined : div(v, d.stats.get(`${s}/haproxy`)?.cpuPerUnit);
    return `${v.toFixed(2)}${r === undefined ? '' : ` (${x(r)})`}`;
  };
  return [
    '## Proxy CPU per unit of work, every proxy',
    '',
    'CPU time (user + system, every thread) of the proxy process over the run, per unit of work; median over the repetitions; in brackets the ratio to HAProxy in TCP mode. The L7 proxies speak HTTP/2 only here, so they have no bulk or connection-rate figure.',
    '',
    `| proxy | ${cols.map(([, t]) => t).join(' | ')} |`,
    `| --- | ${cols.map(() => '---:').join(' | ')} |`,
    ...Object.entries(PROXIES)
      .filter(([c]) => cols.some(([s]) => d.stats.has(`${s}/${c}`)))
      .map(([c, label]) => `| ${label} | ${cols.map(([s]) => cell(c, s)).join(' | ')} |`),
  ];
}

export function workersSection(d: RunData): string[] {
  const head = ['## --workers against HAProxy nbthread', ''];
  if (d.m('workers_flag') !== '1')
    return [
      ...head,
      '**Not measured:** `kube-lc-proxy run --help` listed no `--workers` flag when this ran, so the comparison of `--workers 1` and `--workers 2` with HAProxy `nbthread 1` and `nbthread 2` was skipped. The bench runs it by itself once the flag exists.',
    ];
  const cases = ['klp-w1', 'klp-w2', 'haproxy-nb1', 'haproxy-nb2'];
  const label: Record<string, string> = {
    'klp-w1': 'kube-lc-proxy --workers 1',
    'klp-w2': 'kube-lc-proxy --workers 2',
    'haproxy-nb1': 'HAProxy nbthread 1',
    'haproxy-nb2': 'HAProxy nbthread 2',
  };
  const med = (s: Suite, c: string): number | undefined => d.stats.get(`${s}/${c}`)?.median;
  const cpu = (s: Suite, c: string): number | undefined => d.stats.get(`${s}/${c}`)?.cpuPerUnit;
  const f0 = (v: number | undefined): string =>
    v === undefined ? 'n/a' : v.toLocaleString('en-US', { maximumFractionDigits: 0 });
  const f2 = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toFixed(2));
  return [
    ...head,
    `The proxy under test and the load generators (wrk -t2 -c100, Connection: close; h2load -t2 -c20 -m10) may all run on CPUs ${d.m('workers_cpus')} (\`taskset\`), the same for kube-lc-proxy and HAProxy; the backends (nginx, nghttpd) stay on CPU ${d.m('load_cpu')}. ${d.m('workers_reps')} runs of ${d.m('workers_seconds')} s per case, medians.`,
    '',
    `**What a ${d.m('cpus')}-core machine cannot show:** scaling. With 2 workers or threads the proxy competes for the same two cores with the load generators and the backends, so a rate that does not double says nothing about how the proxy scales; only the CPU per unit of work (which counts the proxy's own CPU time, wherever it ran) compares the two proxies fairly here. Scaling needs a machine where the load runs on cores of its own.`,
    '',
    '| proxy | new connections/s | CPU per connection | HTTP/2 requests/s | CPU per request |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...cases.map(
      (c) =>
        `| ${label[c]} | ${f0(med('wconnrate', c))} | ${f2(cpu('wconnrate', c))} µs | ${f0(med('wh2', c))} | ${f2(cpu('wh2', c))} µs |`,
    ),
    '',
    '| ratio | new connections | HTTP/2 requests |',
    '| --- | ---: | ---: |',
    `| rate, 2 over 1, kube-lc-proxy | ${x(div(med('wconnrate', 'klp-w2'), med('wconnrate', 'klp-w1')))} | ${x(div(med('wh2', 'klp-w2'), med('wh2', 'klp-w1')))} |`,
    `| rate, 2 over 1, HAProxy | ${x(div(med('wconnrate', 'haproxy-nb2'), med('wconnrate', 'haproxy-nb1')))} | ${x(div(med('wh2', 'haproxy-nb2'), med('wh2', 'haproxy-nb1')))} |`,
    `| CPU per unit, --workers 1 / nbthread 1 | ${x(div(cpu('wconnrate', 'klp-w1'), cpu('wconnrate', 'haproxy-nb1')))} | ${x(div(cpu('wh2', 'klp-w1'), cpu('wh2', 'haproxy-nb1')))} |`,
    `| CPU per unit, --workers 2 / nbthread 2 | ${x(div(cpu('wconnrate', 'klp-w2'), cpu('wconnrate', 'haproxy-nb2')))} | ${x(div(cpu('wh2', 'klp-w2'), cpu('wh2', 'haproxy-nb2')))} |`,
  ];
}

/** One line per goal, for the console. */
export function goalsConsole(d: RunData): string[] {
  return goals(d).map(
    (g) => `${status(g).replace(/\*/g, '')}: ${g.figure} ${g.goal}: ${g.measured}`,
  );
}
