import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { EndpointStats } from '../../src/balancer/endpoint-stats.js';
import { LeastConnBalancer } from '../../src/balancer/least-conn.js';
import type { Endpoint, EndpointState } from '../../src/servicetable/types.js';
import { tableEndpoint } from '../support/table-endpoint.js';

function ep(i: number, state: EndpointState = 'ready', eligible = state === 'ready'): Endpoint {
  return tableEndpoint(`10.0.${i >> 8}.${i & 255}`, 9000, state, eligible);
}
const eps = (n: number, from = 1): Endpoint[] => Array.from({ length: n }, (_, i) => ep(from + i));

function open(b: LeastConnBalancer, n: number): EndpointStats[] {
  const out: EndpointStats[] = [];
  for (let i = 0; i < n; i++) {
    const s = b.pick();
    if (s === undefined) throw new Error('no endpoint');
    b.connected(s);
    out.push(s);
  }
  return out;
}
const counts = (b: LeastConnBalancer) =>
  Object.fromEntries([...b.endpoints()].map((s) => [s.key, s.active]));

describe('LeastConnBalancer', () => {
  it('spreads 40 connections 10/10/10/10 over 4 endpoints', () => {
    const b = new LeastConnBalancer();
    b.update(eps(4));
    open(b, 40);
    expect(Object.values(counts(b))).toEqual([10, 10, 10, 10]);
  });

  it('sends the next connections to a new endpoint until it catches up', () => {
    const b = new LeastConnBalancer();
    b.update(eps(4));
    open(b, 40);
    b.update(eps(5));
    const next = open(b, 10);
    expect(new Set(next.map((s) => s.key))).toEqual(new Set([ep(5).key]));
  });

  it('gives a terminating endpoint nothing while another is eligible', () => {
    const b = new LeastConnBalancer();
    b.update([ep(1), ep(2, 'terminating', false)]);
    expect(open(b, 5).every((s) => s.key === ep(1).key)).toBe(true);
  });

  it('rotates over tied endpoints: one client reconnecting visits each in turn', () => {
    const b = new LeastConnBalancer({ random: () => 0.6 });
    b.update(eps(4));
    const visits: string[] = [];
    for (let i = 0; i < 8; i++) {
      const s = b.pick() as EndpointStats;
      b.connected(s);
      visits.push(s.key);
      b.closed(s, false);
    }
    expect(new Set(visits.slice(0, 4)).size).toBe(4);
    expect(visits.slice(4)).toEqual(visits.slice(0, 4));
  });

  it('starts the rotation at a random point', () => {
    const first = (r: number) => {
      const b = new LeastConnBalancer({ random: () => r });
      b.update(eps(4));
      return b.pick()?.key;
    };
    expect(new Set([0, 0.25, 0.5, 0.75].map(first)).size).toBe(4);
  });

  it('4 proxies with their own counts rarely all pick the same fresh endpoint', () => {
    let same = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) {
      const picks = Array.from({ length: 4 }, () => {
        const b = new LeastConnBalancer();
        b.update(eps(4));
        return b.pick()?.key;
      });
      if (new Set(picks).size === 1) same++;
    }
    // A random start gives 1/64 (about 1.6%); starting at the list head would give 100%.
    expect(same / trials).toBeLessThan(0.05);
  });

  it('weighs draining connections 1/256 of active ones (IPVS overhead)', () => {
    const b = new LeastConnBalancer({ random: () => 0 });
    b.update(eps(2));
    const [a] = open(b, 1) as [EndpointStats];
    b.startDraining(a);
    // a: 1 draining (score 1); the other: 0 → the other wins, then a wins over 1 active.
    const second = b.pick() as EndpointStats;
    expect(second).not.toBe(a);
    expect(b.pick()).toBe(a);
  });

  it('counts return to exactly zero however connections end', () => {
    const b = new LeastConnBalancer();
    b.update(eps(3));
    const conns = open(b, 30);
    conns.slice(0, 10).forEach((s) => b.startDraining(s));
    conns.slice(0, 10).forEach((s) => b.closed(s, true));
    conns.slice(10).forEach((s) => b.closed(s, false));
    const failed = b.pick() as EndpointStats;
    b.connectFailed(failed, 'refused');
    for (const s of b.endpoints()) expect([s.active, s.draining]).toEqual([0, 0]);
  });

  it('keeps a removed endpoint listed until its last connection closes', () => {
    const b = new LeastConnBalancer();
    b.update(eps(2));
    const conns = open(b, 2);
    const changes = b.update(eps(1));
    expect(changes).toEqual([expect.objectContaining({ previous: 'ready', current: 'removed' })]);
    const removed = conns.find((s) => s.status === 'removed') as EndpointStats;
    expect(b.get(removed.key)).toBe(removed);
    expect(open(b, 3).every((s) => s.key === ep(1).key)).toBe(true);
    b.closed(removed, false);
    expect(b.get(removed.key)).toBeUndefined();
  });

  it('ejects an endpoint after a connect failure, and still uses it when nothing else is left', () => {
    let now = 0;
    const b = new LeastConnBalancer({ now: () => now, random: () => 0 });
    b.update(eps(2));
    const bad = b.pick() as EndpointStats;
    b.connectFailed(bad, 'refused');
    expect(bad.connectFailures.get('refused')).toBe(1);
    expect(open(b, 3).every((s) => s !== bad)).toBe(true);
    expect(b.pick(new Set([...b.endpoints()].filter((s) => s !== bad)))).toBe(bad);
    now = 1001;
    b.closed(bad, false);
    expect(b.pick()).toBe(bad);
  });

  it('doubles the ejection for failures in a row and resets on success', () => {
    const b = new LeastConnBalancer({ now: () => 0, ejectBaseMs: 100, ejectMaxMs: 250 });
    b.update(eps(1));
    const s = b.pick() as EndpointStats;
    b.connectFailed(s, 'timeout');
    expect(s.ejectedUntil).toBe(100);
    b.pick();
    b.connectFailed(s, 'timeout');
    expect(s.ejectedUntil).toBe(200);
    b.pick();
    b.connectFailed(s, 'timeout');
    expect(s.ejectedUntil).toBe(250);
    b.pick();
    b.connected(s);
    // An accept alone proves nothing (accept-then-reset backends); a byte or a clean close does.
    expect(s.consecutiveFailures).toBe(3);
    b.confirmed(s);
    expect(s.consecutiveFailures).toBe(0);
  });

  it('ejects an endpoint that resets after accepting, with the same back-off as refusals', () => {
    const b = new LeastConnBalancer({ now: () => 0, ejectBaseMs: 100, ejectMaxMs: 250 });
    b.update(eps(2));
    const s = b.pick() as EndpointStats;
    b.connected(s);
    b.earlyReset(s);
    expect(s.ejectedUntil).toBe(100);
    expect(s.active).toBe(1); // still counted until the connection closes
    b.closed(s, false);
    expect(s.active).toBe(0);
    // While ejected, the other endpoint takes every new connection.
    const other = b.pick() as EndpointStats;
    expect(other).not.toBe(s);
    b.connected(other);
    b.closed(other, false);
    expect(b.pick()).toBe(other);
    expect(s.connectFailures.get('early_reset')).toBe(1);
  });

  it('skips excluded endpoints on retry', () => {
    const b = new LeastConnBalancer({ random: () => 0 });
    b.update(eps(3));
    const first = b.pick() as EndpointStats;
    b.closed(first, false);
    const second = b.pick(new Set([first])) as EndpointStats;
    expect(second).not.toBe(first);
  });

  it('says whether a connection drained now would be picked right back', () => {
    const b = new LeastConnBalancer({ random: () => 0 });
    b.update(eps(3));
    open(b, 8); // 3, 3, 2
    const [a, , c] = [...b.endpoints()] as [EndpointStats, EndpointStats, EndpointStats];
    expect(c.active).toBe(2);
    expect(b.wouldPickAgain(c.key)).toBe(true); // 1 + a draining one, still the least loaded
    expect(b.wouldPickAgain(a.key)).toBe(false); // 2 + a draining one: c (2) wins
    expect(b.wouldPickAgain('10.9.9.9:9000')).toBe(false);
  });

  it('returns undefined when no endpoint is eligible', () => {
    const b = new LeastConnBalancer();
    b.update([ep(1, 'not-ready')]);
    expect(b.pick()).toBeUndefined();
  });

  it('ramps a newly ready endpoint from 10% with slow start', () => {
    let now = 0;
    const b = new LeastConnBalancer({ now: () => now, slowStartWindowMs: 10_000 });
    b.update(eps(2));
    open(b, 20); // 10 each
    b.update(eps(3));
    const fresh = b.get(ep(3).key) as EndpointStats;
    expect(fresh.weight).toBeCloseTo(0.1);
    open(b, 3);
    // weight 0.1: one connection scores like ten on a full endpoint, so it takes 1 of the 3.
    expect(fresh.active).toBe(1);
    now = 5_000;
    b.pick();
    expect(fresh.weight).toBeCloseTo(0.5);
    now = 10_000;
    b.pick();
    expect(fresh.weight).toBe(1);
  });

  it('refreshes slow-start weights without a pick (regression: the rebalance read stale weights)', () => {
    let now = 0;
    const b = new LeastConnBalancer({ now: () => now, slowStartWindowMs: 10_000 });
    b.update(eps(1));
    b.update(eps(2));
    const fresh = b.get(ep(2).key) as EndpointStats;
    now = 60_000;
    b.refreshWeights();
    expect(fresh.weight).toBe(1);
  });

  it('does not slow-start the endpoints of the first table', () => {
    const b = new LeastConnBalancer({ slowStartWindowMs: 10_000 });
    b.update(eps(3));
    expect([...b.endpoints()].map((s) => s.weight)).toEqual([1, 1, 1]);
  });

  it('picks without scanning: far fewer score computations than endpoints at 10,000', () => {
    const b = new LeastConnBalancer();
    b.update(eps(10_000));
    open(b, 10_000);
    const spy = vi.spyOn(EndpointStats.prototype, 'score');
    open(b, 10);
    const perPick = spy.mock.calls.length / 10;
    spy.mockRestore();
    expect(perPick).toBeLessThan(200);
  });

  it('property: every pick has the lowest score, and counts end at zero', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.tuple(fc.constantFrom('open', 'drain', 'close', 'fail'), fc.nat()), {
          maxLength: 200,
        }),
        (n, ops) => {
          const b = new LeastConnBalancer({ now: () => 0, ejectBaseMs: 0 });
          b.update(eps(n));
          const live: { s: EndpointStats; draining: boolean }[] = [];
          for (const [op, k] of ops) {
            if (op === 'open' || op === 'fail') {
              const min = Math.min(
                ...[...b.endpoints()].filter((s) => s.eligible).map((s) => s.score()),
              );
              const s = b.pick() as EndpointStats;
              // The chosen endpoint's score before this pick was the lowest.
              expect((s.active - 1) * 256 + s.draining).toBeLessThanOrEqual(min * s.weight + 1e-9);
              if (op === 'fail') b.connectFailed(s, 'refused');
              else {
                b.connected(s);
                live.push({ s, draining: false });
              }
            } else if (live.length > 0) {
              const c = live[k % live.length] as { s: EndpointStats; draining: boolean };
              if (op === 'drain' && !c.draining) {
                b.startDraining(c.s);
                c.draining = true;
              } else if (op === 'close') {
                b.closed(c.s, c.draining);
                live.splice(live.indexOf(c), 1);
              }
            }
          }
          for (const c of live) b.closed(c.s, c.draining);
          for (const s of b.endpoints()) expect([s.active, s.draining]).toEqual([0, 0]);
        },
      ),
    );
  });
});
