/**
 * How to spread new connections over worker threads (issue 11): per-worker SO_REUSEPORT
 * listeners, or one accepting thread that transfers each accepted socket to a worker. Self-
 * contained (nothing from src/), on 127.0.77.1, with W worker threads in a measured process that
 * is neither the load generator nor this orchestrating process:
 *
 * - `reuseport`: every worker listens on the same port with `reusePort: true`; the kernel picks
 *   the worker by a hash of the 4-tuple.
 * - `transfer`: the main thread accepts (`pauseOnConnect`) and moves each socket to a worker,
 *   round robin, in the transferList of `postMessage()` (Node 26).
 * - `transfer-least`: as `transfer`, but to the worker with the fewest sockets handed over and not
 *   yet answered (a count in shared memory), round robin among ties: balancing by load.
 * - `server-transfer`: the main thread moves its one listening `net.Server` to worker 0 (a
 *   listener lives on one event loop, so this does not spread: shown for the record).
 *
 * A worker answers each connection as a tiny server would: it writes a short greeting and ends.
 * The load generator (a child process) opens short connections, a bounded number in flight, and
 * times connect() to the greeting. Measured: connections/s, each worker's share, CPU of the
 * measured process (all threads, and its main thread alone) per 1,000 connections, p50/p99 of
 * connect-to-greeting, and the split of 40 connections opened one after another. Then, with
 * P listening ports (one per Service port; W × P listeners for `reuseport`): time to bind, file
 * descriptors and RSS, and the connection rate on one of those ports.
 *
 *   node_modules/.bin/node bench/accept-models.ts [--runs 3] [--workers 2] [--conns 20000]
 *     [--inflight 64] [--seconds 10] [--ports 9000]
 *     [--models reuseport,transfer,transfer-least,server-transfer]
 *     [--scale-models reuseport,transfer] [--slow-us 0] [--main-stall-ms 0]
 *
 * `--models none` or `--scale-models none` skips that part. `--slow-us N` makes worker 0 burn N µs
 * of CPU per connection, to see which model lets a slow worker keep its share. `--main-stall-ms N`
 * keeps the measured process's main thread busy N ms every second (its other work in the proxy).
 *
 * Runs the models interleaved (one run of each, then the next round), prints each run and a
 * Markdown table of medians. Every load is bounded in count and in time.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { cpus, loadavg, release } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, threadId, Worker, workerData } from 'node:worker_threads';

type Model = 'reuseport' | 'transfer' | 'transfer-least' | 'server-transfer';
const MODELS: readonly Model[] = ['reuseport', 'transfer', 'transfer-least', 'server-transfer'];
const HOST = '127.0.77.1';
/** Ports below the ephemeral range (32768-60999 here), so binding thousands takes none of it. */
const PORT_BASE = 20_000;
const GREETING = Buffer.from('hello\n');
const SELF = fileURLToPath(import.meta.url);
const TICK_S = 0.01; // /proc/<pid>/stat counts CPU in USER_HZ (100 on Linux)

// ---------------------------------------------------------------------------------------------
// Worker thread: answers connections, from its own listeners or from transferred sockets.

interface WorkerInit {
  readonly index: number;
  /** Connections answered, per worker. */
  readonly counts: Int32Array;
  /** Worker 0 burns this much CPU per connection (a slow worker), in microseconds. */
  readonly slowUs: number;
}

/** A connection answered like a tiny server: greeting, end. Reads on, so the client's FIN frees it. */
function answer(init: WorkerInit, s: Socket): void {
  if (init.index === 0 && init.slowUs > 0) {
    const until = performance.now() + init.slowUs / 1000;
    while (performance.now() < until);
  }
  Atomics.add(init.counts, init.index, 1);
  s.on('error', () => {});
  s.resume();
  s.end(GREETING);
}

/** Binds one listener per port; resolves with undefined where the bind failed. */
function listenAll(
  ports: readonly number[],
  reusePort: boolean,
  onConn: (s: Socket) => void,
): Promise<(Server | undefined)[]> {
  // pauseOnConnect: a socket is transferable only while nothing has read from it (and the
  // proxy's own listeners pause too: they read once the dial is done).
  return Promise.all(
    ports.map(
      (port) =>
        new Promise<Server | undefined>((resolve) => {
          const srv = createServer({ pauseOnConnect: true }, onConn);
          srv.once('error', () => resolve(undefined));
          srv.listen({ host: HOST, port, reusePort, backlog: 4096 }, () => resolve(srv));
        }),
    ),
  );
}

