/**
 * The real CLI (`bin/kube-lc-proxy.js`, dist/ built by the global setup) run inside a node
 * namespace, and its observability endpoints read from inside that namespace (a one-shot
 * fixtures/http-get.ts per request: the metrics address is the node's loopback, which the
 * namespace the tests run in cannot reach).
 */
import { fileURLToPath } from 'node:url';
import type { DebugState } from '../../../src/metrics/state.js';
import type { ExitInfo, Harness, JsonEvent, NsProcess } from '../harness/index.js';

/** The CLI entry point. */
export const PROXY_BIN = fileURLToPath(new URL('../../../bin/kube-lc-proxy.js', import.meta.url));
/** Path of the HTTP GET fixture. */
export const HTTP_GET_PROGRAM = fileURLToPath(new URL('../fixtures/http-get.ts', import.meta.url));

/** The answer of one GET, or why there was none. */
export type HttpAnswer =
  | { readonly status: number; readonly body: string }
  | { readonly status: undefined; readonly error: string; readonly code: string };

/** One GET from inside `ns` (never rejects for a refused or failed request). */
export async function httpGet(h: Harness, ns: string, url: string): Promise<HttpAnswer> {
  const r = await h.exec(ns, [process.execPath, HTTP_GET_PROGRAM, url], {
    check: false,
    timeoutMs: 15_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined)
    throw new Error(`GET ${url} in ${ns}: no answer\n${r.stdout}\n${r.stderr}`);
  const parsed = JSON.parse(line) as {
    status?: number;
    body?: string;
    error?: string;
    code?: string;
  };
  if (parsed.status !== undefined) return { status: parsed.status, body: parsed.body ?? '' };
  return { status: undefined, error: parsed.error ?? 'unknown', code: parsed.code ?? 'unknown' };
}

/** A running `kube-lc-proxy run`. */
export interface ProxyProcess {
  readonly process: NsProcess;
  /** `host:port` of /metrics, /readyz, /debug/state. */
  readonly metricsAddress: string;
  get(path: string): Promise<HttpAnswer>;
  /** /debug/state, parsed. */
  state(): Promise<DebugState>;
  /** The status code of /readyz (undefined if nothing answered). */
  readyz(): Promise<number | undefined>;
  /** /metrics text. */
  metrics(): Promise<string>;
  /** Its JSON log lines so far. */
  logs(): JsonEvent[];
  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s); resolves with how it ended. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

/** Options of `startProxy`. */
export interface ProxyOptions {
  readonly kubeconfig: string;
  readonly nodeName: string;
  /** More `run` flags. */
  readonly args?: readonly string[];
  /** `--metrics-address`; default the namespace's 127.0.0.1 with a port the kernel picks. */
  readonly metricsAddress?: string;
}

/**
 * Starts `kube-lc-proxy run --source k8s` in `ns` with metrics on the namespace's 127.0.0.1
 * (port chosen by the kernel) and resolves once it logs that it runs. It does not wait for the
 * first sync: see `waitForSync` in cluster.ts.
 */
export async function startProxy(
  h: Harness,
  ns: string,
  opts: ProxyOptions,
): Promise<ProxyProcess> {
  const p = h.spawn(ns, [
    process.execPath,
    PROXY_BIN,
    'run',
    '--source',
    'k8s',
    '--kubeconfig',
    opts.kubeconfig,
    '--node-name',
    opts.nodeName,
    '--metrics-address',
    opts.metricsAddress ?? '127.0.0.1:0',
    ...(opts.args ?? []),
  ]);
  const listening = await p.waitForEvent((e) => e.msg === 'metrics listening', 15_000);
  await p.waitForEvent((e) => e.msg === 'kube-lc-proxy running', 15_000);
  const metricsAddress = String(listening.address);
  const get = (path: string): Promise<HttpAnswer> =>
    httpGet(h, ns, `http://${metricsAddress}${path}`);
  const ok = async (path: string): Promise<string> => {
    const a = await get(path);
    if (a.status !== 200) throw new Error(`GET ${path}: ${JSON.stringify(a)}`);
    return a.body;
  };
  return {
    process: p,
    metricsAddress,
    get,
    state: async () => JSON.parse(await ok('/debug/state')) as DebugState,
    readyz: async () => (await get('/readyz')).status,
    metrics: () => ok('/metrics'),
    logs: () => p.events(),
    stop: (graceMs = 10_000) => p.stop('SIGTERM', graceMs),
  };
}

/** The sum of the series of `name` whose labels include `labels` (Prometheus text); 0 if none. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
