import { describe, expect, it } from 'vitest';
import { answerFor, parseAnswer, type AggregatePort } from '../../src/cluster/aggregate.js';
import { BadReport } from '../../src/cluster/report.js';
import {
  electionStep,
  holderIdentity,
  LEASE_DURATION_MS,
  parseHolder,
  type ElectionMemory,
  type LeaseRecord,
} from '../../src/cluster/lease.js';
import { planClusterRebalanceAll } from '../../src/drain/cluster-rebalance.js';

const rec = (holder: string, rv: string, renewTime = 't1', transitions = 0): LeaseRecord => ({
  holder,
  resourceVersion: rv,
  renewTime,
  transitions,
});
const empty: ElectionMemory = { observed: undefined, observedAt: 0 };

describe('Lease election (client-go semantics)', () => {
  it('creates the Lease when there is none', () => {
    expect(electionStep('me', undefined, empty, 0, 0).step).toEqual({ kind: 'create' });
  });

  it('renews its own Lease', () => {
    expect(electionStep('me', rec('me', '5', 't', 2), empty, 0, 0).step).toEqual({
      kind: 'renew',
      resourceVersion: '5',
      transitions: 2,
    });
  });

  it('follows a holder that renews, whatever the clocks say', () => {
    let mem = empty;
    let now = 0;
    for (let i = 0; i < 20; i++) {
      // The record changes at every read: the holder renews.
      const r = electionStep('me', rec('other', String(i), `t${i}`), mem, now, 0);
      expect(r.step).toEqual({ kind: 'follow', holder: 'other' });
      mem = r.memory;
      now += 2_000;
    }
  });

  it('takes the Lease only after the record stood still a whole lease duration plus its own delay', () => {
    const r1 = electionStep('me', rec('other', '7'), empty, 1_000, 3_000);
    expect(r1.step.kind).toBe('follow');
    const at = (now: number) => electionStep('me', rec('other', '7'), r1.memory, now, 3_000).step;
    expect(at(1_000 + LEASE_DURATION_MS + 2_999).kind).toBe('follow');
    expect(at(1_000 + LEASE_DURATION_MS + 3_000)).toEqual({
      kind: 'take',
      resourceVersion: '7',
      transitions: 1,
    });
  });

  it('takes a released Lease (empty holder) at once', () => {
    expect(electionStep('me', rec('', '9', '', 3), empty, 0, 5_000).step.kind).toBe('take');
  });

  it('holder identities carry the node and its address', () => {
    expect(parseHolder(holderIdentity('node-1', '10.0.0.5:9901'))).toEqual({
      node: 'node-1',
      host: '10.0.0.5',
      port: 9901,
    });
    expect(parseHolder(holderIdentity('n@x', '[fd00::1]:9901'))).toEqual({
      node: 'n@x',
      host: 'fd00::1',
      port: 9901,
    });
    for (const bad of ['no-at-sign', '@1.2.3.4:1', 'n@1.2.3.4', 'n@1.2.3.4:0', 'n@1.2.3.4:70000'])
      expect(parseHolder(bad)).toBeUndefined();
  });
});

describe('aggregator answers', () => {
  const counts = new Map([
    ['a', new Map([['e1', 2]])],
    ['b', new Map([['e1', 2]])],
    ['agg', new Map([['e1', 0]])],
  ]);
  const totals = new Map([['e1', 4]]);
  const eps = [
    { key: 'e1', weight: 1 },
    { key: 'e2', weight: 1 },
  ];
  const cache = new Map<string, AggregatePort>([
    [
      'ns/s:p',
      {
        counts,
        totals,
        plan: planClusterRebalanceAll(eps, counts),
        basis: new Map([
          ['a', 111],
          ['b', 222],
        ]),
      },
    ],
  ]);

  it("gives a follower the others' counts, its share of the plan and the basis of that plan", () => {
    const forA = answerFor('a', 'agg', 1, cache, ['ns/s:p', 'ns/unknown:p']);
    const forB = answerFor('b', 'agg', 2, cache, ['ns/s:p']);
    expect(Object.keys(forA.ports)).toEqual(['ns/s:p']);
    expect(forA.ports['ns/s:p']?.others).toEqual({ e1: 2 });
    expect(forA.ports['ns/s:p']?.nodes).toBe(3);
    expect(forA.ports['ns/s:p']?.basis).toBe(111);
    // 4 on e1, 0 on e2: two moves, shared between a and b, every unit once.
    const drains = [forA, forB].map((x) => x.ports['ns/s:p']?.drains.e1 ?? 0);
    expect(drains[0]! + drains[1]!).toBe(2);
    expect([
      ...(forA.ports['ns/s:p']?.destinations ?? []),
      ...(forB.ports['ns/s:p']?.destinations ?? []),
    ]).toEqual(['e2', 'e2']);
    expect(parseAnswer(JSON.stringify(forA))).toEqual(forA);
  });

  it('a follower unknown to the aggregator yet gets counts and no plan', () => {
    const x = answerFor('new', 'agg', 3, cache, ['ns/s:p']).ports['ns/s:p'];
    expect(x).toMatchObject({
      others: { e1: 4 },
      nodes: 4,
      drains: {},
      destinations: [],
      basis: 0,
    });
  });

  it.each([
    ['not JSON', '{'],
    ['a report, not an answer', '{"node":"a","seq":1,"ports":{}}'],
    [
      'a negative count',
      '{"aggregator":"x","seq":1,"ports":{"p":{"others":{"e":-1},"drains":{},"destinations":[],"nodes":1,"skew":1,"basis":0}}}',
    ],
    [
      'a destination that is no string',
      '{"aggregator":"x","seq":1,"ports":{"p":{"others":{},"drains":{},"destinations":[1],"nodes":1,"skew":1,"basis":0}}}',
    ],
  ])('refuses %s', (_what, text) => {
    expect(() => parseAnswer(text)).toThrow(BadReport);
  });
});
