import { describe, expect, it } from 'vitest';
import { concurrentLimit, DrainBudget } from '../../src/drain/budget.js';
import { DrainPlanner, DrainReason, type PlannerOptions } from '../../src/drain/planner.js';
import { planRebalance } from '../../src/drain/rebalance.js';

const opts = (o: Partial<PlannerOptions> = {}): PlannerOptions => ({
  maxAgeMs: 10_000,
  ageJitter: 0,
  budget: { maxConcurrent: { percent: 10 }, ratePerSec: 20 },
  rebalanceThreshold: 0,
  random: () => 0.5,
  ...o,
});

function h2cConns(
  p: DrainPlanner,
  n: number,
  endpoint = 'a',
  port = 'ns/s:p',
  first = 1,
  now = 0,
): void {
  for (let i = 0; i < n; i++) p.add(first + i, port, endpoint, now, now);
}

describe('DrainBudget', () => {
  it.each([
    [{ percent: 10 }, 100, 10],
    [{ percent: 10 }, 5, 1],
    [{ percent: 50 }, 3, 1],
    [{ count: 4 }, 100, 4],
  ])('concurrency limit of %o over %i connections is %i', (share, total, want) => {
    expect(concurrentLimit(share, total)).toBe(want);
  });

  it('refills at the rate with a burst of one second', () => {
    const b = new DrainBudget({ maxConcurrent: { count: 1000 }, ratePerSec: 20 }, 0);
    expect(b.available(0, 0, 1000)).toBe(20);
    b.take(0, 20);
    expect(b.available(0, 0, 1000)).toBe(0);
    expect(b.available(500, 0, 1000)).toBe(10);
    expect(b.available(10_000, 0, 1000)).toBe(20);
  });

  it('has no rate limit at rate 0', () => {
    const b = new DrainBudget({ maxConcurrent: { count: 7 }, ratePerSec: 0 }, 0);
    b.take(0, 100);
    expect(b.available(0, 2, 100)).toBe(5);
  });
});

describe('DrainPlanner', () => {
  it('drains h2c connections at max age, within the concurrency budget, oldest first', () => {
    const p = new DrainPlanner(opts({ budget: { maxConcurrent: { count: 3 }, ratePerSec: 20 } }));
    h2cConns(p, 30);
    expect(p.tick(9_999)).toEqual([]);
    const first = p.tick(10_000);
    expect(first.map((d) => d.id)).toEqual([1, 2, 3]);
    expect(first.every((d) => d.reason === DrainReason.MAX_AGE)).toBe(true);
    expect(p.tick(10_001)).toEqual([]); // three still draining
    p.remove(first[0]?.id as number);
    expect(p.tick(10_002)).toHaveLength(1);
  });

  it('applies ±jitter to each connection age', () => {
    const rs = [0, 0.999];
    const p = new DrainPlanner(
      opts({
        ageJitter: 0.1,
        random: () => rs.shift() ?? 0.5,
        budget: { maxConcurrent: { count: 10 }, ratePerSec: 0 },
      }),
    );
    h2cConns(p, 2);
    expect(p.tick(9_000).map((d) => d.id)).toEqual([1]);
    expect(p.tick(10_999).map((d) => d.id)).toEqual([2]);
  });

  it('limits the drain rate per second', () => {
    const p = new DrainPlanner(opts({ budget: { maxConcurrent: { count: 1000 }, ratePerSec: 5 } }));
    h2cConns(p, 100);
    expect(p.tick(10_000)).toHaveLength(5);
    expect(p.tick(10_000)).toHaveLength(0);
    expect(p.tick(10_400)).toHaveLength(2);
  });

  it('forgets a closed connection at once (regression: closed connections stayed in the age heap until their deadline)', () => {
    const p = new DrainPlanner(opts());
    h2cConns(p, 1000);
    for (let id = 1; id <= 1000; id++) p.remove(id);
    expect([p.size, p.scheduled]).toEqual([0, 0]);
    expect(p.tick(1e9)).toEqual([]);
  });

  it('defers a max-age drain while the client would come straight back, by at most 10% of the age', () => {
    const p = new DrainPlanner(opts({ budget: { maxConcurrent: { count: 10 }, ratePerSec: 0 } }));
    h2cConns(p, 1, 'a');
    h2cConns(p, 1, 'b', 'ns/s:p', 2);
    const back = new Set(['a']);
    const wouldReturn = (_port: string, endpoint: string) => back.has(endpoint);
    expect(p.tick(10_000, wouldReturn).map((d) => d.id)).toEqual([2]);
    expect(p.tick(10_500, wouldReturn)).toEqual([]);
    back.clear(); // another client moved: now it would go elsewhere
    expect(p.tick(10_600, wouldReturn).map((d) => d.id)).toEqual([1]);
  });

  it('drains anyway once the deferral is used up', () => {
    const p = new DrainPlanner(opts({ budget: { maxConcurrent: { count: 10 }, ratePerSec: 0 } }));
    h2cConns(p, 1, 'a');
    const always = () => true;
    expect(p.tick(10_999, always)).toEqual([]);
    expect(p.tick(11_000, always)).toEqual([{ id: 1, reason: 'max_age' }]);
  });

  it('does nothing for age when max age is 0', () => {
    const p = new DrainPlanner(opts({ maxAgeMs: 0 }));
    h2cConns(p, 3);
    expect(p.tick(1e12)).toEqual([]);
  });

  it('counts drains started elsewhere (a leaving endpoint) in the budget', () => {
    const p = new DrainPlanner(opts({ budget: { maxConcurrent: { percent: 10 }, ratePerSec: 0 } }));
    h2cConns(p, 20);
    p.markDraining(1);
    p.markDraining(2);
    // 10% of 20 connections may drain at once: the two already draining fill the budget.
    expect(p.tick(10_000)).toEqual([]);
    p.remove(1);
    p.remove(2);
    expect(p.tick(10_000)).toHaveLength(1); // 10% of 18 = 1
  });
});

