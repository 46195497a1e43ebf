import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HEADER_SIGNATURE, signRequest, signResponse, verify } from '../../src/cluster/auth.js';
import { BadReport, buildReport, parseReport, REPORT_LIMITS } from '../../src/cluster/report.js';
import { ClusterView, sumActive } from '../../src/cluster/view.js';
import { planClusterRebalance } from '../../src/drain/cluster-rebalance.js';
import { DrainPlanner, DrainReason } from '../../src/drain/planner.js';
import { LeastConnBalancer } from '../../src/balancer/least-conn.js';
import type { Endpoint } from '../../src/servicetable/types.js';
import { tableEndpoint } from '../support/table-endpoint.js';

const SECRET = Buffer.from('0123456789abcdef0123');

describe('peer authentication (HMAC-SHA256)', () => {
  const body = Buffer.from('{"node":"a"}');
  const sig = signRequest(SECRET, 'POST', '/cluster/v1/report', 1000, body);
  const expected =
    (b: Buffer, secret = SECRET) =>
    (ts: number) =>
      signRequest(secret, 'POST', '/cluster/v1/report', ts, b);

  it('accepts a request signed with the secret, within the window', () => {
    expect(verify({ timestamp: '1000', signature: sig }, expected(body), 20_000)).toBeUndefined();
  });

  it.each([
    ['no signature', { timestamp: '1000', signature: undefined }, body, SECRET, 'missing'],
    ['no timestamp', { timestamp: undefined, signature: sig }, body, SECRET, 'missing'],
    [
      'another secret',
      { timestamp: '1000', signature: sig },
      body,
      Buffer.from('x'.repeat(20)),
      'bad_signature',
    ],
    [
      'a changed body',
      { timestamp: '1000', signature: sig },
      Buffer.from('{"node":"b"}'),
      SECRET,
      'bad_signature',
    ],
    ['a changed timestamp', { timestamp: '1001', signature: sig }, body, SECRET, 'bad_signature'],
    [
      'a timestamp that is no number',
      { timestamp: '1e3', signature: sig },
      body,
      SECRET,
      'bad_signature',
    ],
  ] as const)('refuses %s', (_what, headers, b, secret, want) => {
    expect(verify(headers, expected(b, secret), 1000)).toBe(want);
  });

  it('refuses a correctly signed request outside the window (replay)', () => {
    expect(verify({ timestamp: '1000', signature: sig }, expected(body), 1000 + 30_001)).toBe(
      'stale',
    );
  });

  it('a response is bound to its request', () => {
    const res = signResponse(SECRET, sig, 200, 1000, body);
    const other = signRequest(SECRET, 'POST', '/cluster/v1/report', 1000, Buffer.from('{}'));
    expect(
      verify(
        { timestamp: '1000', signature: res },
        (t) => signResponse(SECRET, sig, 200, t, body),
        1000,
      ),
    ).toBeUndefined();
    expect(
      verify(
        { timestamp: '1000', signature: res },
        (t) => signResponse(SECRET, other, 200, t, body),
        1000,
      ),
    ).toBe('bad_signature');
    // A request signature does not pass as a response one.
    expect(
      verify(
        { timestamp: '1000', signature: sig },
        (t) => signResponse(SECRET, sig, 200, t, body),
        1000,
      ),
    ).toBe('bad_signature');
    expect(HEADER_SIGNATURE).toBe('x-klp-signature');
  });
});

