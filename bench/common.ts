/**
 * What bench/results.ts and bench/report.ts share: where the bench writes, the shapes of a run
 * and of the statistics of one case, and small readers and formatters.
 */
import { existsSync, readFileSync } from 'node:fs';

export const OUT = 'bench/out';

/**
 * bulk1/bulk4: iperf3; connrate: wrk with Connection: close; h2: h2load at full speed; lat:
 * h2load at a fixed rate (latency); wconnrate/wh2: connrate and h2 of the workers phase.
 */
export type Suite = 'bulk1' | 'bulk4' | 'connrate' | 'h2' | 'lat' | 'wconnrate' | 'wh2';

/** Latency of one path of the fixed-rate phase, in µs (pooled over its kept runs). */
export interface LatencyStat {
  n: number;
  bad: number;
  p50: number | undefined;
  p99: number | undefined;
  p999: number | undefined;
  /** The same percentiles per kept run, in run order. */
  perRun: { rep: number; p50?: number; p99?: number; p999?: number }[];
}

/** Memory of one proxy: RSS at rest and with the idle connections open (KiB). */
export interface MemoryStat {
  restKib: number;
  openKib: number | undefined;
  opened: number | undefined;
  failed: number | undefined;
  /** Descriptors the proxy held with the connections open. */
  fds: number | undefined;
  /** (RSS open - RSS at rest) / connections opened, in bytes. */
  perConnBytes: number | undefined;
}

/** What bench/results.ts writes to results.json and bench/report.ts reads. */
export interface Results {
  runs: Run[];
  stats: Record<string, Stat>;
  latency: Record<string, LatencyStat>;
  memory: Record<string, MemoryStat>;
  notes: string[];
}

/** One load-generator run, as bench/results.ts reads it from bench/out/. */
export interface Run {
  suite: Suite;
  case: string;
  rep: number;
  /** The load generator's output, relative to OUT (h2load's request log: the same, .log). */
  file: string;
  value: number | undefined;
  errors: string[];
  wallS: number;
  proxyCpuS: number | undefined;
  /** How busy the load CPU and the proxy CPU were over the run (%), and the steal time (%). */
  loadCpuBusy: number;
  proxyCpuBusy: number;
  steal: number;
  /** CPU used by other processes during the run, in % of one core. */
  foreign: number;
  /** Resident memory of the proxy in the path right after the run, in KiB. */
  rssKib: number | undefined;
}

/** Statistics of one case (suite and path) over its kept runs. */
export interface Stat {
  n: number;
  median: number | undefined;
  min: number | undefined;
  max: number | undefined;
  /** (max - min) / median. */
  spread: number | undefined;
  /** Median CPU use of the proxy in the path, in % of one core. */
  cpu: number | undefined;
  /**
   * Median CPU time of the proxy per unit of work: ms per GB (bulk), µs per connection
   * (connrate), µs per request (h2). Comparable even when the proxy was not the bottleneck.
   */
  cpuPerUnit: number | undefined;
  /** Median busy share of the load CPU (load generator + backend) and of the proxy CPU. */
  loadCpuBusy: number | undefined;
  proxyCpuBusy: number | undefined;
  /** Highest steal time of any run, in %. */
  steal: number;
  /** Most CPU other processes used during a run, in % of one core. */
  foreign: number;
  /** Median and count of the runs other work did not disturb (at most FOREIGN_MAX). */
  cleanMedian: number | undefined;
  cleanN: number;
  errors: string[];
}

export const readText = (path: string): string =>
  existsSync(path) ? readFileSync(path, 'utf8') : '';
export const tsv = (path: string): string[][] =>
  readText(path)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));

export const pct = (v: number | undefined): string =>
  v === undefined ? 'n/a' : `${(v * 100).toFixed(1)}%`;
