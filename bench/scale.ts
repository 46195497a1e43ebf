/**
 * Scale bench: how the proxy behaves with many idle Service ports (issue 13). For each size it
 * writes a manifests file of N Services with one port and 3 endpoints each, starts the real CLI
 * (`run --source file:... --intercept none`, each Service on its own 127.x.y.z address, so no
 * root is needed), and prints: time to ready, time to apply the table, RSS at rest, open file
 * descriptors, series and bytes per /metrics scrape (default, and with --metrics-per-endpoint
 * for the smallest size), and the cost of one endpoint change (an edit of the manifests file
 * that turns one endpoint not ready: CPU time and wall time until the change is applied).
 *
 *   node_modules/.bin/node bench/scale.ts [SIZES...]     # default 1000 5000 10000
 *   node_modules/.bin/node bench/scale.ts --render       # the last run again, from bench/out/
 *
 * Also runs the micro-benchmarks of bench/pick.ts. Writes bench/out/scale/results.json and the
 * "Scale" section of docs/benchmarks.md (SCALE_WRITE_DOC=0: print it only). Needs dist/ built.
 * Nothing is proxied: the endpoints are 10.x addresses that are never dialled.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, release } from 'node:os';
import { createInterface } from 'node:readline';
import { microBenchmarks } from './pick.ts';

const OUT = 'bench/out/scale';
const DOC = 'docs/benchmarks.md';
const NODE = process.execPath;
const METRICS_PORT = 19931;
/** Services use 127.BASE.x.y and up; clear of the demo (127.0.100.x) and the bench (127.0.88.x). */
const BASE = Number(process.env.SCALE_NET_BASE ?? 60);
/** Wait at rest after ready before RSS is read, so start-up garbage is collected. */
const REST_MS = Number(process.env.SCALE_REST_MS ?? 5_000);
const TIMEOUT_MS = 120_000;
const MALLOC_ENV = {
  // As the image runs it (Dockerfile); see docs/operations.md, "Memory allocator".
  MALLOC_ARENA_MAX: '1',
  MALLOC_TRIM_THRESHOLD_: '67108864',
  MALLOC_TOP_PAD_: '16777216',
};

/**
 * `none` (default): listeners on 127.x ClusterIPs, no root. `iptables`: run inside a fresh
 * network namespace by bench/scale-netns.sh (root): listeners on 0.0.0.0 and one REDIRECT rule
 * per Service port, as in a cluster.
 */
const INTERCEPT = process.env.SCALE_INTERCEPT === 'iptables' ? 'iptables' : 'none';

const clusterIP = (i: number): string =>
  INTERCEPT === 'iptables'
    ? `10.96.${(i >> 8) & 255}.${i & 255}`
    : `127.${BASE + (i >> 16)}.${(i >> 8) & 255}.${(i & 255) + 0}`;