describe('reports', () => {
  it('round-trips, leaves out idle endpoints and adds up Service ports that share a key', () => {
    const r = buildReport('n1', 7, [
      {
        servicePort: 'ns/a:grpc',
        endpoints: [
          { key: '10.0.0.1:9000', active: 2, draining: 1 },
          { key: '10.0.0.2:9000', active: 0, draining: 0 },
        ],
      },
      { servicePort: 'ns/a:grpc', endpoints: [{ key: '10.0.0.1:9000', active: 1, draining: 0 }] },
      { servicePort: 'ns/b:grpc', endpoints: [] },
    ]);
    expect(r).toEqual({
      node: 'n1',
      seq: 7,
      ports: { 'ns/a:grpc': { '10.0.0.1:9000': [3, 1] }, 'ns/b:grpc': {} },
    });
    expect(parseReport(JSON.stringify(r))).toEqual(r);
  });

  it.each([
    ['not JSON', '{', 'json'],
    ['not an object', '[]', 'shape'],
    ['no node', '{"seq":1,"ports":{}}', 'shape'],
    ['a negative count', '{"node":"a","seq":1,"ports":{"p":{"e":[-1,0]}}}', 'shape'],
    ['a fractional count', '{"node":"a","seq":1,"ports":{"p":{"e":[1.5,0]}}}', 'shape'],
    ['three counts', '{"node":"a","seq":1,"ports":{"p":{"e":[1,0,0]}}}', 'shape'],
    [
      'a huge count',
      `{"node":"a","seq":1,"ports":{"p":{"e":[${REPORT_LIMITS.count + 1},0]}}}`,
      'shape',
    ],
  ])('refuses %s', (_what, text, reason) => {
    expect(() => parseReport(text)).toThrow(BadReport);
    try {
      parseReport(text);
    } catch (err) {
      expect((err as BadReport).reason).toBe(reason);
    }
  });

  it('refuses more Service ports than the limit', () => {
    const ports: Record<string, object> = {};
    for (let i = 0; i <= REPORT_LIMITS.servicePorts; i++) ports[`ns/s${i}`] = {};
    expect(() => parseReport(JSON.stringify({ node: 'a', seq: 1, ports }))).toThrow(/more than/);
  });
});