describe('planRebalance', () => {
  const eps = (...active: number[]) =>
    active.map((a, i) => ({ key: `e${i}`, weight: 1, active: a }));

  it('drains the excess from the busiest endpoints down to their targets', () => {
    const plan = planRebalance(eps(50, 50, 0, 0), 100, 1.2, false);
    expect(plan.skew).toBe(2);
    expect([...plan.excess]).toEqual([
      ['e0', 25],
      ['e1', 25],
    ]);
  });

  it('does not start on small differences (busiest less than 2 above target)', () => {
    expect(planRebalance(eps(3, 2, 1, 2), 8, 1.2, false).excess.size).toBe(0);
  });

  it('does not start below the threshold', () => {
    expect(planRebalance(eps(11, 10, 10, 9), 40, 1.2, false).excess.size).toBe(0);
  });

  it('keeps going once started until no endpoint is above its ceiling target', () => {
    const going = planRebalance(eps(27, 26, 24, 23), 100, 1.2, true);
    expect([...going.excess]).toEqual([
      ['e0', 2],
      ['e1', 1],
    ]);
    expect(planRebalance(eps(25, 25, 25, 25), 100, 1.2, true).rebalancing).toBe(false);
  });

  it('counts draining connections in the total so targets do not shrink mid-rebalance', () => {
    // 10 of e0's connections are draining: their clients will come back.
    const plan = planRebalance(eps(40, 50, 0, 0), 100, 1.2, true);
    expect(plan.excess.get('e0')).toBe(15);
  });

  it('gives a slow-starting endpoint a smaller target', () => {
    const plan = planRebalance(
      [
        { key: 'old', weight: 1, active: 20 },
        { key: 'new', weight: 0.25, active: 0 },
      ],
      20,
      1.1,
      false,
    );
    expect(plan.excess.get('old')).toBe(4); // target 16
  });
});

describe('DrainPlanner rebalance', () => {
  it('drains within the budget', () => {
    const p = new DrainPlanner(
      opts({
        maxAgeMs: 0,
        rebalanceThreshold: 1.2,
        budget: { maxConcurrent: { percent: 10 }, ratePerSec: 20 },
      }),
    );
    h2cConns(p, 50, 'a');
    h2cConns(p, 50, 'b', 'ns/s:p', 100);
    p.setEndpoints(
      'ns/s:p',
      ['a', 'b', 'c', 'd'].map((key) => ({ key, weight: 1 })),
      0,
    );
    const d = p.tick(1);
    expect(d).toHaveLength(10); // 10% of 100 connections
    expect(d.every((x) => x.reason === 'rebalance')).toBe(true);
    expect(p.isRebalancing('ns/s:p')).toBe(true);
  });
});