function workerMain(init: WorkerInit): void {
  const port = parentPort;
  if (port === null) return;
  const onConn = (s: Socket): void => answer(init, s);
  port.on('message', (m: { type: string; ports?: number[]; socket?: Socket; server?: Server }) => {
    if (m.type === 'socket' && m.socket !== undefined) onConn(m.socket);
    else if (m.type === 'listen' && m.ports !== undefined) {
      void listenAll(m.ports, true, onConn).then((servers) =>
        port.postMessage({ type: 'listened', failed: servers.filter((s) => !s).length }),
      );
    } else if (m.type === 'server' && m.server !== undefined) {
      m.server.on('connection', onConn);
      port.postMessage({ type: 'adopted', threadId });
    }
  });
  port.postMessage({ type: 'up' });
}

// ---------------------------------------------------------------------------------------------
// Measured process: W workers and, for `transfer`, the accepting main thread.

async function serveMain(model: Model, w: number, slowUs: number, stallMs: number): Promise<void> {
  if (stallMs > 0) {
    // The main thread's other work (a table build, a scrape): busy for stallMs every second.
    setInterval(() => {
      const until = performance.now() + stallMs;
      while (performance.now() < until);
    }, 1000).unref();
  }
  const counts = new Int32Array(new SharedArrayBuffer(4 * w));
  const sent = new Array<number>(w).fill(0);
  const workers: Worker[] = [];
  const send = (m: unknown): void => void process.send?.(m);
  const next = (wk: Worker, type: string): Promise<{ failed?: number }> =>
    new Promise((resolve) => {
      const on = (m: { type: string; failed?: number }): void => {
        if (m.type !== type) return;
        wk.off('message', on);
        resolve(m);
      };
      wk.on('message', on);
    });
  for (let i = 0; i < w; i++) {
    const wk = new Worker(SELF, { workerData: { index: i, counts, slowUs } satisfies WorkerInit });
    workers.push(wk);
    await next(wk, 'up');
  }
  let rr = 0;
  let transferErrors = 0;
  const leastPending = (): number => {
    let best = rr++ % w;
    let min = Infinity;
    for (let j = 0; j < w; j++) {
      const i = (best + j) % w;
      const pending = (sent[i] as number) - Atomics.load(counts, i);
      if (pending < min) [min, best] = [pending, i];
    }
    return best;
  };
  const transfer = (s: Socket): void => {
    const i = model === 'transfer-least' ? leastPending() : rr++ % w;
    const wk = workers[i] as Worker;
    sent[i] = (sent[i] as number) + 1;
    try {
      // A net.Socket is transferable in Node 26; the type of transferList does not say so yet.
      wk.postMessage({ type: 'socket', socket: s }, [s as never]);
    } catch {
      transferErrors++; // ERR_WORKER_HANDLE_NOT_TRANSFERABLE (reset before we got to it)
      s.destroy();
    }
  };
  send({ type: 'up' });
  process.on('message', async (m: { type: string; first?: number; n?: number }) => {
    if (m.type === 'bind' && m.first !== undefined && m.n !== undefined) {
      const ports = Array.from({ length: m.n }, (_, i) => (m.first as number) + i);
      const t0 = performance.now();
      let failed = 0;
      if (model === 'reuseport') {
        const answers = workers.map((wk) => next(wk, 'listened'));
        for (const wk of workers) wk.postMessage({ type: 'listen', ports });
        for (const a of await Promise.all(answers)) failed += a.failed ?? 0;
      } else if (model === 'transfer' || model === 'transfer-least') {
        const servers = await listenAll(ports, false, transfer);
        for (const srv of servers) srv?.on('error', () => {});
        failed = servers.filter((s) => !s).length;
      } else {
        const [srv] = await listenAll(ports.slice(0, 1), false, () => {});
        if (srv === undefined) failed = 1;
        else {
          srv.removeAllListeners('connection');
          const adopted = next(workers[0] as Worker, 'adopted');
          (workers[0] as Worker).postMessage({ type: 'server', server: srv }, [srv as never]);
          await adopted;
        }
      }
      send({ type: 'bound', ms: performance.now() - t0, failed });
    } else if (m.type === 'stats') {
      send({ type: 'stats', counts: Array.from(counts), transferErrors });
    } else if (m.type === 'exit') {
      await Promise.all(workers.map((wk) => wk.terminate()));
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Load generator (its own process): N short connections, `inflight` at a time, bounded in time.

interface LoadResult {
  readonly done: number;
  readonly errors: number;
  readonly seconds: number;
  readonly p50ms: number;
  readonly p99ms: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function load(port: number, conns: number, inflight: number, seconds: number) {
  return new Promise<LoadResult>((resolve) => {
    const lat = new Float64Array(conns);
    let started = 0;
    let done = 0;
    let errors = 0;
    let running = 0;
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    const finish = (): void => {
      const sorted = lat.slice(0, done).sort();
      resolve({
        done,
        errors,
        seconds: (performance.now() - t0) / 1000,
        p50ms: percentile(sorted, 0.5),
        p99ms: percentile(sorted, 0.99),
      });
    };
    const one = (): void => {
      started++;
      running++;
      const c0 = performance.now();
      let got = false;
      const s = connect({ host: HOST, port });
      s.on('data', () => {
        if (!got) lat[done++] = performance.now() - c0;
        got = true;
      });
      s.on('end', () => s.end());
      s.on('error', () => {});
      // A connection that never gets its greeting must not hold the run past its bound.
      s.setTimeout(seconds * 1000, () => s.destroy());
      s.on('close', () => {
        if (!got) errors++;
        running--;
        if (started < conns && performance.now() < deadline) one();
        else if (running === 0) finish();
      });
    };
    for (let i = 0; i < Math.min(inflight, conns); i++) one();
  });
}

// ---------------------------------------------------------------------------------------------
// Orchestrator: starts the measured process and the load, reads /proc, prints the results.

interface Opts {
  runs: number;
  workers: number;
  conns: number;
  inflight: number;
  seconds: number;
  ports: number;
  slowUs: number;
  stallMs: number;
  models: Model[];
  scaleModels: Model[];
}

function parseOpts(argv: readonly string[]): Opts {
  const o: Opts = {
    runs: 3,
    workers: 2,
    conns: 20_000,
    inflight: 64,
    seconds: 10,
    ports: 9_000,
    slowUs: 0,
    stallMs: 0,
    models: [...MODELS],
    scaleModels: ['reuseport', 'transfer'],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1] ?? '';
    const models = (): Model[] => {
      if (v === 'none') return [];
      const ms = v.split(',').filter((x): x is Model => (MODELS as string[]).includes(x));
      if (ms.length === 0) throw new Error(`${k}: one or more of ${MODELS.join(',')}`);
      return ms;
    };
    const num = (min = 1): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min)
        throw new Error(`${k}: a n integer of at least ${min}, not ${v}`);
      return n;
    };
    if (k === '--runs') o.runs = num();
    else if (k === '--workers') o.workers = num();
    else if (k === '--conns') o.conns = num();
    else if (k === '--inflight') o.inflight = num();
    else if (k === '--seconds') o.seconds = num();
    else if (k === '--ports') o.ports = num();
    else if (k === '--slow-us') o.slowUs = num(0);
    else if (k === '--main-stall-ms') o.stallMs = num(0);
    else if (k === '--models') o.models = models();
    else if (k === '--scale-models') o.scaleModels = models();
    else throw new Error(`unknown option ${k}`);
  }
  if (PORT_BASE + o.ports + 2 * o.runs * MODELS.length >= 32_768)
    throw new Error('--ports: too many for the range below 32768');
  return o;
}

/** CPU seconds (user + system) of a whole process, and of its main thread alone. */
function cpuOf(pid: number): { all: number; main: number } {
  const ticks = (path: string): number => {
    const stat = readFileSync(path, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // fields 14 and 15 (utime, stime) of proc(5)
  };
  return {
    all: ticks(`/proc/${pid}/stat`) * TICK_S,
    main: ticks(`/proc/${pid}/task/${pid}/stat`) * TICK_S,
  };
}

function memOf(pid: number): { fds: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { fds: readdirSync(`/proc/${pid}/fd`).length, rssMiB: rssKiB / 1024 };
}

function reply<T>(child: ChildProcess, type: string, msg?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${type}' within 120 s`)), 120_000);
    const on = (m: { type: string }): void => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
    if (msg !== undefined) child.send(msg as object);
  });
}

async function runLoad(port: number, conns: number, inflight: number, seconds: number) {
  const child = fork(SELF, [
    'load',
    String(port),
    String(conns),
    String(inflight),
    String(seconds),
  ]);
  try {
    const r = await reply<{ result: LoadResult }>(child, 'result');
    return r.result;
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

interface RunResult {
  model: Model;
  ports: number;
  bindMs: number;
  bindFailed: number;
  fdsBefore: number;
  fdsAfter: number;
  rssBefore: number;
  rssAfter: number;
  connsPerS: number;
  done: number;
  errors: number;
  p50ms: number;
  p99ms: number;
  cpuPer1k: number;
  mainCpuPer1k: number;
  shares: number[];
  seq40: number[];
  transferErrors: number;
  fdsEnd: number;
}

async function oneRun(model: Model, ports: number, first: number, o: Opts): Promise<RunResult> {
  const child = fork(SELF, [
    'serve',
    model,
    String(o.workers),
    String(o.slowUs),
    String(o.stallMs),
  ]);
  const pid = child.pid as number;
  try {
    await reply(child, 'up');
    const before = memOf(pid);
    const bound = await reply<{ ms: number; failed: number }>(child, 'bound', {
      type: 'bind',
      first,
      n: ports,
    });
    const after = memOf(pid);
    const stats = (): Promise<{ counts: number[]; transferErrors: number }> =>
      reply(child, 'stats', { type: 'stats' });
    // Warm up (JIT, pools), then the split of 40 connections opened one after another.
    await runLoad(first, 1_000, o.inflight, o.seconds);
    const s0 = await stats();
    await runLoad(first, 40, 1, o.seconds);
    const s1 = await stats();
    const cpu0 = cpuOf(pid);
    const r = await runLoad(first, o.conns, o.inflight, o.seconds);
    const cpu1 = cpuOf(pid);
    const s2 = await stats();
    const per1k = (sec: number): number => (sec / Math.max(1, r.done)) * 1000;
    const delta = s2.counts.map((c, i) => c - (s1.counts[i] ?? 0));
    const total = delta.reduce((a, b) => a + b, 0);
    return {
      model,
      ports,
      bindMs: bound.ms,
      bindFailed: bound.failed,
      fdsBefore: before.fds,
      fdsAfter: after.fds,
      rssBefore: before.rssMiB,
      rssAfter: after.rssMiB,
      connsPerS: r.done / r.seconds,
      done: r.done,
      errors: r.errors,
      p50ms: r.p50ms,
      p99ms: r.p99ms,
      cpuPer1k: per1k(cpu1.all - cpu0.all),
      mainCpuPer1k: per1k(cpu1.main - cpu0.main),
      shares: delta.map((d) => d / Math.max(1, total)),
      seq40: s1.counts.map((c, i) => c - (s0.counts[i] ?? 0)),
      transferErrors: s2.transferErrors,
      fdsEnd: memOf(pid).fds,
    };
  } finally {
    child.send({ type: 'exit' });
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(undefined);
      }, 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve(undefined);
      });
    });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const pct = (xs: readonly number[]): string => xs.map((x) => (x * 100).toFixed(0)).join('/');