describe('ClusterView', () => {
  const rep = (node: string, n: number) => ({
    node,
    seq: 1,
    ports: { p: { e1: [n, 0] as const } },
  });

  it('keeps the newest report per node, never its own', () => {
    const v = new ClusterView('self', 6000);
    expect(v.accept(rep('a', 1), 100, 0)).toBe(true);
    expect(v.accept(rep('a', 9), 50, 10)).toBe(false);
    expect(v.accept(rep('a', 2), 150, 20)).toBe(true);
    expect(v.accept(rep('self', 5), 200, 20)).toBe(false);
    expect(sumActive(v.perNode('p', 20).values())).toEqual(new Map([['e1', 2]]));
  });

  it('is fresh while some report is at most 3 intervals old; stale reports do not count', () => {
    const v = new ClusterView('self', 6000);
    expect(v.isFresh(0)).toBe(false);
    v.accept(rep('a', 1), 0, 0);
    v.accept(rep('b', 2), 0, 4000);
    expect(v.isFresh(6000)).toBe(true);
    expect([...v.perNode('p', 6001).keys()]).toEqual(['b']);
    expect(v.peers(6001).map((p) => [p.node, p.fresh])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(v.isFresh(10_001)).toBe(false);
    expect(v.ageMs(10_001)).toBe(6001);
    v.prune(63_000);
    expect(v.peers(63_000).map((p) => p.node)).toEqual(['b']);
  });
});

const E = (...keys: string[]) => keys.map((key) => ({ key, weight: 1 }));
type Counts = Map<string, Map<string, number>>;

/** Runs every node's plan on the same view and applies all moves. */
function applyAll(eps: { key: string; weight: number }[], counts: Counts) {
  const after = new Map<string, number>(eps.map((e) => [e.key, 0]));
  for (const row of counts.values())
    for (const [e, n] of row) after.set(e, (after.get(e) ?? 0) + n);
  let drains = 0;
  const dest: string[] = [];
  let moves = 0;
  for (const [node, row] of counts) {
    const plan = planClusterRebalance(eps, counts, node);
    moves = plan.moves;
    for (const [e, n] of plan.drains) {
      expect(n).toBeLessThanOrEqual(row.get(e) ?? 0);
      after.set(e, (after.get(e) ?? 0) - n);
      drains += n;
    }
    expect(plan.destinations.length).toBe([...plan.drains.values()].reduce((a, b) => a + b, 0));
    dest.push(...plan.destinations);
  }
  for (const e of dest) after.set(e, (after.get(e) ?? 0) + 1);
  return { after, drains, moves, dest };
}

describe('planClusterRebalance', () => {
  it('12 nodes with one connection each, 3 busy pods and 3 new: 6 moves, one per node, 2 per pod after', () => {
    const eps = E('e1', 'e2', 'e3', 'e4', 'e5', 'e6');
    const counts: Counts = new Map();
    for (let i = 0; i < 12; i++) counts.set(`node-${i}`, new Map([[`e${(i % 3) + 1}`, 1]]));
    const { after, drains, moves, dest } = applyAll(eps, counts);
    expect(moves).toBe(6);
    expect(drains).toBe(6);
    expect(dest.sort()).toEqual(['e4', 'e4', 'e5', 'e5', 'e6', 'e6']);
    expect([...after.values()]).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it('does nothing when max - min <= 1', () => {
    const counts: Counts = new Map([
      [
        'a',
        new Map([
          ['e1', 2],
          ['e2', 1],
        ]),
      ],
      [
        'b',
        new Map([
          ['e1', 1],
          ['e2', 2],
          ['e3', 2],
          ['e4', 2],
        ]),
      ],
    ]);
    const plan = planClusterRebalance(E('e1', 'e2', 'e3', 'e4'), counts, 'a');
    expect(plan.moves).toBe(0);
    expect(plan.skew).toBe(3 / 2.5);
  });

  it('moves a single connection when the cluster needs it (3,1 over two pods: 1 move)', () => {
    const counts: Counts = new Map([
      ['a', new Map([['e1', 1]])],
      ['b', new Map([['e1', 1]])],
      ['c', new Map([['e1', 1]])],
      ['d', new Map([['e2', 1]])],
    ]);
    const { after, moves } = applyAll(E('e1', 'e2'), counts);
    expect(moves).toBe(1);
    expect([...after.values()]).toEqual([2, 2]);
  });

  it('is the same whatever order the view lists the nodes in', () => {
    const rows: [string, Map<string, number>][] = [
      ['a', new Map([['e1', 3]])],
      [
        'b',
        new Map([
          ['e1', 2],
          ['e2', 1],
        ]),
      ],
      ['c', new Map([['e1', 2]])],
    ];
    const eps = E('e1', 'e2', 'e3');
    for (const self of ['a', 'b', 'c']) {
      const x = planClusterRebalance(eps, new Map(rows), self);
      const y = planClusterRebalance(eps, new Map([...rows].reverse()), self);
      expect(y).toEqual(x);
    }
  });

  it('ignores endpoints that are not eligible (their drains are the leaving-endpoint rule)', () => {
    const counts: Counts = new Map([
      [
        'a',
        new Map([
          ['gone', 5],
          ['e1', 1],
        ]),
      ],
    ]);
    const plan = planClusterRebalance(E('e1', 'e2'), counts, 'a');
    expect(plan.total).toBe(1);
    expect(plan.moves).toBe(0);
  });

  it('gives a slow-starting endpoint its weighted share', () => {
    const counts: Counts = new Map([['a', new Map([['e1', 9]])]]);
    const eps = [
      { key: 'e1', weight: 1 },
      { key: 'e2', weight: 0.5 },
    ];
    const { after } = applyAll(eps, counts);
    expect(after).toEqual(
      new Map([
        ['e1', 6],
        ['e2', 3],
      ]),
    );
  });

  it('property: all nodes together reach max - min <= 1 with the fewest moves', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 8, maxLength: 8 }), {
          minLength: 1,
          maxLength: 12,
        }),
        (m, rows) => {
          const eps = E(...Array.from({ length: m }, (_, i) => `e${i}`));
          const counts: Counts = new Map(
            rows.map((r, i) => [`n${i}`, new Map(r.slice(0, m).map((n, j) => [`e${j}`, n]))]),
          );
          const before = new Map<string, number>();
          for (const row of counts.values())
            for (const [e, n] of row) before.set(e, (before.get(e) ?? 0) + n);
          const { after, drains, moves } = applyAll(eps, counts);
          const v = [...after.values()];
          expect(Math.max(...v) - Math.min(...v)).toBeLessThanOrEqual(1);
          expect(drains).toBe(moves);
          // Fewest: every endpoint above ceil(mean) must lose at least its excess over it.
          const total = [...before.values()].reduce((a, b) => a + b, 0);
          const ceil = Math.ceil(total / m);
          const lower = [...before.values()].reduce((a, n) => a + Math.max(0, n - ceil), 0);
          const floor = Math.floor(total / m);
          const upper = [...before.values()].reduce((a, n) => a + Math.max(0, n - floor), 0);
          expect(moves).toBeGreaterThanOrEqual(lower);
          expect(moves).toBeLessThanOrEqual(upper);
          if (
            Math.max(...before.values(), 0) -
              Math.min(...[...before.values(), ...(before.size < m ? [0] : [])]) <=
            1
          )
            expect(moves).toBe(0);
        },
      ),
    );
  });
});

function endpoint(key: string, eligible = true): Endpoint {
  const [address, port] = key.split(':') as [string, string];
  return tableEndpoint(address, Number(port), 'ready', eligible);
}

