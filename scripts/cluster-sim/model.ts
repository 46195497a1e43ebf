/**
 * A model of where gRPC clients spread over many nodes end up, per balancing policy. Pure: no
 * I/O, no clock; every random draw comes from the `random` the caller passes (seeded, so runs
 * repeat exactly). Time is simulated, in seconds.
 *
 * Each client has one long-lived connection, opened through its own node's proxy. Policies:
 * - `random`: kube-proxy, a uniform random pod per connection.
 * - `node-local`: the proxy's pick today. Per-node counts; ties go to the least recently picked
 *   endpoint, endpoints that arrive together start in table order rotated from a random point
 *   per proxy (as `LeastConnBalancer`). Plus today's node-local rebalance (`planRebalance`: starts
 *   when skew > 1.2 and an endpoint is 2 or more above its target on that node).
 * - `cluster`: a node's estimate of an endpoint = the other nodes' counts at the last sync + this
 *   node's live count. Picks are the least estimate (ties rotate as today), the better of two
 *   random endpoints (ties at random), which bounds herding between syncs, or `herd-step`: the
 *   least estimate where each pick since the sync also counts once per other node holding
 *   connections (they are assumed to pick alike), and drained clients go to destinations the
 *   plan reserved for them (the design in docs/design.md). After each sync, while
 *   the cluster-wide max - min >= 2, nodes holding connections on the over-loaded endpoints drain
 *   one connection each (at most one per node per sync), chosen by a rule every node computes
 *   alike from the same view; drained clients reconnect through their own node's pick.
 *
 * Simplifications, stated: every node syncs at the same instant (one round of the exchange);
 * a drained connection leaves its pod at once and its client reconnects `reconnectSeconds` later
 * (the next RPC); endpoints only get added (scale-out), never removed.
 */

/** How a node's proxy picks an endpoint from its estimates. */
export type ClusterPick = 'least' | 'two-choices' | 'herd-step';

/** A balancing policy. `syncSeconds` 0 means a live view (no delay). */
export type Policy =
  | { readonly kind: 'random' }
  | { readonly kind: 'node-local' }
  | { readonly kind: 'cluster'; readonly syncSeconds: number; readonly pick: ClusterPick };

/** One simulated run's setting. */
export interface Scenario {
  readonly nodes: number;
  readonly clientsPerNode: number;
  /** Ready pods at the start. */
  readonly pods: number;
  /** Pods after the scale-out; none when undefined. */
  readonly scaleTo?: number;
  /** When the scale-out happens (seconds). */
  readonly scaleOutAt?: number;
  /** Clients connect at uniform random times in [0, arrivalSeconds). */
  readonly arrivalSeconds: number;
  /** Times to sample skew and moves at (seconds, ascending, at most endSeconds). */
  readonly sampleAt: readonly number[];
  readonly endSeconds: number;
  /** A drained client reconnects after this long (its next RPC). Default 0.05 s (20 RPC/s). */
  readonly reconnectSeconds?: number;
}

/** Skew and moves at one sample time. */
export interface Sample {
  readonly t: number;
  /** max/mean connections over the ready pods (1 when there are none). */
  readonly skew: number;
  /** Drains so far (each one moves a client). */
  readonly moves: number;
}

/** What one run measured. */
export interface RunResult {
  readonly samples: readonly Sample[];
  /** Connections per pod at the end. */
  readonly counts: readonly number[];
  readonly moves: number;
}

/** The node-local rebalance's start threshold (the daemon's default `--rebalance-threshold`). */
export const NODE_LOCAL_REBALANCE_THRESHOLD = 1.2;
/** ... and its minimum excess over target (`REBALANCE_MIN_EXCESS`). */
export const NODE_LOCAL_MIN_EXCESS = 2;
/** The cluster rebalance runs while cluster-wide max - min is at least this. */
export const CLUSTER_MIN_SPREAD = 2;
/** How often the node-local rebalance (and, with a live view, the cluster one) plans. */
export const PLAN_INTERVAL_SECONDS = 1;