/** A List of N Services (one port) and N EndpointSlices (3 endpoints each), as JSON. */
export function manifests(n: number, notReady = -1): string {
  const items: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const name = `svc-${i}`;
    items.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'scale', name },
      spec: {
        clusterIP: clusterIP(i),
        ports: [{ name: 'grpc', port: 8080, protocol: 'TCP' }],
      },
    });
    items.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        namespace: 'scale',
        name: `${name}-abcde`,
        labels: { 'kubernetes.io/service-name': name },
      },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
      endpoints: [1, 2, 3].map((k) => ({
        addresses: [`10.${(i >> 8) & 255}.${i & 255}.${k}`],
        conditions: { ready: !(i === 0 && k === notReady) },
        nodeName: `node-${k}`,
      })),
    });
  }
  return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items })}\n`;
}

function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: METRICS_PORT, path, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resident memory (KiB) and CPU time (ms, user + system) of `pid`. */
function proc(pid: number): { rssKib: number; cpuMs: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKib = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]);
  // Fields after the command name (which may hold spaces): utime is field 14, stime 15.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return { rssKib, cpuMs: (ticks * 1000) / 100, fds: readdirSync(`/proc/${pid}/fd`).length };
}

interface LogLine {
  time: number;
  msg: string;
  [k: string]: unknown;
}

interface Result {
  servicePorts: number;
  metricsPerEndpoint: boolean;
  nodeOptions: string;
  readyS: number;
  /** CPU time (user + system) the process had used when it answered ready: load-independent. */
  readyCpuS: number;
  /** From "service table applied" to the last listener bound. */
  applyS: number;
  rssMiB: number;
  rssAfterScrapeMiB: number;
  heapUsedMiB: number | undefined;
  fds: number;
  series: number;
  /** intercept iptables: mean duration of the syncs so far, and the rules written. */
  iptables?:
    | {
        syncS: number;
        syncs: number;
        rules: number;
        /** Distinct listener ports over the Service ports (from /debug/state). */
        ports?: number;
      }
    | undefined;
  scrapeBytes: number;
  scrapeMs: number;
  change: { wallMs: number; cpuMs: number } | undefined;
  /** Repetitions, and the range of ready time and RSS at rest over them (medians above). */
  reps: number;
  readyRange: [number, number];
  rssRange: [number, number];
}

/** Runs of one case: each figure is the median over `REPS` fresh processes. */
const REPS = Number(process.env.SCALE_REPS ?? 3);

const med = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function runCase(n: number, perEndpoint: boolean, nodeOptions = ''): Promise<Result> {
  const runs: Result[] = [];
  for (let i = 0; i < REPS; i++) runs.push(await runOne(n, perEndpoint, nodeOptions));
  const pick = (f: (r: Result) => number): number => med(runs.map(f));
  const changes = runs.flatMap((r) => (r.change === undefined ? [] : [r.change]));
  const first = runs[0] as Result;
  return {
    ...first,
    readyS: pick((r) => r.readyS),
    readyCpuS: pick((r) => r.readyCpuS),
    applyS: pick((r) => r.applyS),
    rssMiB: pick((r) => r.rssMiB),
    rssAfterScrapeMiB: pick((r) => r.rssAfterScrapeMiB),
    iptables:
      first.iptables === undefined
        ? undefined
        : {
            syncS: med(runs.map((r) => r.iptables?.syncS ?? NaN)),
            syncs: first.iptables.syncs,
            rules: first.iptables.rules,
            ports: first.iptables.ports,
          },
    fds: pick((r) => r.fds),
    series: pick((r) => r.series),
    scrapeBytes: pick((r) => r.scrapeBytes),
    scrapeMs: pick((r) => r.scrapeMs),
    change:
      changes.length === 0
        ? undefined
        : { wallMs: med(changes.map((c) => c.wallMs)), cpuMs: med(changes.map((c) => c.cpuMs)) },
    reps: runs.length,
    readyRange: [Math.min(...runs.map((r) => r.readyS)), Math.max(...runs.map((r) => r.readyS))],
    rssRange: [Math.min(...runs.map((r) => r.rssMiB)), Math.max(...runs.map((r) => r.rssMiB))],
  };
}

async function runOne(n: number, perEndpoint: boolean, nodeOptions = ''): Promise<Result> {
  mkdirSync(OUT, { recursive: true });
  const file = `${OUT}/manifests-${n}.json`;
  writeFileSync(file, manifests(n));
  const args = [
    'bin/kube-lc-proxy.js',
    'run',
    `--source=file:${file}`,
    `--intercept=${INTERCEPT}`,
    `--metrics-address=127.0.0.1:${METRICS_PORT}`,
    '--log-level=info',
    '--shutdown-grace=1s',
    // 10,000 Services make a file of about 4.4 MB, over the default limit.
    '--max-manifests-bytes=64Mi',
    ...(perEndpoint ? ['--metrics-per-endpoint'] : []),
  ];
  const t0 = performance.now();
  const child: ChildProcess = spawn(NODE, args, {
    env: { ...process.env, ...MALLOC_ENV, NODE_OPTIONS: nodeOptions },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logs: LogLine[] = [];
  const waiters: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    let l: LogLine;
    try {
      l = JSON.parse(line) as LogLine;
    } catch {
      return;
    }
    logs.push(l);
    for (const w of [...waiters]) {
      if (w.test(l)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  const waitLog = (test: (l: LogLine) => boolean, ms: number): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const found = logs.find(test);
      if (found !== undefined) return resolve(found);
      const timer = setTimeout(() => reject(new Error('log line not seen in time')), ms);
      waiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  const pid = child.pid as number;
  try {
    let readyS = NaN;
    let readyCpuS = NaN;
    for (;;) {
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`not ready after ${TIMEOUT_MS} ms`);
      if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}`);
      const r = await get('/readyz').catch(() => undefined);
      if (r?.status === 200) {
        readyS = (performance.now() - t0) / 1000;
        readyCpuS = proc(pid).cpuMs / 1000;
        break;
      }
      await sleep(20);
    }
    const applied = await waitLog((l) => l.msg === 'service table applied', 1000);
    const listening = logs.filter((l) => l.msg === 'service port listening');
    const lastBound = Math.max(...listening.map((l) => l.time));
    await sleep(REST_MS);
    const rest = proc(pid);
    const t1 = performance.now();
    const scrape = await get('/metrics');
    const scrapeMs = performance.now() - t1;
    const lines = scrape.body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const heapLine = lines.find((l) => l.startsWith('kube_lc_proxy_nodejs_heap_size_used_bytes'));
    const value = (name: string): number =>
      Number(lines.find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
    const syncs = value('kube_lc_proxy_iptables_syncs_total');
    let ports: number | undefined;
    if (INTERCEPT === 'iptables') {
      const state = JSON.parse((await get('/debug/state')).body) as {
        servicePorts: { listen: string | null }[];
      };
      ports = new Set(state.servicePorts.flatMap((p) => (p.listen === null ? [] : [p.listen])))
        .size;
    }
    const iptables =
      INTERCEPT === 'iptables'
        ? {
            syncS: value('kube_lc_proxy_iptables_sync_duration_seconds_sum') / syncs,
            syncs,
            rules: value('kube_lc_proxy_iptables_rules'),
            ports,
          }
        : undefined;
    await sleep(1000);
    const afterScrape = proc(pid);

    // One endpoint of svc-0 turns not ready: the file source reads and parses the whole file
    // again, the table builder rebuilds one Service, the proxier updates one balancer.
    const before = proc(pid).cpuMs;
    const tc = performance.now();
    writeFileSync(file, manifests(n, 2));
    let change: Result['change'];
    try {
      await waitLog(
        (l) => l.msg === 'endpoints changed' && l.servicePort === 'scale/svc-0:grpc',
        30_000,
      );
      const wallMs = performance.now() - tc;
      await sleep(500);
      change = { wallMs, cpuMs: proc(pid).cpuMs - before };
    } catch {
      change = undefined;
    }
    return {
      servicePorts: n,
      metricsPerEndpoint: perEndpoint,
      nodeOptions,
      readyS,
      readyCpuS,
      applyS: (lastBound - applied.time) / 1000,
      rssMiB: rest.rssKib / 1024,
      rssAfterScrapeMiB: afterScrape.rssKib / 1024,
      heapUsedMiB: heapLine === undefined ? undefined : Number(heapLine.split(' ').pop()) / 1048576,
      fds: rest.fds,
      series: lines.length,
      iptables,
      scrapeBytes: Buffer.byteLength(scrape.body),
      scrapeMs,
      change,
      reps: 1,
      readyRange: [readyS, readyS],
      rssRange: [rest.rssKib / 1024, rest.rssKib / 1024],
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const f1 = (v: number | undefined, d = 1): string => (v === undefined ? 'n/a' : v.toFixed(d));
const int = (v: number): string => v.toLocaleString('en');

/** The young-generation bound of the extra run (see docs/operations.md, "Many Service ports"). */
const SEMI = '--max-semi-space-size=4';

function machine(): string[] {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
  const memKib = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
  return [
    `CPU: ${cpu.trim()}, ${availableParallelism()} cores; ${(memKib / 1048576).toFixed(1)} GiB RAM`,
    `Kernel ${release()}; Node.js ${process.version}`,
  ];
}

interface IptablesRun {
  date: string;
  load: [string, string];
  results: Result[];
}

function iptablesRun(): IptablesRun | undefined {
  try {
    return JSON.parse(readFileSync(`${OUT}/results-iptables.json`, 'utf8')) as IptablesRun;
  } catch {
    return undefined;
  }
}

/** The rows of a run with intercept iptables (bench/scale-netns.sh), when there is one. */
function iptablesTable(): string[] {
  const saved = iptablesRun();
  if (saved === undefined) return [];
  return [
    `### With intercept iptables`,
    '',
    `Run by \`bench/scale-netns.sh\` on ${saved.date} (load average ${saved.load[0]} at the start, ${saved.load[1]} at the end): the same manifests with 10.96.x.y ClusterIPs, \`--intercept iptables\`, inside a fresh network namespace, so each Service port gets a listener on 0.0.0.0 and a REDIRECT rule, as in a cluster. "iptables sync" is the mean of \`kube_lc_proxy_iptables_sync_duration_seconds\` over the syncs done by the time of the scrape (one \`iptables-save\`, the plan, one \`iptables-restore\`). Medians of ${saved.results[0]?.reps ?? REPS} runs.`,
    '',
    '| Service ports | ready after | CPU time to ready | iptables sync | rules | distinct listener ports | RSS at rest | fds | series per scrape |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...saved.results.map(
      (r) =>
        `| ${int(r.servicePorts)} | ${f1(r.readyS, 2)} s | ${f1(r.readyCpuS, 2)} s | ${f1(r.iptables?.syncS, 3)} s (${r.iptables?.syncs ?? 'n/a'} syncs) | ${int(r.iptables?.rules ?? NaN)} | ${r.iptables?.ports === undefined ? 'n/a' : int(r.iptables.ports)} | ${f1(r.rssMiB)} MiB | ${int(r.fds)} | ${int(r.series)} |`,
    ),
    '',
    'Each Service port should have a listener port of its own: fewer distinct listener ports than rules means Service ports that share a port (two listeners on one port with SO_REUSEPORT, between which the kernel spreads the connections of both Services). The default `--proxy-port-range` (61000-65535) holds 4,536 ports, fewer than 10,000 Service ports.',
    '',
  ];
}

function section(
  results: Result[],
  micro: { markdown: string[]; pickNsAt10k: number },
  meta: { date: string; load: [string, string]; commit: string },
): string[] {
  const row = (r: Result): string =>
    `| ${int(r.servicePorts)} | ${r.metricsPerEndpoint ? '`--metrics-per-endpoint`' : 'default'}${r.nodeOptions === '' ? '' : `, \`${r.nodeOptions}\``} | ${f1(r.readyS, 2)} s (${f1(r.readyRange[0], 2)} - ${f1(r.readyRange[1], 2)}) | ${f1(r.readyCpuS, 2)} s | ${f1(r.applyS, 2)} s | ${f1(r.rssMiB)} MiB (${f1(r.rssRange[0])} - ${f1(r.rssRange[1])}) | ${f1(r.rssAfterScrapeMiB)} MiB | ${int(r.fds)} | ${int(r.series)} | ${int(r.scrapeBytes)} | ${f1(r.change?.wallMs, 0)} ms | ${f1(r.change?.cpuMs, 0)} ms |`;
  const ipt10k = iptablesRun()?.results.find((r) => r.servicePorts === 10_000);
  const at10k = results.find(
    (r) => r.servicePorts === 10_000 && !r.metricsPerEndpoint && r.nodeOptions === '',
  );
  const semi10k = results.find((r) => r.servicePorts === 10_000 && r.nodeOptions !== '');
  const goal = (what: string, value: string, bar: string, ok: boolean | undefined): string =>
    `| ${what} | ${value} | ${bar} | ${ok === undefined ? 'not measured' : ok ? 'met' : '**not met**'} |`;
  return [
    '<!-- scale:begin -->',
    '',
    '## Scale',
    '',
    `Generated by \`node_modules/.bin/node bench/scale.ts\` on ${meta.date} at commit ${meta.commit}; the section is kept as it is when \`bench/run.sh\` regenerates the rest of this page.`,
    '',
    '**The machine was shared with other work during this run** (load average ' +
      `${meta.load[0]} at the start, ${meta.load[1]} at the end, on ${availableParallelism()} cores): the times include waiting for a CPU and are upper bounds; judge the ready goal again on a quiet machine. Memory and series counts do not depend on the load.`,
    '',
    ...machine().map((l) => `- ${l}`),
    '',
    '### Goals (issue 13)',
    '',
    '| figure | measured | goal | status |',
    '| --- | ---: | ---: | --- |',
    goal(
      'RSS at rest, 10,000 Service ports',
      at10k === undefined
        ? 'n/a'
        : `${f1(at10k.rssMiB)} MiB (${semi10k === undefined ? '' : `${f1(semi10k.rssMiB)} MiB with \`${SEMI}\``})`,
      '≤ 150 MiB',
      at10k === undefined ? undefined : at10k.rssMiB <= 150,
    ),
    goal(
      'Time to ready, 10,000 Service ports',
      at10k === undefined
        ? 'n/a'
        : `${f1(at10k.readyS, 2)} s (CPU time to ready ${f1(at10k.readyCpuS, 2)} s)${ipt10k === undefined ? '' : `; intercept iptables: ${f1(ipt10k.readyS, 2)} s (CPU ${f1(ipt10k.readyCpuS, 2)} s)`}`,
      '≤ 3 s',
      at10k === undefined ? undefined : at10k.readyS <= 3 && (ipt10k?.readyS ?? 0) <= 3,
    ),
    goal(
      'Pick cost at 10,000 endpoints',
      `${f1(micro.pickNsAt10k / 1000, 2)} µs`,
      '≤ 1 µs',
      micro.pickNsAt10k <= 1000,
    ),
    goal(
      'Series at 10,000 idle Service ports',
      at10k === undefined ? 'n/a' : int(at10k.series),
      '≤ 2,000',
      at10k === undefined ? undefined : at10k.series <= 2000,
    ),
    '',
    '### Method',
    '',
    '- N Services with one port and 3 endpoints each (10.x addresses that are never dialled), in one manifests file (`kubectl get -o json` shape, a `List`). The proxy runs from the command line as the image runs it (its malloc settings), `--source file:... --intercept none --log-level info`: each Service listens on its own 127.x.y.z address, so no root and no iptables. With `--intercept iptables` each listener binds 0.0.0.0 on a kernel-chosen port instead and one `iptables-restore` writes the rules: that path is measured by `bench/scale-netns.sh` (below, when it has been run).',
    `- Each row is the median of ${results[0]?.reps ?? REPS} runs, each a fresh process` +
      ' (ready time and RSS at rest also give the range over them). No traffic. "Ready after" is from the start of the process to the first 200 from `/readyz`; "CPU time to ready" is the CPU time (user + system) the process had used by then, which waiting for a CPU on a busy machine does not change; "table applied in" is from the `service table applied` log line to the last `service port listening` one. RSS (`VmRSS`) and file descriptors are read 5 s after ready ("at rest"), then once more after one scrape of `/metrics`.',
    '- One endpoint change: the file is rewritten with one endpoint of one Service turned not ready; wall time until the proxy logs the change, and the CPU time the process used for it. This includes reading and parsing the whole file again (the file source does that for any edit), so it grows with the file; the part that follows the parse is measured alone below ("One endpoint change in a table of many Service ports").',
    `- The extra 10,000 row runs with \`NODE_OPTIONS=${SEMI}\`: V8 sizes its young generation from the memory it sees (here the whole ${(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]) / 1048576).toFixed(0)} GiB machine) and keeps what the start-up burst grew it to; see [operations.md](operations.md#many-service-ports).`,
    '',
    '### Results',
    '',
    '| Service ports | metrics | ready after | CPU time to ready | table applied in | RSS at rest | RSS after a scrape | fds | series per scrape | bytes per scrape | one endpoint change: wall | CPU |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(row),
    '',
    'Before this work (commit 6a83d2d, same bench and machine, the same day, one run each, at a load average of about 0.3 before the other work on the machine started; default metrics then being per endpoint): 1,000 Service ports ready after 0.79 s, 211 MiB at rest, 22,118 series (1.99 MB) per scrape; 10,000 ready after 4.41 s, 816 MiB at rest (1,017 MiB after one scrape), 220,118 series (20.1 MB) per scrape, and one endpoint change took 3.8 s of wall time and 4.7 s of CPU.',
    '',
    ...iptablesTable(),
    '### Beside kube-proxy',
    '',
    '- Memory: kube-proxy in iptables mode was measured at about 20 KB of Go heap per Service: 22 MB allocated for 1,000 Services of 3 endpoints ([kubernetes/kubernetes#14118](https://github.com/kubernetes/kubernetes/issues/14118), 2015, `runtime.MemStats.Alloc`, not RSS). Here the RSS grows by about ' +
      (() => {
        const a = results.find((r) => r.servicePorts === 1000 && !r.metricsPerEndpoint);
        return at10k === undefined || a === undefined
          ? 'n/a'
          : `${f1(((at10k.rssMiB - a.rssMiB) * 1024) / 9000)} KiB`;
      })() +
      ' per Service port from 1,000 to 10,000 (listener socket, balancer, table entry and the V8 heap it takes to build them), over a base of about 90 MiB for Node.js and the modules.',
    "- Sync time: kube-proxy's nftables mode took 2 min 13 s to 13 min 15 s per sync at 5,006 Services and 250,011 endpoints ([kubernetes/kubernetes#135639](https://github.com/kubernetes/kubernetes/issues/135639)); after its partial-sync work, adding one Service to 10,000 took about 141 ms ([kubernetes/kubernetes#126013](https://github.com/kubernetes/kubernetes/pull/126013)). kube-lc-proxy writes one REDIRECT rule per Service port whatever the number of endpoints, and an endpoint change touches no rule.",
    "- Metrics: kube-proxy exports a few dozen series whatever the number of Services. kube-lc-proxy's default now exports node-level series plus a small constant per Service port in use.",
    '',
    ...micro.markdown,
    '',
    'Picks use an indexed heap: O(log n), so from 10 to 10,000 endpoints (3 decades) the cost should stay within a small factor; on a shared machine single rows move by tens of percent between runs. A table change rebuilds only the Services it touches; the map copy and the walk that finds the changed ports (both cheap) are the only parts that grow with the table. On a Service port with 10,000 endpoints one slice update costs the merge of all its slices and a comparison of its endpoint list: O(endpoints of that port), not O(1).',
    '',
    '<!-- scale:end -->',
  ];
}

