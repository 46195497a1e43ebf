import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';

/**
 * Parsers for flag values. Each throws a ConfigError naming the flag and the bad value; none
 * accepts something it would have to guess about.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as Go and kubectl write them: `500ms`, `30s`, `10m`, `1h`, `1m30s`, or `0`.
 * Returns milliseconds.
 */
export function parseDuration(flag: string, value: unknown): number {
  const text = String(value).trim();
  if (text === '0') return 0;
  if (text.startsWith('-'))
    throw new ConfigError(flag, `must not be negative, got ${JSON.stringify(value)}`);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  if (text === '' || matched !== text.length) {
    throw new ConfigError(
      flag,
      `not a duration: ${JSON.stringify(value)} (use e.g. 500ms, 30s, 10m, 1h30m, or 0)`,
    );
  }
  if (!Number.isFinite(total) || total > 365 * 24 * 3_600_000) {
    throw new ConfigError(flag, `duration too long: ${JSON.stringify(value)}`);
  }
  return Math.round(total);
}

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). Port 0 lets the kernel choose. */
export function parseHostPort(flag: string, value: unknown): { host: string; port: number } {
  const text = String(value).trim();
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (m === null) throw new ConfigError(flag, `expected HOST:PORT, got ${JSON.stringify(value)}`);
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string));
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(flag, `port out of range in ${JSON.stringify(value)}`);
  if (m[1] !== undefined && isIP(host) !== 6)
    throw new ConfigError(flag, `not an IPv6 address: ${host}`);
  // Digits and dots can only mean an IPv4 address; `999.1.1.1` would otherwise go to DNS.
  if (/^[\d.]+$/.test(host) && isIP(host) !== 4)
    throw new ConfigError(flag, `not an IPv4 address: ${host} (in ${JSON.stringify(value)})`);
  return { host, port };
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
};

/** A size in bytes as Kubernetes writes quantities: `16Mi`, `500Ki`, `20M`, `1048576`. */
export function parseBytes(flag: string, value: unknown, min: number, max: number): number {
  const text = String(value).trim();
  const m = /^(\d+)(k|M|G|Ki|Mi|Gi)?$/.exec(text);
  if (m === null) {
    throw new ConfigError(
      flag,
      `expected a size like 16Mi, 512Ki or 1000000, got ${JSON.stringify(value)}`,
    );
  }
  const n = Number(m[1]) * (BYTE_UNITS[m[2] ?? ''] as number);
  if (n < min || n > max)
    throw new ConfigError(flag, `must be from ${min} to ${max} bytes, got ${text}`);
  return n;
}

/** A share (`10%`) or an absolute count (`5`), for budgets. */
export type Share = { readonly percent: number } | { readonly count: number };

export function parseShare(flag: string, value: unknown): Share {
  const text = String(value).trim();
  let m = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (m !== null) {
    const percent = Number(m[1]);
    if (percent <= 0 || percent > 100)
      throw new ConfigError(flag, `must be between 0% and 100%, got ${text}`);
    return { percent };
  }
  m = /^(\d+)$/.exec(text);
  if (m !== null && Number(m[1]) >= 1) return { count: Number(m[1]) };
  throw new ConfigError(
    flag,
    `expected a percentage like 10% or a count like 5, got ${JSON.stringify(value)}`,
  );
}

/** A rate per second: `20/s`, `20`, `1/m` (per minute) and `0` (no limit). */
export function parseRate(flag: string, value: unknown): number {
  const text = String(value).trim();
  const m = /^(\d+(?:\.\d+)?)(?:\/(s|m))?$/.exec(text);
  if (m === null)
    throw new ConfigError(flag, `expected a rate like 20/s, got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  return m[2] === 'm' ? n / 60 : n;
}

/** A finite number within [min, max]. */
export function parseNumber(flag: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (String(value).trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(
      flag,
      `expected a number from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** An integer within [min, max]. */
export function parseInteger(flag: string, value: unknown, min: number, max: number): number {
  const n = parseNumber(flag, value, min, max);
  if (!Number.isInteger(n))
    throw new ConfigError(flag, `expected a whole number, got ${JSON.stringify(value)}`);
  return n;
}

/** Source: `k8s` or `file:PATH`. */
export type SourceSpec =
  { readonly kind: 'k8s' } | { readonly kind: 'file'; readonly path: string };

export function parseSource(flag: string, value: unknown): SourceSpec {
  const text = String(value);
  if (text === 'k8s') return { kind: 'k8s' };
  if (text.startsWith('file:') && text.length > 'file:'.length)
    return { kind: 'file', path: text.slice('file:'.length) };
  throw new ConfigError(flag, `expected k8s or file:PATH, got ${JSON.stringify(value)}`);
}

/**
 * A port range `FIRST-LAST` (inclusive, 1..65535, FIRST <= LAST), as kube-proxy's
 * `--proxy-port-range` writes it. A single port `N` is the range N-N.
 */
export function parsePortRange(flag: string, value: unknown): { first: number; last: number } {
  const text = String(value).trim();
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (m === null)
    throw new ConfigError(
      flag,
      `expected a port range like 61000-65535, got ${JSON.stringify(value)}`,
    );
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first < 1 || last > 65535 || first > last)
    throw new ConfigError(flag, `ports must be 1..65535 and FIRST <= LAST, got ${text}`);
  return { first, last };
}
