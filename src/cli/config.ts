import { hostname } from 'node:os';
import type { LevelWithSilent } from 'pino';
import { ConfigError } from '../errors.js';
import type { DaemonConfig } from '../daemon/daemon.js';
import { LOG_LEVELS } from '../log.js';
import { defaultWorkers, MAX_WORKERS } from './cpus.js';
import {
  parseBytes,
  parseDuration,
  parseHostPort,
  parseInteger,
  parseNumber,
  parsePortRange,
  parseRate,
  parseShare,
  parseSource,
  type SourceSpec,
} from './parse.js';

/** The `run` flags as yargs hands them over (strings, unparsed). */
export interface RunArgs {
  readonly source: string;
  readonly intercept?: string | undefined;
  readonly 'metrics-address': string;
  readonly 'log-level': string;
  readonly 'shutdown-grace': string;
  readonly 'connect-timeout': string;
  readonly 'connect-attempts': string | number;
  readonly 'slow-start-window': string;
  readonly kubeconfig?: string | undefined;
  readonly 'node-name'?: string | undefined;
  readonly 'all-services': boolean;
  readonly 'sync-min-interval': string;
  readonly 'h2-drain': boolean;
  readonly 'max-connection-age': string;
  readonly 'drain-grace': string;
  readonly 'drain-max-concurrent': string;
  readonly 'drain-rate': string;
  readonly 'rebalance-threshold': string;
  readonly 'proxy-port-range'?: string | undefined;
  readonly 'set-tcp-migrate-req'?: boolean | undefined;
  // Cluster view (issue 9).
  readonly peers?: string | undefined;
  readonly 'peer-secret-file'?: string | undefined;
  readonly 'cluster-sync-interval'?: string | undefined;
  readonly 'cluster-lease-namespace'?: string | undefined;
  readonly 'half-closed-timeout': string;
  readonly 'idle-timeout': string;
  readonly 'max-manifests-bytes': string;
  readonly 'metrics-per-endpoint'?: boolean;
  // Worker threads (issue 11).
  readonly workers?: string | undefined;
  readonly 'worker-heap-limit'?: string | undefined;
}

/** The cluster view as configured; the secret is read from its file when the daemon starts. */
export interface ClusterFlags {
  /** This node's name in the view: `--node-name`, else the host name. */
  readonly node: string;
  /** Static peers (metrics addresses), this node's own address left out. */
  readonly peers: readonly { readonly host: string; readonly port: number }[];
  readonly secretFile: string;
  readonly intervalMs: number;
  /**
   * `--source k8s` without `--peers`: the aggregator is elected with a Lease in this namespace,
   * and this proxy advertises its metrics address to the others through it.
   */
  readonly lease: { readonly namespace: string; readonly advertise: string } | undefined;
}

/** A parsed, validated `run` configuration. */
export interface RunConfig {
  readonly daemon: DaemonConfig;
  readonly source: SourceSpec;
  readonly logLevel: LevelWithSilent;
  readonly kubeconfig: string | undefined;
  readonly allServices: boolean;
  /** The cluster view; undefined when off (no `--peers`). */
  readonly cluster: ClusterFlags | undefined;
  /** Largest manifests file read (`--source file:`); a bigger one is rejected. */
  readonly maxManifestsBytes: number;
}

/**
 * Turns `run` flags into a RunConfig. Pure: every bad value throws a ConfigError naming the
 * flag (the CLI exits 2 with its message).
 */
