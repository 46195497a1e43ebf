import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** A `kube-lc-proxy run` child process, started from bin/ (dist is built by the global setup). */
export interface ProxyProcess {
  readonly child: ChildProcess;
  /** http://127.0.0.1:port of its metrics server. */
  readonly metricsUrl: string;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Fetches /metrics and returns the value of one series (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Sums every series of `name` whose labels include `labels`. */
  metricSum(name: string, labels?: Record<string, string>): Promise<number>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `--workers` for test proxies: `KLP_TEST_WORKERS` when set (CI runs the suite once with the
 * default, the CPUs the machine may use, and once with 2), unless the test gives its own.
 */
function workersArgs(args: readonly string[]): string[] {
  const n = process.env['KLP_TEST_WORKERS'];
  if (n === undefined || n === '' || n === '0' || args.includes('--workers')) return [];
  return ['--workers', n];
}

export async function startProxyProcess(
  args: string[],
  timeoutMs = 15_000,
  metricsAddress = '127.0.0.1:0',
): Promise<ProxyProcess> {
  const child = spawn(
    process.execPath,
    [
      'bin/kube-lc-proxy.js',
      'run',
      '--metrics-address',
      metricsAddress,
      ...workersArgs(args),
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `proxy not ready in ${timeoutMs} ms: ${stderr} ${JSON.stringify(logs)} ${process.execPath}`,
          ),
        ),
      timeoutMs,
    );
    let metrics: string | undefined;
    lines.on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(rec);
      if (rec.msg === 'metrics listening') metrics = String(rec.address);
      if (rec.msg === 'kube-lc-proxy running' && metrics !== undefined) {
        clearTimeout(timer);
        resolve(metrics);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`proxy exited with ${code} before it was ready: ${stderr}`));
    });
  });
  let address: string;
  try {
    address = await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const metricsUrl = `http://${address}`;
  // "running" is logged once the source started; the listeners are bound once /readyz says so.
  const deadline = Date.now() + timeoutMs;
  while (
    (await fetch(`${metricsUrl}/readyz`).then(
      (r) => r.status,
      () => 0,
    )) !== 200
  ) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`proxy not ready (/readyz) in ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const scrape = async (): Promise<string> => (await fetch(`${metricsUrl}/metrics`)).text();
  const matching = (text: string, name: string, labels: Record<string, string>): number[] => {
    const out: number[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
      out.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
    }
    return out;
  };
  return {
    child,
    metricsUrl,
    logs,
    async metric(name, labels = {}) {
      return matching(await scrape(), name, labels)[0] ?? 0;
    },
    async metricSum(name, labels = {}) {
      return matching(await scrape(), name, labels).reduce((a, b) => a + b, 0);
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