describe('balancer: cluster estimates', () => {
  const A = '10.0.0.1:9000';
  const B = '10.0.0.2:9000';
  const C = '10.0.0.3:9000';
  const make = () => {
    const b = new LeastConnBalancer({ random: () => 0 });
    b.update([endpoint(A), endpoint(B), endpoint(C)]);
    return b;
  };
  const picks = (b: LeastConnBalancer, n: number) =>
    Array.from({ length: n }, () => {
      const s = b.pick();
      if (s === undefined) throw new Error('none');
      return s.key;
    });

  it("scores the other nodes' counts plus this node's live ones", () => {
    const b = make();
    b.setCluster(
      new Map([
        [A, 3],
        [B, 3],
      ]),
      0,
    );
    expect(picks(b, 3)).toEqual([C, C, C]);
    // 3 + 0 local each now: ties rotate.
    expect(new Set(picks(b, 3))).toEqual(new Set([A, B, C]));
  });

  it('bounds herding: each pick adds the expected picks of the other nodes', () => {
    const b = make();
    b.setCluster(
      new Map([
        [A, 4],
        [B, 4],
      ]),
      11,
    );
    const [first, second] = picks(b, 2);
    expect(first).toBe(C);
    expect(second).not.toBe(C);
    // Without the bound every node would keep sending its new connections to C until the next sync.
    const h = make();
    h.setCluster(
      new Map([
        [A, 4],
        [B, 4],
      ]),
      0,
    );
    expect(picks(h, 4)).toEqual([C, C, C, C]);
  });

  it('falls back to node-local counts when the view goes stale', () => {
    const b = make();
    b.setCluster(
      new Map([
        [A, 10],
        [B, 10],
      ]),
      3,
    );
    b.setCluster(undefined);
    expect(new Set(picks(b, 3))).toEqual(new Set([A, B, C]));
    expect([...b.endpoints()].map((e) => e.remote)).toEqual([0, 0, 0]);
  });

  it('sends the next connections to the reserved destinations first, skipping unusable ones', () => {
    const b = make();
    b.setCluster(new Map([[C, 9]]), 0, [C, '10.9.9.9:1', C]);
    expect(picks(b, 2)).toEqual([C, C]);
    expect(b.reservations).toEqual([]);
    expect(picks(b, 1)).not.toEqual([C]);
    b.setCluster(new Map(), 0, [A]);
    const a = b.get(A);
    expect(b.pick(new Set(a === undefined ? [] : [a]))?.key).not.toBe(A);
  });
});

describe('planner: cluster drains', () => {
  const planner = () =>
    new DrainPlanner({
      maxAgeMs: 0,
      ageJitter: 0,
      budget: { maxConcurrent: { percent: 100 }, ratePerSec: 0 },
      rebalanceThreshold: 1.2,
      random: () => 0.5,
    });

  it("carries out this node's share once, oldest first, and plans nothing else in cluster mode", () => {
    const p = planner();
    for (let i = 1; i <= 10; i++) p.add(i, 'sp', 'a', i, 10);
    p.setEndpoints(
      'sp',
      [
        { key: 'a', weight: 1 },
        { key: 'b', weight: 1 },
      ],
      10,
    );
    p.setClusterDrains('sp', new Map([['a', 2]]), 10);
    expect(p.isRebalancing('sp')).toBe(true);
    expect(p.tick(20)).toEqual([
      { id: 1, reason: DrainReason.REBALANCE },
      { id: 2, reason: DrainReason.REBALANCE },
    ]);
    // The node-local rule would drain more of 8 vs 0; in cluster mode only the share counts.
    expect(p.tick(30)).toEqual([]);
    // Back to node-local counts: the local rebalance starts.
    p.setClusterDrains('sp', undefined, 40);
    expect(p.tick(50).length).toBeGreaterThan(0);
  });

  it('keeps within the budget and does not carry the rest over', () => {
    const p = new DrainPlanner({
      maxAgeMs: 0,
      ageJitter: 0,
      budget: { maxConcurrent: { count: 1 }, ratePerSec: 0 },
      rebalanceThreshold: 1.2,
      random: () => 0.5,
    });
    for (let i = 1; i <= 4; i++) p.add(i, 'sp', 'a', i, 10);
    p.setClusterDrains('sp', new Map([['a', 3]]), 10);
    expect(p.tick(20)).toHaveLength(1);
    p.remove(1);
    expect(p.tick(30)).toEqual([]);
  });
});
