import { describe, expect, it } from 'vitest';
import { latencyOf, parseH2loadLog, percentile } from '../../bench/latency.ts';

// bench/latency.ts turns h2load's per-request log into the percentiles docs/benchmarks.md
// reports (the latency goals of issue 11 are computed from them).
describe('bench latency percentiles', () => {
  it.each([
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, 5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99, 10],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1, 1],
    [[7], 0.999, 7],
  ])('nearest rank of %j at %d is %d', (values, q, want) => {
    expect(percentile(values, q)).toBe(want);
  });

  it('has no percentile of no samples', () => {
    expect(percentile([], 0.5)).toBeUndefined();
    expect(latencyOf(['']).p99).toBeUndefined();
  });

  it('keeps the requests answered 200 and counts the others and broken lines', () => {
    const log = [
      '1700000000000000\t200\t250',
      '1700000000000100\t502\t90',
      'garbage',
      '1700000000000200\t200\t-3',
      '1700000000000300\t200\t300',
      '',
    ].join('\n');
    expect(parseH2loadLog(log)).toEqual({ us: [250, 300], bad: 3 });
  });

  it('pools the runs before taking percentiles', () => {
    const run = (from: number): string =>
      Array.from({ length: 500 }, (_, i) => `1\t200\t${from + i}`).join('\n');
    // 1,000 samples 0..999: p50 is the 500th, p99 the 990th, p99.9 the 999th.
    expect(latencyOf([run(500), run(0)])).toEqual({
      n: 1000,
      bad: 0,
      p50: 499,
      p99: 989,
      p999: 998,
    });
  });
});
