import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PROXY_PORT_RANGE,
  allocatePort,
  inRange,
  preferredPort,
} from '../../src/proxy/port-allocator.js';

describe('port allocator', () => {
  it('the default range avoids the Linux ephemeral range and the NodePort range', () => {
    const { first, last } = DEFAULT_PROXY_PORT_RANGE;
    expect(first).toBeGreaterThan(60999);
    expect(last).toBeLessThanOrEqual(65535);
  });

  it('gives a Service port the same port in every process (same range, same free ports)', () => {
    const range = { first: 61000, last: 61099 };
    const a = allocatePort('default/echo:grpc', range, new Set());
    const b = allocatePort('default/echo:grpc', range, new Set());
    expect(a).toBe(b);
    expect(a).toBe(preferredPort('default/echo:grpc', range));
    expect(inRange(range, a!)).toBe(true);
  });

  it('spreads different Service ports over the range', () => {
    const range = { first: 61000, last: 64999 };
    const ports = new Set(
      Array.from({ length: 50 }, (_, i) => preferredPort(`ns/svc-${i}:p`, range)),
    );
    expect(ports.size).toBeGreaterThan(45);
  });

  it.each([
    ['taken', new Set([61005]), new Set<number>(), 61006],
    ['avoided (busy)', new Set<number>(), new Set([61005]), 61006],
    ['both, wrapping around', new Set([61005, 61006]), new Set([61007]), 61000],
  ])('skips ports that are %s', (_name, taken, avoid, want) => {
    const range = { first: 61000, last: 61007 };
    // Find a key whose preferred port is 61005, so the probe order is known.
    let key = '';
    for (let i = 0; i < 10_000 && key === ''; i++) {
      if (preferredPort(`k${i}`, range) === 61005) key = `k${i}`;
    }
    expect(allocatePort(key, range, taken, avoid)).toBe(want);
  });

  it('returns undefined when the range is full', () => {
    const range = { first: 61000, last: 61002 };
    expect(allocatePort('a/b:c', range, new Set([61000, 61001, 61002]))).toBeUndefined();
  });
});
