/**
 * Latency percentiles from h2load's per-request log (`--log-file`): one line per request, tab
 * separated: start time (µs since the epoch), HTTP status, microseconds until the end of the
 * response. h2load's own summary gives no p99.9 and rounds; the log gives every request.
 * Pure: bench/results.ts reads the files and hands the text here.
 */

/** Latency of one path over one or more runs, in µs. */
export interface Latency {
  /** Requests answered with status 200 (the samples). */
  n: number;
  /** Requests with another status, and lines that do not parse. */
  bad: number;
  p50: number | undefined;
  p99: number | undefined;
  p999: number | undefined;
}

/** The durations (µs) of the requests answered 200 in one log, and how many lines were not. */
export function parseH2loadLog(text: string): { us: number[]; bad: number } {
  const us: number[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [start, status, dur] = line.split('\t');
    const d = Number(dur);
    if (start === undefined || status !== '200' || !Number.isFinite(d) || d < 0) bad++;
    else us.push(d);
  }
  return { us, bad };
}

/** Nearest-rank percentile (q in (0, 1]) of values sorted ascending. */
export function percentile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** p50, p99 and p99.9 of the pooled samples of one or more logs. */
export function latencyOf(logs: readonly string[]): Latency {
  const all: number[] = [];
  let bad = 0;
  for (const text of logs) {
    const r = parseH2loadLog(text);
    for (const v of r.us) all.push(v);
    bad += r.bad;
  }
  all.sort((a, b) => a - b);
  return {
    n: all.length,
    bad,
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    p999: percentile(all, 0.999),
  };
}