export function parseRunConfig(args: RunArgs): RunConfig {
  // yargs turns a repeated flag into a list (and also accepts camelCase spellings).
  for (const [key, value] of Object.entries(args)) {
    if (Array.isArray(value) && key.includes('-'))
      throw new ConfigError(
        `--${key}`,
        `given more than once (${value.map(String).join(', ')}); give it once`,
      );
  }
  const source = parseSource('--source', args.source);
  const intercept = args.intercept ?? (source.kind === 'k8s' ? 'iptables' : 'none');
  if (intercept !== 'iptables' && intercept !== 'none') {
    throw new ConfigError(
      '--intercept',
      `expected iptables or none, got ${JSON.stringify(intercept)}`,
    );
  }
  const logLevel = args['log-level'];
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(
      '--log-level',
      `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    );
  }
  const connectTimeoutMs = parseDuration('--connect-timeout', args['connect-timeout']);
  if (connectTimeoutMs < 1) throw new ConfigError('--connect-timeout', 'must be more than 0');
  const nodeName = args['node-name'] === '' ? undefined : args['node-name'];
  const drainGraceMs = parseDuration('--drain-grace', args['drain-grace']);
  if (drainGraceMs < 1) throw new ConfigError('--drain-grace', 'must be more than 0');
  const rebalanceThreshold = parseNumber(
    '--rebalance-threshold',
    args['rebalance-threshold'],
    0,
    100,
  );
  if (rebalanceThreshold > 0 && rebalanceThreshold <= 1) {
    throw new ConfigError(
      '--rebalance-threshold',
      `must be 0 (off) or more than 1, got ${args['rebalance-threshold']}`,
    );
  }
  const metricsAddress = parseHostPort('--metrics-address', args['metrics-address']);
  return {
    source,
    cluster: parseClusterFlags(args, nodeName, metricsAddress, source),
    logLevel: logLevel as LevelWithSilent,
    kubeconfig: args.kubeconfig === '' ? undefined : args.kubeconfig,
    allServices: args['all-services'],
    maxManifestsBytes: parseBytes(
      '--max-manifests-bytes',
      args['max-manifests-bytes'],
      1024,
      1024 ** 3,
    ),
    daemon: {
      intercept,
      metricsAddress,
      nodeName,
      shutdownGraceMs: parseDuration('--shutdown-grace', args['shutdown-grace']),
      connectTimeoutMs,
      maxConnectAttempts: parseInteger('--connect-attempts', args['connect-attempts'], 1, 10),
      slowStartWindowMs: parseDuration('--slow-start-window', args['slow-start-window']),
      syncMinIntervalMs: parseDuration('--sync-min-interval', args['sync-min-interval']),
      h2Drain: args['h2-drain'],
      maxConnectionAgeMs: parseDuration('--max-connection-age', args['max-connection-age']),
      drainGraceMs,
      drainMaxConcurrent: parseShare('--drain-max-concurrent', args['drain-max-concurrent']),
      drainRatePerSec: parseRate('--drain-rate', args['drain-rate']),
      rebalanceThreshold,
      proxyPortRange: parsePortRange(
        '--proxy-port-range',
        args['proxy-port-range'] ?? '61000-65535',
      ),
      setTcpMigrateReq: args['set-tcp-migrate-req'] ?? true,
      halfClosedTimeoutMs: parseDuration('--half-closed-timeout', args['half-closed-timeout']),
      idleTimeoutMs: parseDuration('--idle-timeout', args['idle-timeout']),
      metricsPerEndpoint: args['metrics-per-endpoint'] === true,
      workers: parseWorkers(args.workers),
      workerHeapLimitMb: Math.round(
        parseBytes(
          '--worker-heap-limit',
          args['worker-heap-limit'] ?? '512Mi',
          64 * 1024 ** 2,
          64 * 1024 ** 3,
        ) /
          1024 ** 2,
      ),
    },
  };
}

/**
 * The cluster view flags. On with `--peers` (static peers, any source), or with `--source k8s`
 * and `--peer-secret-file` (peers found through a Lease-elected aggregator). The secret is
 * required either way.
 */
function parseClusterFlags(
  args: RunArgs,
  nodeName: string | undefined,
  metrics: { host: string; port: number },
  source: SourceSpec,
): ClusterFlags | undefined {
  const peersText = (args.peers ?? '').trim();
  const secretFile = (args['peer-secret-file'] ?? '').trim();
  if (peersText === '' && secretFile === '') return undefined;
  if (peersText === '' && source.kind !== 'k8s') {
    throw new ConfigError(
      '--peer-secret-file',
      'given without --peers: with a manifests file, list the peers (HOST:PORT of their --metrics-address)',
    );
  }
  if (secretFile === '') {
    throw new ConfigError(
      '--peer-secret-file',
      'required with --peers: peers authenticate with a shared secret',
    );
  }
  const intervalMs = parseDuration(
    '--cluster-sync-interval',
    args['cluster-sync-interval'] ?? '2s',
  );
  if (intervalMs < 100 || intervalMs > 60_000) {
    throw new ConfigError(
      '--cluster-sync-interval',
      `must be from 100ms to 1m, got ${args['cluster-sync-interval']}`,
    );
  }
  const node = nodeName ?? hostname();
  if (peersText === '') {
    const unspecified =
      ['0.0.0.0', '::'].includes(metrics.host) ||
      metrics.host.startsWith('127.') ||
      metrics.host === '::1';
    if (unspecified || metrics.port === 0) {
      throw new ConfigError(
        '--metrics-address',
        `the cluster view with --source k8s advertises this address to the other nodes: use one they reach (e.g. $(POD_IP):9901), not ${metrics.host}:${metrics.port}`,
      );
    }
    const namespace = (args['cluster-lease-namespace'] ?? '').trim() || 'kube-lc-proxy';
    const host = metrics.host.includes(':') ? `[${metrics.host}]` : metrics.host;
    return {
      node,
      peers: [],
      secretFile,
      intervalMs,
      lease: { namespace, advertise: `${host}:${metrics.port}` },
    };
  }
  const own = `${metrics.host}:${metrics.port}`;
  const seen = new Set<string>();
  const peers: { host: string; port: number }[] = [];
  for (const item of peersText.split(',')) {
    const text = item.trim();
    if (text === '') continue;
    const p = parseHostPort('--peers', text);
    if (p.port === 0) throw new ConfigError('--peers', `port 0 in ${JSON.stringify(text)}`);
    const key = `${p.host}:${p.port}`;
    // The same list may be given to every node: this node's own address is skipped.
    if (key === own || seen.has(key)) continue;
    seen.add(key);
    peers.push(p);
  }
  return { node, peers, secretFile, intervalMs, lease: undefined };
}

/**
 * `--workers`: `auto` (the CPUs the container may use), 1 to MAX_WORKERS worker threads, or 0
 * for the data path on the main thread (one V8 isolate less, where memory counts more than cores).
 */
function parseWorkers(value: string | undefined): number {
  const v = (value ?? 'auto').trim();
  if (v === 'auto') return defaultWorkers();
  return parseInteger('--workers', v, 0, MAX_WORKERS);
}
