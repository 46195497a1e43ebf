import type { LevelWithSilent } from 'pino';
import { ConfigError } from '../errors.js';
import type { DaemonConfig } from '../daemon/daemon.js';
import { LOG_LEVELS } from '../log.js';
import {
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
}

/** A parsed, validated `run` configuration. */
export interface RunConfig {
  readonly daemon: DaemonConfig;
  readonly source: SourceSpec;
  readonly logLevel: LevelWithSilent;
  readonly kubeconfig: string | undefined;
  readonly allServices: boolean;
}

/**
 * Turns `run` flags into a RunConfig. Pure: every bad value throws a ConfigError naming the
 * flag (the CLI exits 2 with its message).
 */
export function parseRunConfig(args: RunArgs): RunConfig {
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
  return {
    source,
    logLevel: logLevel as LevelWithSilent,
    kubeconfig: args.kubeconfig === '' ? undefined : args.kubeconfig,
    allServices: args['all-services'],
    daemon: {
      intercept,
      metricsAddress: parseHostPort('--metrics-address', args['metrics-address']),
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
    },
  };
}