interface Saved {
  results: Result[];
  micro: { markdown: string[]; pickNsAt10k: number };
  meta: { date: string; load: [string, string]; commit: string };
}

async function measure(sizes: number[]): Promise<Saved> {
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const date = new Date().toISOString().replace(/T(\d\d:\d\d).*/, ' $1 UTC');
  const results: Result[] = [];
  for (const [i, n] of sizes.entries()) {
    results.push(await runCase(n, false));
    console.error(JSON.stringify(results.at(-1)));
    if (i === 0) results.push(await runCase(n, true));
    if (n === 10_000) results.push(await runCase(n, false, SEMI));
    console.error(JSON.stringify(results.at(-1)));
  }
  const micro = microBenchmarks('###');
  const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // Not a git checkout.
  }
  const saved: Saved = { results, micro, meta: { date, load: [load0, load1], commit } };
  writeFileSync(`${OUT}/results.json`, `${JSON.stringify(saved, null, 1)}\n`);
  return saved;
}

/** `bench/scale.ts [SIZES...]` measures; `bench/scale.ts --render` re-renders the last run. */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (INTERCEPT === 'iptables') {
    const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const date = new Date().toISOString().replace(/T(\d\d:\d\d).*/, ' $1 UTC');
    const results: Result[] = [];
    for (const n of args.length === 0 ? [1000, 5000, 10000] : args.map(Number)) {
      results.push(await runCase(n, false));
      console.error(JSON.stringify(results.at(-1)));
    }
    const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const out = { date, load: [load0, load1], results };
    writeFileSync(`${OUT}/results-iptables.json`, `${JSON.stringify(out, null, 1)}\n`);
    console.log(iptablesTable().join('\n'));
    console.log(
      'Run `node_modules/.bin/node bench/scale.ts --render` to put these rows in the doc.',
    );
    return;
  }
  const saved =
    args[0] === '--render'
      ? (JSON.parse(readFileSync(`${OUT}/results.json`, 'utf8')) as Saved)
      : await measure(args.length === 0 ? [1000, 5000, 10000] : args.map(Number));
  const text = section(saved.results, saved.micro, saved.meta).join('\n');
  console.log(text);
  if (process.env.SCALE_WRITE_DOC !== '0') {
    const doc = readFileSync(DOC, 'utf8');
    const re = /<!-- scale:begin -->[\s\S]*<!-- scale:end -->/;
    writeFileSync(DOC, re.test(doc) ? doc.replace(re, text) : `${doc.trimEnd()}\n\n${text}\n`);
  }
}

if (import.meta.main) await main();
