/** An eligible endpoint of a Service port, as the rebalance sees it. */
export interface RebalanceEndpoint {
  readonly key: string;
  /** The balancer's effective weight (below 1 while slow start ramps it). */
  readonly weight: number;
}

export interface RebalanceInput extends RebalanceEndpoint {
  /** Open h2c connections that are not draining. */
  readonly active: number;
}

export interface RebalancePlan {
  /** Whether the Service port is (still) rebalancing after this plan. */
  readonly rebalancing: boolean;
  /** How many connections to drain from each over-loaded endpoint, busiest first. */
  readonly excess: ReadonlyMap<string, number>;
  /** max(active / target) over the endpoints: the weighted form of max/mean. */
  readonly skew: number;
}

/** Start only when the busiest endpoint is at least this many connections above its target. */
export const REBALANCE_MIN_EXCESS = 2;

/**
 * Plans a rebalance of one Service port's h2c connections. `total` counts every h2c connection of
 * the port, draining ones included: each drained client comes back with one new connection, so
 * counting only active ones would shrink the targets mid-rebalance and drain too many. Each
 * endpoint's target is its weight's share of `total` (so a slow-starting endpoint's target grows
 * with its ramp). A rebalance starts when skew passes `threshold` and the busiest endpoint is at least
 * REBALANCE_MIN_EXCESS above its target; it then drains connections from endpoints above
 * ceil(target) until none is, and only then stops (hysteresis: it never starts on small
 * differences, and it never drains an endpoint below its target). Drained clients reconnect
 * through least connection and land on the emptiest endpoints. Pure.
 */
export function planRebalance(
  endpoints: readonly RebalanceInput[],
  total: number,
  threshold: number,
  rebalancing: boolean,
): RebalancePlan {
  const none = (skew: number): RebalancePlan => ({ rebalancing: false, excess: new Map(), skew });
  let weights = 0;
  for (const e of endpoints) weights += e.weight;
  if (endpoints.length < 2 || total === 0 || weights <= 0) return none(1);
  let skew = 0;
  let maxOver = 0;
  const over: { key: string; target: number; active: number; over: number }[] = [];
  for (const e of endpoints) {
    const target = (total * e.weight) / weights;
    skew = Math.max(skew, target > 0 ? e.active / target : Number.POSITIVE_INFINITY);
    maxOver = Math.max(maxOver, e.active - target);
    over.push({ key: e.key, target, active: e.active, over: e.active - target });
  }
  const start = skew > threshold && maxOver >= REBALANCE_MIN_EXCESS;
  if (!rebalancing && !start) return none(skew);
  const excess = new Map<string, number>();
  over.sort((a, b) => b.over - a.over);
  for (const e of over) {
    const n = e.active - Math.ceil(e.target);
    if (n > 0) excess.set(e.key, n);
  }
  return { rebalancing: excess.size > 0, excess, skew };
}
