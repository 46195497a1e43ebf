/** Pure parts of the K8s source: back-off, rate cap, error classes, object shapes, selectors. */
import { describe, expect, it } from 'vitest';
import { Backoff, UNREACHABLE_MAX_MS, TokenBucket } from '../../src/source/k8s/backoff.js';
import { objectKey, toWireShape } from '../../src/source/k8s/normalize.js';
import { ALL_SERVICES_SELECTOR, labelSelectorFor } from '../../src/source/k8s/selectors.js';
import { classifyError } from '../../src/source/k8s/stats.js';

function clock(start = 0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('Backoff', () => {
  it('doubles from initial to max, with jitter bounds', () => {
    const c = clock();
    const mid = new Backoff({ initialMs: 500, maxMs: 30_000 }, c.now, () => 0.5);
    expect(Array.from({ length: 9 }, () => mid.next())).toEqual([
      500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
    const low = new Backoff({ initialMs: 500, jitter: 0.2 }, c.now, () => 0);
    const high = new Backoff({ initialMs: 500, jitter: 0.2 }, c.now, () => 1);
    expect([low.next(), high.next()]).toEqual([400, 600]);
  });

  it('caps the delay while the server is unreachable, so an outage ends within seconds (regression: 8 s after a 10 s outage)', () => {
    const b = new Backoff({ initialMs: 500, maxMs: 30_000 }, clock().now, () => 0.5);
    const unreachable = Array.from({ length: 6 }, () => b.next(UNREACHABLE_MAX_MS));
    expect(unreachable).toEqual([500, 1000, 2000, 3000, 3000, 3000]);
    // A server that answers with errors still gets the full back-off.
    expect([b.next(), b.next()]).toEqual([30_000, 30_000]);
  });

  it('starts over only after a healthy period, not after a quiet failing one', () => {
    const c = clock();
    const b = new Backoff({ initialMs: 100, maxMs: 1000, resetAfterMs: 5000 }, c.now, () => 0.5);
    b.next();
    b.next();
    c.advance(60_000); // long, but no success in between: keep backing off
    expect(b.next()).toBe(400);
    b.succeeded();
    c.advance(1000); // healthy, but not long enough
    expect(b.next()).toBe(800);
    b.succeeded();
    c.advance(5000);
    expect(b.next()).toBe(100);
  });
});

describe('TokenBucket', () => {
  it('lets a burst through, then paces, and releases waiters with false on close', async () => {
    const bucket = new TokenBucket({ burst: 2, perSecond: 20 });
    const t0 = Date.now();
    expect(await bucket.take()).toBe(true);
    expect(await bucket.take()).toBe(true);
    expect(await bucket.take()).toBe(true); // waited ~50 ms
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40);
    const slow = new TokenBucket({ burst: 1, perSecond: 0.01 });
    await slow.take();
    const pending = slow.take();
    slow.close();
    expect(await pending).toBe(false);
    expect(await slow.take()).toBe(false);
  });

  it('rejects settings that could never let a request through', () => {
    expect(() => new TokenBucket({ perSecond: 0 })).toThrow(RangeError);
  });
});

describe('classifyError', () => {
  const apiException = Object.assign(new Error('HTTP-Code: 500'), { code: 500 });
  const watchStatus = Object.assign(new Error('Gone'), { statusCode: 410 });
  const refused = new TypeError('fetch failed', {
    cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
  });
  it.each([
    [apiException, 'http-error'],
    [watchStatus, 'expired'],
    [Object.assign(new Error('x'), { code: 403 }), 'http-error'],
    [refused, 'network-error'],
    [new TypeError('terminated'), 'network-error'],
    [Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'network-error'],
    [new DOMException('idle', 'TimeoutError'), 'timeout'],
    [new Error('Cannot parse content. No Content-Type defined.'), 'other'],
    [null, 'other'],
    ['a string', 'other'],
  ])('%s → %s', (err, reason) => {
    expect(classifyError(err)).toBe(reason);
  });
});

describe('object shapes', () => {
  it('toWireShape: list shape (Dates, no kind) becomes the watch shape', () => {
    const listed = {
      metadata: {
        name: 'web',
        namespace: 'default',
        resourceVersion: '7',
        creationTimestamp: new Date('2026-01-02T03:04:05Z'),
        labels: undefined,
      },
      spec: { ports: [{ port: 80, name: undefined }] },
    };
    expect(toWireShape(listed, 'Service', 'v1')).toEqual({
      kind: 'Service',
      apiVersion: 'v1',
      metadata: {
        name: 'web',
        namespace: 'default',
        resourceVersion: '7',
        creationTimestamp: '2026-01-02T03:04:05Z',
      },
      spec: { ports: [{ port: 80 }] },
    });
    expect(Object.keys(toWireShape({ kind: 'X', metadata: {} }, 'Service', 'v1'))[0]).toBe('kind');
  });

  it.each([
    [
      { metadata: { name: 'a', namespace: 'n', resourceVersion: '1' } },
      { namespace: 'n', name: 'a' },
    ],
    [{ metadata: { name: 'node', resourceVersion: '1' } }, { namespace: '', name: 'node' }],
    [{ metadata: { name: 'a' } }, undefined],
    [{ metadata: { name: '', resourceVersion: '1' } }, undefined],
    [{ metadata: { name: 'a', namespace: 3, resourceVersion: '1' } }, undefined],
    [{ metadata: null }, undefined],
    [null, undefined],
    [[], undefined],
  ])('objectKey(%j) = %j', (obj, key) => {
    expect(objectKey(obj)).toEqual(key);
  });
});

describe('labelSelectorFor', () => {
  it('selects our proxy name by default, kube-proxy selection with allServices', () => {
    expect(labelSelectorFor({})).toBe('service.kubernetes.io/service-proxy-name=kube-lc-proxy');
    expect(labelSelectorFor({ proxyName: 'x' })).toBe('service.kubernetes.io/service-proxy-name=x');
    expect(labelSelectorFor({ allServices: true })).toBe(ALL_SERVICES_SELECTOR);
  });
});