/** A small fast seeded PRNG (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** max/mean of `counts` (1 when there is nothing to compare). */
export function skewOf(counts: ArrayLike<number>, n = counts.length): number {
  let total = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const c = counts[i] as number;
    total += c;
    if (c > max) max = c;
  }
  return n === 0 || total === 0 ? 1 : max / (total / n);
}

/** Nearest-rank quantile (q in (0, 1]) of `values`. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

/**
 * Per-node tie rotation, as `LeastConnBalancer`: every pick stamps the endpoint with a rising
 * sequence number and ties go to the lowest; endpoints that arrive together get sequence numbers
 * below every existing one, in table order rotated from a random point.
 */
export class TieRotation {
  readonly #seq: Float64Array;
  readonly #high: Float64Array;
  readonly #low: Float64Array;
  readonly #width: number;

  constructor(nodes: number, width: number) {
    this.#seq = new Float64Array(nodes * width);
    this.#high = new Float64Array(nodes);
    this.#low = new Float64Array(nodes);
    this.#width = width;
  }

  /** Endpoints [from, to) arrive at node `n` together. */
  placeFresh(n: number, from: number, to: number, random: () => number): void {
    const k = to - from;
    if (k <= 0) return;
    const start = Math.floor(random() * k) % k;
    const low = this.#low[n] as number;
    for (let i = 0; i < k; i++) this.#seq[n * this.#width + from + ((start + i) % k)] = low - k + i;
    this.#low[n] = low - k;
  }

  /** Node `n` picks endpoint `e` without scoring (a reserved destination); returns `e`. */
  stamp(n: number, e: number): number {
    this.#high[n] = (this.#high[n] as number) + 1;
    this.#seq[n * this.#width + e] = this.#high[n] as number;
    return e;
  }

