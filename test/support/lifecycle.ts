import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';

/**
 * Helpers for the lifecycle tests: a `kube-lc-proxy run` child process that is waited for by its
 * own `ready` log line (two processes share the metrics address during a handover, so /readyz
 * may be answered by the other one), and a bounded TCP connect loop that counts refusals.
 */

/** A `kube-lc-proxy run` child process (dist/, via bin/). */
export interface RunProcess {
  readonly child: ChildProcess;
  readonly logs: Record<string, unknown>[];
  /** Wall-clock time the process was spawned (ms). */
  readonly spawnedAt: number;
  /** Resolves once the process logged `ready`; rejects if it exits first or `timeoutMs` passes. */
  ready(timeoutMs?: number): Promise<void>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process has exited. */
  exited(): Promise<number | null>;
}

/** Spawns `node bin/kube-lc-proxy.js run ...args`. Prefix with `wrap` (e.g. `ip netns exec`). */
export function spawnRun(args: readonly string[], wrap: readonly string[] = []): RunProcess {
  const argv = [process.execPath, 'bin/kube-lc-proxy.js', 'run', ...args];
  const spawnedAt = Date.now();
  const child = spawn(
    wrap[0] ?? argv[0]!,
    [...wrap.slice(1), ...(wrap.length > 0 ? argv : argv.slice(1))],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiters = new Set<() => void>();
  lines.on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of waiters) w();
  });
  const exit = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
  return {
    child,
    logs,
    spawnedAt,
    ready(timeoutMs = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (logs.some((l) => l.msg === 'ready')) done(undefined);
        };
        const timer = setTimeout(
          () => done(new Error(`not ready in ${timeoutMs} ms: ${stderr} ${JSON.stringify(logs)}`)),
          timeoutMs,
        );
        const onExit = (code: number | null): void =>
          done(new Error(`exited with ${code} before ready: ${stderr} ${JSON.stringify(logs)}`));
        const done = (err: Error | undefined): void => {
          clearTimeout(timer);
          waiters.delete(check);
          child.removeListener('exit', onExit);
          if (err) reject(err);
          else resolve();
        };
        waiters.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
    exited: () => exit,
  };
}

/** A TCP port that was free a moment ago on `host` (for an address two processes share). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  s.listen({ host, port: 0 });
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** What a connect loop saw. `errors` counts failures other than refusals, by code. */
export interface ConnectLoopResult {
  attempts: number;
  ok: number;
  refused: number;
  errors: Map<string, number>;
  /** Wall-clock times (ms) of refused attempts. */
  refusedAt: number[];
}

/**
 * Connects to host:port `ratePerSec` times a second for `durationMs` (bounded in count), each
 * time waiting for the backend's greeting line, then closing. A connect that the kernel refuses
 * counts as `refused`; any other failure (reset, timeout, no greeting) in `errors`.
 */
export async function connectLoop(
  host: string,
  port: number,
  ratePerSec: number,
  durationMs: number,
): Promise<ConnectLoopResult> {
  const result: ConnectLoopResult = {
    attempts: 0,
    ok: 0,
    refused: 0,
    errors: new Map(),
    refusedAt: [],
  };
  const total = Math.floor((ratePerSec * durationMs) / 1000);
  const interval = 1000 / ratePerSec;
  const start = Date.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = start + i * interval - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    result.attempts++;
    inflight.push(
      greet(host, port, 5_000).then(
        () => void result.ok++,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ECONNREFUSED') {
            result.refused++;
            result.refusedAt.push(Date.now());
          } else {
            const code = err.code ?? err.message;
            result.errors.set(code, (result.errors.get(code) ?? 0) + 1);
          }
        },
      ),
    );
  }
  await Promise.all(inflight);
  return result;
}

/** Connects, waits for one line from the server, closes. */
export function greet(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error('no greeting'), { code: 'ETIMEDOUT_GREETING' }));
    }, timeoutMs);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (!got.includes('\n')) return;
      clearTimeout(timer);
      s.destroy();
      resolve();
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('close', () => {
      clearTimeout(timer);
      reject(Object.assign(new Error('closed before the greeting'), { code: 'ECLOSED' }));
    });
  });
}
