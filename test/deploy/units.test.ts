import { describe, expect, it } from 'vitest';
import { parseDockerfile } from './load.js';
import { flagValue, parseDurationMs, parseQuantity } from './units.js';

describe('parseQuantity', () => {
  it.each([
    ['100m', 0.1],
    ['2', 2],
    [2, 2],
    ['128Mi', 128 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1G', 1e9],
    ['lots', undefined],
    [undefined, undefined],
  ] as const)('%s -> %s', (q, want) => {
    expect(parseQuantity(q)).toBe(want);
  });
});

describe('parseDurationMs', () => {
  it.each([
    ['30s', 30_000],
    ['10m', 600_000],
    ['250ms', 250],
    ['1h', 3_600_000],
    ['30', undefined],
  ] as const)('%s -> %s', (d, want) => {
    expect(parseDurationMs(d)).toBe(want);
  });
});

describe('flagValue', () => {
  it.each([
    [['run', '--shutdown-grace=45s'], '45s'],
    [['run', '--shutdown-grace', '45s'], '45s'],
    [['run', '--shutdown-grace-extra=1s'], undefined],
    [['run'], undefined],
  ] as const)('%j', (args, want) => {
    expect(flagValue(args, 'shutdown-grace')).toBe(want);
  });
});

describe('parseDockerfile', () => {
  it('joins continuations and drops comments', () => {
    const text = [
      '# syntax=docker/dockerfile:1',
      'FROM node:26-bookworm-slim AS build',
      'RUN apt-get update \\',
      '    # a comment inside a continuation',
      '    && apt-get install -y iptables',
      '',
      'CMD ["run"]',
    ].join('\n');
    expect(parseDockerfile(text)).toEqual([
      { keyword: 'FROM', args: 'node:26-bookworm-slim AS build' },
      { keyword: 'RUN', args: 'apt-get update && apt-get install -y iptables' },
      { keyword: 'CMD', args: '["run"]' },
    ]);
  });
});
