import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LeastConnBalancer } from '../../src/balancer/least-conn.js';
import { SharedCounts, SlotTable, seqBefore } from '../../src/balancer/shared-counts.js';
import { tableEndpoint } from '../support/table-endpoint.js';

const SP = 'default/grpc:grpc';

/** N balancers of one Service port over one set of shared counts, as N worker threads have. */
function threads(n: number, keys: readonly string[]) {
  const counts = SharedCounts.create(n + 1);
  const slots = new SlotTable(counts);
  let version = 0;
  const publish = (ks: readonly string[]) =>
    slots.assign(++version, new Map([[SP, ks.map((k) => `${k}:9000`)]]), () => 0);
  publish(keys);
  const balancers = Array.from(
    { length: n },
    (_, region) =>
      new LeastConnBalancer({
        random: () => 0,
        shared: { counts, region, slotOf: (ep) => slots.slotOf(SP, ep) },
      }),
  );
  const update = (ks: readonly string[]) => {
    publish(ks);
    for (const b of balancers) b.update(ks.map((k) => tableEndpoint(k)));
  };
  for (const b of balancers) b.update(keys.map((k) => tableEndpoint(k)));
  return { counts, slots, balancers, update, version: () => version };
}

function activeByKey(b: LeastConnBalancer): Record<string, number> {
  return Object.fromEntries([...b.endpoints()].map((ep) => [ep.endpoint.address, ep.active]));
}

describe('least connection over shared counts (worker threads)', () => {
  it.each([2, 3])(
    'splits 40 connections opened one after another over %i threads exactly 10/10/10/10',
    (n) => {
      const { balancers } = threads(n, ['a', 'b', 'c', 'd']);
      for (let i = 0; i < 40; i++) balancers[(i * 7) % n]?.pick();
      for (const b of balancers) expect(activeByKey(b)).toEqual({ a: 10, b: 10, c: 10, d: 10 });
    },
  );

  it('sends the next connections to a fifth endpoint until it holds as many as the others', () => {
    const { balancers, update } = threads(2, ['a', 'b', 'c', 'd']);
    for (let i = 0; i < 40; i++) balancers[i % 2]?.pick();
    update(['a', 'b', 'c', 'd', 'e']);
    const picked = [];
    for (let i = 0; i < 10; i++) picked.push(balancers[i % 2]?.pick()?.endpoint.address);
    expect(picked).toEqual(Array(10).fill('e'));
    for (let i = 0; i < 5; i++) balancers[i % 2]?.pick();
    expect(activeByKey(balancers[0] as LeastConnBalancer)).toEqual({
      a: 11,
      b: 11,
      c: 11,
      d: 11,
      e: 11,
    });
  });

  it('rotates ties across threads: one client reconnecting visits every endpoint in turn', () => {
    const { balancers } = threads(2, ['a', 'b', 'c']);
    const seen = [];
    for (let i = 0; i < 6; i++) {
      const b = balancers[i % 2] as LeastConnBalancer;
      const ep = b.pick();
      seen.push(ep?.key);
      if (ep !== undefined) b.closed(ep, false);
    }
    expect(new Set(seen.slice(0, 3)).size).toBe(3);
    expect(seen.slice(3)).toEqual(seen.slice(0, 3));
  });

  it('takes a dead thread out of the totals and counts what it held', () => {
    const { counts, slots, balancers } = threads(2, ['a', 'b']);
    const [b0, b1] = balancers as [LeastConnBalancer, LeastConnBalancer];
    const kept = b0.pick();
    for (let i = 0; i < 3; i++) b1.pick();
    const draining = b1.pick();
    if (draining !== undefined) b1.startDraining(draining);
    expect([...b0.endpoints()].reduce((s, ep) => s + ep.active + ep.draining, 0)).toBe(5);
    expect(counts.forgetRegion(1, slots.used)).toBe(4);
    expect([...b0.endpoints()].reduce((s, ep) => s + ep.active + ep.draining, 0)).toBe(1);
    if (kept !== undefined) b0.closed(kept, false);
    for (const ep of b0.endpoints()) expect([ep.active, ep.draining]).toEqual([0, 0]);
  });

  it('frees a slot only once its endpoint left every thread and its counts are zero', () => {
    const { slots, balancers, update, version } = threads(2, ['a', 'b']);
    const b0 = balancers[0] as LeastConnBalancer;
    const ep = b0.pick();
    const slotA = slots.slotOf(SP, ep?.key ?? '');
    update(ep?.endpoint.address === 'a' ? ['b'] : ['a']);
    expect(slots.release(version())).toBe(0);
    if (ep !== undefined) b0.closed(ep, false);
    expect(slots.release(version() - 1)).toBe(0);
    expect(slots.release(version())).toBe(1);
    update(['a', 'b', 'c']);
    expect(['a', 'b', 'c'].map((k) => slots.slotOf(SP, `${k}:9000`))).toContain(slotA);
  });

  it('counts past the last slot per thread, and says how many could not be shared', () => {
    const counts = SharedCounts.create(2, 8);
    const slots = new SlotTable(counts);
    const keys = Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:80`);
    slots.assign(1, new Map([[SP, keys]]), () => 0);
    // Slot 0 holds the globals: 7 endpoints get one, 3 do not.
    expect(keys.filter((k) => slots.slotOf(SP, k) !== undefined)).toHaveLength(7);
    expect(slots.unassigned).toBe(3);
    const b = new LeastConnBalancer({
      shared: { counts, region: 0, slotOf: (ep) => slots.slotOf(SP, ep) },
    });
    b.update(keys.map((k) => tableEndpoint(k.split(':')[0] as string, 80)));
    for (let i = 0; i < 20; i++) b.pick();
    expect([...b.endpoints()].reduce((n, ep) => n + ep.active, 0)).toBe(20);
  });

  it('compares tie-break numbers across the Int32 wrap', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.nat(2 ** 30), (a, d) => {
        const b = (a + d + 1) | 0;
        expect(seqBefore(a, b)).toBe(true);
        expect(seqBefore(b, a)).toBe(false);
      }),
    );
  });
});
