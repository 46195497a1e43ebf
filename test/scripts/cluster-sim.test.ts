import { describe, expect, it } from 'vitest';
import { LeastConnBalancer } from '../../src/balancer/least-conn.js';
import type { Endpoint } from '../../src/servicetable/types.js';
import {
  quantile,
  seededRandom,
  simulate,
  TieRotation,
  type ClusterPick,
  type Policy,
  type Scenario,
} from '../../scripts/cluster-sim/model.ts';
import { tableEndpoint } from '../support/table-endpoint.js';

const RANDOM: Policy = { kind: 'random' };
const NODE_LOCAL: Policy = { kind: 'node-local' };
const cluster = (syncSeconds: number, pick: ClusterPick): Policy => ({
  kind: 'cluster',
  syncSeconds,
  pick,
});

function staticScenario(nodes: number, clientsPerNode: number, pods: number): Scenario {
  return { nodes, clientsPerNode, pods, arrivalSeconds: 10, sampleAt: [10, 30], endSeconds: 30 };
}

/** Skews at sample `i` over `draws` seeded runs. */
function skews(policy: Policy, scenario: Scenario, draws: number, i = -1): number[] {
  return Array.from({ length: draws }, (_, d) => {
    const r = simulate(policy, scenario, seededRandom(1000 + d));
    return (i < 0 ? r.samples.at(i) : r.samples[i])!.skew;
  });
}

function endpoint(i: number): Endpoint {
  return tableEndpoint(`10.0.0.${i}`);
}

describe('cluster simulation model', () => {
  // Issue 9's table (4,000 draws there): node-local least connection and random choice.
  it.each([
    [1, 100, 4, 1.0, 1.2],
    [50, 2, 4, 1.16, 1.2],
    [100, 1, 4, 1.2, 1.2],
    [50, 2, 10, 1.4, 1.5],
    [100, 1, 10, 1.5, 1.5],
    [200, 1, 20, 1.6, 1.6],
  ])(
    '%i nodes × %i clients over %i pods: medians %f (node-local), %f (random)',
    (n, c, p, lc, rnd) => {
      // Skews come in steps of pods/clients (0.1 over 10 pods): a median on a step's edge may land
      // on either side, so the tolerance is one step.
      const s = staticScenario(n, c, p);
      const step = p / (n * c) + 1e-9;
      expect(Math.abs(quantile(skews(NODE_LOCAL, s, 1000), 0.5) - lc)).toBeLessThanOrEqual(step);
      expect(Math.abs(quantile(skews(RANDOM, s, 1000), 0.5) - rnd)).toBeLessThanOrEqual(step);
    },
  );

  it('picks like LeastConnBalancer: same endpoints, same ties, through a scale-out', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const realRandom = seededRandom(seed);
      const modelRandom = seededRandom(seed);
      const ops = seededRandom(seed + 500);
      const balancer = new LeastConnBalancer({ random: realRandom });
      const rotation = new TieRotation(1, 6);
      let pods = 3;
      balancer.update(Array.from({ length: pods }, (_, i) => endpoint(i)));
      rotation.placeFresh(0, 0, pods, modelRandom);
      const counts = [0, 0, 0, 0, 0, 0];
      const open: number[] = [];
      for (let step = 0; step < 60; step++) {
        if (step === 30) {
          balancer.update(Array.from({ length: 6 }, (_, i) => endpoint(i)));
          rotation.placeFresh(0, pods, 6, modelRandom);
          pods = 6;
        }
        if (open.length > 0 && ops() < 0.3) {
          const e = open.splice(Math.floor(ops() * open.length), 1)[0]!;
          counts[e]!--;
          balancer.closed(balancer.get(endpoint(e).key)!, false);
          continue;
        }
        const real = balancer.pick()!;
        const modelled = rotation.pick(0, pods, (e) => counts[e]!);
        expect(real.key).toBe(endpoint(modelled).key);
        counts[modelled]!++;
        open.push(modelled);
      }
    }
  });

  it('repeats exactly with the same seed', () => {
    const s: Scenario = { ...staticScenario(30, 1, 6), scaleTo: 9, scaleOutAt: 15 };
    const a = simulate(cluster(1, 'two-choices'), s, seededRandom(7));
    const b = simulate(cluster(1, 'two-choices'), s, seededRandom(7));
    expect(a).toEqual(b);
  });

  const scaleOut = (nodes: number, perNode: number, from: number, to: number): Scenario => ({
    nodes,
    clientsPerNode: perNode,
    pods: from,
    scaleTo: to,
    scaleOutAt: 20,
    arrivalSeconds: 10,
    sampleAt: [20.5, 60],
    endSeconds: 60,
  });

  it('cluster view without delay: 12 × 1 reaches skew 1.0 after a scale-out from 3 to 6 pods', () => {
    for (let d = 0; d < 50; d++) {
      for (const pick of ['least', 'two-choices'] as const) {
        const r = simulate(cluster(0, pick), scaleOut(12, 1, 3, 6), seededRandom(d));
        expect(r.counts).toEqual([2, 2, 2, 2, 2, 2]);
        // At least the 6 moves the new pods need; no more than one per client and round.
        expect(r.moves).toBeGreaterThanOrEqual(6);
      }
    }
  });

  it('herd step with reservations: the fewest moves after a scale-out, with 1 s and 5 s syncs', () => {
    for (const sync of [1, 5]) {
      for (let d = 0; d < 50; d++) {
        const s = { ...scaleOut(12, 1, 3, 6), sampleAt: [19.999, 60] };
        const r = simulate(cluster(sync, 'herd-step'), s, seededRandom(d));
        expect(r.counts).toEqual([2, 2, 2, 2, 2, 2]);
        // 4 on each old pod before, 2 on each after: 6 moves, and the plan makes no more.
        expect(r.samples[1]!.moves - r.samples[0]!.moves).toBe(6);
      }
    }
  });

  it('cluster view with 1 s and 5 s syncs: 100 × 1 over 10 pods ends balanced, random does not', () => {
    for (const sync of [1, 5]) {
      const settled = skews(cluster(sync, 'two-choices'), staticScenario(100, 1, 10), 200);
      expect(quantile(settled, 0.5)).toBeLessThanOrEqual(1.1);
    }
    expect(quantile(skews(RANDOM, staticScenario(100, 1, 10), 200), 0.5)).toBeGreaterThan(1.3);
  });

  it('two random choices bound herding: less skew before the rebalance than the least estimate', () => {
    const s = staticScenario(100, 1, 10);
    const two = quantile(skews(cluster(5, 'two-choices'), s, 200, 0), 0.5);
    const least = quantile(skews(cluster(5, 'least'), s, 200, 0), 0.5);
    expect(two).toBeLessThan(least);
  });

  it('node-local rebalance moves nothing with 1 client per node, and moves with 8 per node', () => {
    const one = simulate(NODE_LOCAL, scaleOut(12, 1, 2, 4), seededRandom(3));
    expect(one.moves).toBe(0);
    expect(one.counts.slice(2)).toEqual([0, 0]);
    const eight = simulate(NODE_LOCAL, scaleOut(3, 8, 2, 4), seededRandom(3));
    expect(eight.moves).toBeGreaterThan(0);
    expect(eight.counts).toEqual([6, 6, 6, 6]);
    const six = simulate(NODE_LOCAL, scaleOut(3, 6, 2, 4), seededRandom(3));
    expect(six.moves).toBe(0);
  });
});