function table(rows: readonly RunResult[][], scale: boolean): string {
  const out: string[] = [];
  if (scale) {
    out.push(
      '| model | ports | listeners | bind time (ms) | fds after bind | RSS before / after bind (MiB) | conn/s | CPU s per 1k conns | main thread CPU s per 1k |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
  } else {
    out.push(
      '| model | conn/s | worker shares % (median run) | max share % | 40 one after another | CPU s per 1k conns (all threads) | main thread CPU s per 1k | p50 / p99 connect-to-greeting (ms) | errors |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
  }
  for (const runs of rows) {
    const r0 = runs[0] as RunResult;
    const m = (k: (r: RunResult) => number): number => median(runs.map(k));
    const byRate = [...runs].sort((a, b) => a.connsPerS - b.connsPerS);
    const mid = byRate[Math.floor(byRate.length / 2)] as RunResult;
    if (scale) {
      const listeners = r0.model === 'reuseport' ? r0.ports * (r0.shares.length || 1) : r0.ports;
      out.push(
        `| ${r0.model} | ${r0.ports} | ${listeners} | ${m((r) => r.bindMs).toFixed(0)} | ${m((r) => r.fdsAfter)} | ${f1(m((r) => r.rssBefore))} / ${f1(m((r) => r.rssAfter))} | ${m((r) => r.connsPerS).toFixed(0)} | ${f2(m((r) => r.cpuPer1k))} | ${f2(m((r) => r.mainCpuPer1k))} |`,
      );
    } else {
      out.push(
        `| ${r0.model} | ${m((r) => r.connsPerS).toFixed(0)} | ${pct(mid.shares)} | ${(m((r) => Math.max(...r.shares)) * 100).toFixed(0)} | ${runs.map((r) => r.seq40.join('/')).join(', ')} | ${f2(m((r) => r.cpuPer1k))} | ${f2(m((r) => r.mainCpuPer1k))} | ${f2(m((r) => r.p50ms))} / ${f2(m((r) => r.p99ms))} | ${runs.reduce((a, r) => a + r.errors + r.transferErrors, 0)} |`,
      );
    }
  }
  return out.join('\n');
}

async function orchestrate(o: Opts): Promise<void> {
  const uptime = (): string => loadavg().map(f2).join(' ');
  console.log(
    `# accept models: ${new Date().toISOString()}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}`,
  );
  console.log(
    `workers ${o.workers}${o.slowUs > 0 ? ` (worker 0 burns ${o.slowUs} µs per connection)` : ''}${o.stallMs > 0 ? `, main thread busy ${o.stallMs} ms every second` : ''}, ${o.conns} connections, ${o.inflight} in flight, at most ${o.seconds} s per load, ${o.runs} runs; load average before: ${uptime()}`,
  );
  let k = 0;
  const small = new Map<Model, RunResult[]>();
  const large = new Map<Model, RunResult[]>();
  for (let round = 0; round < o.runs; round++) {
    for (const model of o.models) {
      const r = await oneRun(model, 1, PORT_BASE + k++, o);
      console.log(JSON.stringify(r));
      small.set(model, [...(small.get(model) ?? []), r]);
    }
  }
  for (let round = 0; round < o.runs; round++) {
    for (const model of o.scaleModels) {
      // Each run loads a port of its own: no 4-tuple left in TIME_WAIT by an earlier run.
      const r = await oneRun(model, o.ports, PORT_BASE + k++, o);
      console.log(JSON.stringify(r));
      large.set(model, [...(large.get(model) ?? []), r]);
    }
  }
  console.log(`load average after: ${uptime()}\n`);
  if (small.size > 0) {
    console.log(`One listening port, medians of ${o.runs} runs:\n`);
    console.log(table([...small.values()], false) + '\n');
  }
  if (large.size > 0) {
    console.log(`${o.ports} listening ports, medians of ${o.runs} runs:\n`);
    console.log(table([...large.values()], true));
  }
}

// ---------------------------------------------------------------------------------------------

if (!isMainThread) {
  workerMain(workerData as WorkerInit);
} else if (process.argv[2] === 'serve') {
  const model = process.argv[3] as Model;
  if (!MODELS.includes(model)) throw new Error(`serve: unknown model ${model}`);
  const [w, slowUs, stallMs] = process.argv.slice(4).map(Number) as [number, number, number];
  void serveMain(model, w, slowUs, stallMs);
} else if (process.argv[2] === 'load') {
  const [port, conns, inflight, seconds] = process.argv.slice(3).map(Number) as [
    number,
    number,
    number,
    number,
  ];
  void load(port, conns, inflight, seconds).then((result) => {
    process.send?.({ type: 'result', result }, () => process.exit(0));
  });
} else {
  orchestrate(parseOpts(process.argv.slice(2))).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
