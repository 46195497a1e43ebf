import type { RebalanceEndpoint } from './rebalance.js';

/**
 * The rebalance across the cluster: from every node's active connections per endpoint of one
 * Service port, decide which node drains which connections, and where each drained client
 * should land, so that the cluster reaches balance in about the minimum number of moves.
 *
 * Every node runs this on the same view and reads off its own part; the choice is
 * deterministic, so no two nodes drain the same excess and no coordination is needed:
 * 1. Final counts: each endpoint gets floor(N × weight / Σweights) of the N connections; the
 *    remainder goes one each to the endpoints that hold the most now (ties by key), so no
 *    endpoint that is already at its ceiling moves.
 * 2. Excess units: an endpoint above its final count gives up the difference. Its holders are
 *    ordered by a hash of node and endpoint (so the same node is not always the one to drain),
 *    and the first ones in that order drain.
 * 3. Destinations: the units, in order (endpoint key, then holder order), are matched one to one
 *    with the missing slots of the endpoints below their final count, in key order.
 * A node acts when max − min ≥ 2 (equal weights): a single connection on a node moves whenever
 * the cluster needs it, whatever the node's own counts look like. Pure.
 */

export interface ClusterRebalancePlan {
  /** Connections this node drains, by endpoint. */
  readonly drains: ReadonlyMap<string, number>;
  /** Endpoints this node's next connections should go to, one per drain, in order. */
  readonly destinations: readonly string[];
  /** Connections moved cluster-wide by the plan (this node's and the others'). */
  readonly moves: number;
  /** Connections of the Service port cluster-wide (eligible endpoints only). */
  readonly total: number;
  /** max(count / fair share) over the endpoints: the weighted form of max/mean; 1 when idle. */
  readonly skew: number;
}

/** 32-bit FNV-1a: a stable, cheap order of (node, endpoint) pairs. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Plans one Service port for every node. `counts` holds each node's active connections per
 * endpoint; endpoints not in `endpoints` (not eligible) are ignored: the drains of leaving
 * endpoints handle them.
 */
export function planClusterRebalanceAll(
  endpoints: readonly RebalanceEndpoint[],
  counts: ReadonlyMap<string, ReadonlyMap<string, number>>,
): ClusterRebalanceAll {
  const none = (total: number, skew: number): ClusterRebalanceAll => ({
    nodes: new Map(),
    moves: 0,
    total,
    skew,
  });
  const eps = [...endpoints].sort((a, b) => byKey(a.key, b.key));
  const totals = new Map<string, number>(eps.map((e) => [e.key, 0]));
  for (const row of counts.values())
    for (const [ep, n] of row)
      if (totals.has(ep) && n > 0) totals.set(ep, (totals.get(ep) ?? 0) + n);
  let total = 0;
  let weights = 0;
  for (const e of eps) {
    total += totals.get(e.key) ?? 0;
    weights += e.weight;
  }
  if (eps.length === 0 || total === 0 || weights <= 0) return none(total, 1);
  let skew = 0;
  const final = new Map<string, number>();
  let assigned = 0;
  for (const e of eps) {
    const share = (total * e.weight) / weights;
    const have = totals.get(e.key) ?? 0;
    skew = Math.max(skew, share > 0 ? have / share : have > 0 ? Number.POSITIVE_INFINITY : 0);
    const f = Math.floor(share);
    final.set(e.key, f);
    assigned += f;
  }
  // The remainder: to the endpoints holding most now, so the ones already at a ceiling stay.
  const byLoad = [...eps].sort(
    (a, b) => (totals.get(b.key) ?? 0) - (totals.get(a.key) ?? 0) || byKey(a.key, b.key),
  );
  for (let i = 0; i < total - assigned; i++) {
    const k = (byLoad[i % byLoad.length] as RebalanceEndpoint).key;
    final.set(k, (final.get(k) ?? 0) + 1);
  }
  // Excess units in a fixed order: endpoint key, then holders by hash of node and endpoint.
  const units: { node: string; endpoint: string }[] = [];
  for (const e of eps) {
    let excess = (totals.get(e.key) ?? 0) - (final.get(e.key) ?? 0);
    if (excess <= 0) continue;
    const holders = [...counts]
      .map(([node, row]) => ({ node, n: row.get(e.key) ?? 0, h: fnv1a(`${node}|${e.key}`) }))
      .filter((x) => x.n > 0)
      .sort((a, b) => a.h - b.h || byKey(a.node, b.node));
    for (const x of holders) {
      for (let i = 0; i < x.n && excess > 0; i++, excess--)
        units.push({ node: x.node, endpoint: e.key });
      if (excess <= 0) break;
    }
  }
  const slots: string[] = [];
  for (const e of eps) {
    const missing = (final.get(e.key) ?? 0) - (totals.get(e.key) ?? 0);
    for (let i = 0; i < missing; i++) slots.push(e.key);
  }
  if (units.length === 0) return none(total, skew);
  const nodes = new Map<string, { drains: Map<string, number>; destinations: string[] }>();
  units.forEach((u, i) => {
    let n = nodes.get(u.node);
    if (n === undefined) nodes.set(u.node, (n = { drains: new Map(), destinations: [] }));
    n.drains.set(u.endpoint, (n.drains.get(u.endpoint) ?? 0) + 1);
    const to = slots[i];
    if (to !== undefined) n.destinations.push(to);
  });
  return { nodes, moves: units.length, total, skew };
}

/** Every node's part of the plan at once (the aggregator's use): O(nodes × endpoints). */
export interface ClusterRebalanceAll {
  /** Nodes with something to do: their drains and destinations. */
  readonly nodes: ReadonlyMap<
    string,
    { readonly drains: ReadonlyMap<string, number>; readonly destinations: readonly string[] }
  >;
  readonly moves: number;
  readonly total: number;
  readonly skew: number;
}

/**
 * Plans one Service port. `counts` holds each node's active connections per endpoint (this
 * node's live counts included under `self`); endpoints not in `endpoints` (not eligible) are
 * ignored: the drains of leaving endpoints handle them.
 */
export function planClusterRebalance(
  endpoints: readonly RebalanceEndpoint[],
  counts: ReadonlyMap<string, ReadonlyMap<string, number>>,
  self: string,
): ClusterRebalancePlan {
  const all = planClusterRebalanceAll(endpoints, counts);
  const mine = all.nodes.get(self);
  return {
    drains: mine?.drains ?? new Map(),
    destinations: mine?.destinations ?? [],
    moves: all.moves,
    total: all.total,
    skew: all.skew,
  };
}
