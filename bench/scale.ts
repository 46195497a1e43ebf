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
 *
 * Writes bench/out/scale/results.json and prints a Markdown table for docs/benchmarks.md.
 * Nothing is proxied: the endpoints are 10.x addresses that are never dialled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createInterface } from 'node:readline';

const OUT = 'bench/out/scale';
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

const clusterIP = (i: number): string =>
  `127.${BASE + (i >> 16)}.${(i >> 8) & 255}.${(i & 255) + 0}`;

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
  readyS: number;
  /** From "service table applied" to the last listener bound. */
  applyS: number;
  rssMiB: number;
  rssAfterScrapeMiB: number;
  heapUsedMiB: number | undefined;
  fds: number;
  series: number;
  scrapeBytes: number;
  scrapeMs: number;
  change: { wallMs: number; cpuMs: number } | undefined;
}

async function runOne(n: number, perEndpoint: boolean): Promise<Result> {
  mkdirSync(OUT, { recursive: true });
  const file = `${OUT}/manifests-${n}.json`;
  writeFileSync(file, manifests(n));
  const args = [
    'bin/kube-lc-proxy.js',
    'run',
    `--source=file:${file}`,
    '--intercept=none',
    `--metrics-address=127.0.0.1:${METRICS_PORT}`,
    '--log-level=info',
    '--shutdown-grace=1s',
    // 10,000 Services make a file of about 4.4 MB, over the default limit.
    '--max-manifests-bytes=64Mi',
    ...(perEndpoint ? ['--metrics-per-endpoint'] : []),
  ];
  const t0 = performance.now();
  const child: ChildProcess = spawn(NODE, args, {
    env: { ...process.env, ...MALLOC_ENV },
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
    for (;;) {
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`not ready after ${TIMEOUT_MS} ms`);
      if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}`);
      const r = await get('/readyz').catch(() => undefined);
      if (r?.status === 200) {
        readyS = (performance.now() - t0) / 1000;
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
      readyS,
      applyS: (lastBound - applied.time) / 1000,
      rssMiB: rest.rssKib / 1024,
      rssAfterScrapeMiB: afterScrape.rssKib / 1024,
      heapUsedMiB: heapLine === undefined ? undefined : Number(heapLine.split(' ').pop()) / 1048576,
      fds: rest.fds,
      series: lines.length,
      scrapeBytes: Buffer.byteLength(scrape.body),
      scrapeMs,
      change,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const f1 = (v: number | undefined, d = 1): string => (v === undefined ? 'n/a' : v.toFixed(d));

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number);
  if (sizes.length === 0) sizes.push(1000, 5000, 10000);
  const results: Result[] = [];
  for (const [i, n] of sizes.entries()) {
    results.push(await runOne(n, false));
    if (i === 0 && process.env.SCALE_PER_ENDPOINT !== '0') results.push(await runOne(n, true));
    console.error(JSON.stringify(results.at(-1)));
  }
  writeFileSync(`${OUT}/results.json`, `${JSON.stringify(results, null, 1)}\n`);
  console.log(
    '| Service ports | metrics | ready after | table applied in | RSS at rest | RSS after a scrape | V8 heap used | fds | series per scrape | bytes per scrape | one endpoint change: wall | CPU |',
  );
  console.log(
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of results) {
    console.log(
      `| ${r.servicePorts.toLocaleString('en')} | ${r.metricsPerEndpoint ? '--metrics-per-endpoint' : 'default'} | ${f1(r.readyS, 2)} s | ${f1(r.applyS, 2)} s | ${f1(r.rssMiB)} MiB | ${f1(r.rssAfterScrapeMiB)} MiB | ${f1(r.heapUsedMiB)} MiB | ${r.fds.toLocaleString('en')} | ${r.series.toLocaleString('en')} | ${r.scrapeBytes.toLocaleString('en')} | ${f1(r.change?.wallMs, 0)} ms | ${f1(r.change?.cpuMs, 0)} ms |`,
    );
  }
}

if (import.meta.main) await main();