  /** Node `n` picks the endpoint in [0, pods) with the lowest score, ties rotated. */
  pick(n: number, pods: number, score: (e: number) => number): number {
    const base = n * this.#width;
    let best = 0;
    let bestScore = score(0);
    for (let e = 1; e < pods; e++) {
      const s = score(e);
      if (s < bestScore || (s === bestScore && this.#seq[base + e]! < this.#seq[base + best]!)) {
        best = e;
        bestScore = s;
      }
    }
    this.#high[n] = (this.#high[n] as number) + 1;
    this.#seq[base + best] = this.#high[n] as number;
    return best;
  }
}

// Event kinds (plain constants: Node runs this file by stripping types, which has no enums).
const Ev = { Arrive: 0, Reconnect: 1, Sync: 2, ScaleOut: 3, Sample: 4 } as const;
type Ev = (typeof Ev)[keyof typeof Ev];

interface Event {
  readonly t: number;
  readonly order: number;
  readonly kind: Ev;
  readonly arg: number;
}

/** A binary min-heap of events by time, then insertion order. */
class EventQueue {
  readonly #a: Event[] = [];
  #order = 0;
  push(t: number, kind: Ev, arg = 0): void {
    const a = this.#a;
    a.push({ t, order: this.#order++, kind, arg });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Event | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(x: Event, y: Event): boolean {
  return x.t < y.t || (x.t === y.t && x.order < y.order);
}

/** Runs `scenario` once under `policy`. */
export function simulate(policy: Policy, scenario: Scenario, random: () => number): RunResult {
  const N = scenario.nodes;
  const C = scenario.clientsPerNode;
  const W = Math.max(scenario.pods, scenario.scaleTo ?? 0);
  const reconnect = scenario.reconnectSeconds ?? 0.05;
  let pods = scenario.pods;
  /** Live connections per (node, endpoint), and per endpoint. */
  const local = new Int32Array(N * W);
  const totals = new Int32Array(W);
  /** The view at the last sync: per-endpoint totals, and each node's change since then. */
  const synced = new Int32Array(W);
  const sinceSync = new Int32Array(N * W);
  /** herd-step: picks per (node, endpoint) since the sync, other nodes holding connections then. */
  const picksSince = new Int32Array(N * W);
  const herdStep = new Int32Array(N);
  /** herd-step: each node's reserved destinations for its drained clients, in order. */
  const reserved: number[][] = Array.from({ length: N }, () => []);
  const herding = policy.kind === 'cluster' && policy.pick === 'herd-step';
  /** Each client's endpoint, -1 while it has none. */
  const at = new Int32Array(N * C).fill(-1);
  const rotation = new TieRotation(N, W);
  const rebalancing = new Uint8Array(N);
  const samples: Sample[] = [];
  let moves = 0;
  let round = 0;
  const live = policy.kind === 'cluster' && policy.syncSeconds === 0;

  const estimate = (n: number, e: number): number =>
    live
      ? (totals[e] as number)
      : (synced[e] as number) +
        (sinceSync[n * W + e] as number) +
        (picksSince[n * W + e] as number) * (herdStep[n] as number);

  const pick = (n: number): number => {
    switch (policy.kind) {
      case 'random':
        return Math.floor(random() * pods);
      case 'node-local':
        return rotation.pick(n, pods, (e) => local[n * W + e] as number);
      case 'cluster':
        if (policy.pick === 'herd-step') {
          const r = reserved[n]!;
          while (r.length > 0) {
            const e = r.shift() as number;
            if (e < pods) return rotation.stamp(n, e);
          }
        }
        if (policy.pick !== 'two-choices') return rotation.pick(n, pods, (e) => estimate(n, e));
        if (pods < 2) return 0;
        {
          const i = Math.floor(random() * pods);
          let j = Math.floor(random() * (pods - 1));
          if (j >= i) j++;
          const a = estimate(n, i);
          const b = estimate(n, j);
          return a < b ? i : b < a ? j : random() < 0.5 ? i : j;
        }
    }
  };

  const connect = (client: number): void => {
    const n = Math.floor(client / C);
    const e = pick(n);
    at[client] = e;
    local[n * W + e]!++;
    totals[e]!++;
    sinceSync[n * W + e]!++;
    picksSince[n * W + e]!++;
  };

  const q = new EventQueue();
  const drain = (n: number, e: number, now: number): void => {
    for (let c = n * C; c < (n + 1) * C; c++) {
      if (at[c] !== e) continue;
      at[c] = -1;
      local[n * W + e]!--;
      totals[e]!--;
      sinceSync[n * W + e]!--;
      moves++;
      q.push(now + reconnect, Ev.Reconnect, c);
      return;
    }
  };

  /** Today's rebalance, per node on its own counts (`planRebalance`, equal weights). */
  const nodeLocalRebalance = (now: number): void => {
    for (let n = 0; n < N; n++) {
      let total = 0;
      for (let e = 0; e < pods; e++) total += local[n * W + e] as number;
      if (total === 0 || pods < 2) {
        rebalancing[n] = 0;
        continue;
      }
      const target = total / pods;
      let maxOver = 0;
      for (let e = 0; e < pods; e++) maxOver = Math.max(maxOver, local[n * W + e]! - target);
      const start =
        (maxOver + target) / target > NODE_LOCAL_REBALANCE_THRESHOLD &&
        maxOver >= NODE_LOCAL_MIN_EXCESS;
      if (rebalancing[n] === 0 && !start) continue;
      let any = 0;
      for (let e = 0; e < pods; e++) {
        const excess = local[n * W + e]! - Math.ceil(target);
        for (let k = 0; k < excess; k++) drain(n, e, now);
        if (excess > 0) any = 1;
      }
      rebalancing[n] = any;
    }
  };

  /**
   * The cluster rebalance on a view every node shares: the balanced targets give the extra
   * connection to the busiest endpoints (so the moves are the fewest), and the excess of each
   * endpoint above its target is drained by that many of its holders, one per node, taken in an
   * order rotated per round and endpoint so no node is always the one to move. With herd-step,
   * each drain is matched, in order, with a missing slot of the endpoints below their target,
   * which the draining node reserves for its reconnecting client.
   */
  const clusterRebalance = (now: number): void => {
    round++;
    let total = 0;
    let max = 0;
    let min = Number.POSITIVE_INFINITY;
    for (let e = 0; e < pods; e++) {
      const c = totals[e] as number;
      total += c;
      max = Math.max(max, c);
      min = Math.min(min, c);
    }
    if (pods < 2 || max - min < CLUSTER_MIN_SPREAD) return;
    const order = Array.from({ length: pods }, (_, e) => e).sort(
      (a, b) => totals[b]! - totals[a]! || a - b,
    );
    const base = Math.floor(total / pods);
    const extra = total % pods;
    const slots: number[] = [];
    order.forEach((e, rank) => {
      const missing = base + (rank < extra ? 1 : 0) - totals[e]!;
      for (let k = 0; k < missing; k++) slots.push(e);
    });
    const busy = new Uint8Array(N);
    order.forEach((e, rank) => {
      let excess = totals[e]! - (base + (rank < extra ? 1 : 0));
      if (excess <= 0) return;
      const start = mix(round, e) % N;
      for (let i = 0; i < N && excess > 0; i++) {
        const n = (start + i) % N;
        if (busy[n] === 1 || local[n * W + e] === 0) continue;
        busy[n] = 1;
        const slot = slots.shift();
        if (herding && slot !== undefined) reserved[n]!.push(slot);
        drain(n, e, now);
        excess--;
      }
    });
  };

  const sync = (now: number): void => {
    synced.set(totals);
    sinceSync.fill(0);
    if (herding) {
      picksSince.fill(0);
      let holders = 0;
      const holds = new Uint8Array(N);
      for (let n = 0; n < N; n++) {
        for (let e = 0; e < pods && holds[n] === 0; e++) if (local[n * W + e]! > 0) holds[n] = 1;
        holders += holds[n]!;
      }
      for (let n = 0; n < N; n++) {
        herdStep[n] = holders - holds[n]!;
        reserved[n]!.length = 0;
      }
    }
    if (policy.kind === 'cluster') clusterRebalance(now);
    else if (policy.kind === 'node-local') nodeLocalRebalance(now);
  };

  for (let n = 0; n < N; n++) rotation.placeFresh(n, 0, pods, random);
  for (let c = 0; c < N * C; c++) q.push(random() * scenario.arrivalSeconds, Ev.Arrive, c);
  const period =
    policy.kind === 'cluster' && policy.syncSeconds > 0
      ? policy.syncSeconds
      : PLAN_INTERVAL_SECONDS;
  if (policy.kind !== 'random') q.push(random() * period, Ev.Sync);
  if (scenario.scaleTo !== undefined) q.push(scenario.scaleOutAt ?? 0, Ev.ScaleOut);
  for (const t of scenario.sampleAt) q.push(t, Ev.Sample);

  for (let ev = q.pop(); ev !== undefined && ev.t <= scenario.endSeconds; ev = q.pop()) {
    switch (ev.kind) {
      case Ev.Arrive:
      case Ev.Reconnect:
        connect(ev.arg);
        break;
      case Ev.Sync:
        sync(ev.t);
        q.push(ev.t + period, Ev.Sync);
        break;
      case Ev.ScaleOut: {
        const to = scenario.scaleTo ?? pods;
        for (let n = 0; n < N; n++) rotation.placeFresh(n, pods, to, random);
        pods = to;
        break;
      }
      case Ev.Sample:
        samples.push({ t: ev.t, skew: skewOf(totals, pods), moves });
        break;
    }
  }
  return { samples, counts: Array.from(totals.subarray(0, pods)), moves };
}

/** A deterministic 32-bit mix of two integers (every node computes the same). */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b);
  h ^= h >>> 16;
  return h >>> 0;
}
