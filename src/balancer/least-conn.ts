import type { Endpoint } from '../servicetable/types.js';
import { EndpointStats, type EndpointStatus } from './endpoint-stats.js';
import { IndexedMinHeap } from '../lib/indexed-heap.js';
import { Cell, SEQ_CELL, seqBefore, type SharedCounts } from './shared-counts.js';

/** Counting in shared memory (worker threads): where each endpoint's counts live. */
export interface SharedSlots {
  readonly counts: SharedCounts;
  /** This thread's region (see shared-counts.ts). */
  readonly region: number;
  /** The slot the main thread assigned to an endpoint of this Service port. */
  slotOf(endpoint: string): number | undefined;
}

export interface BalancerOptions {
  /** Uniform in [0, 1); injected for tests. Default Math.random. */
  readonly random?: () => number;
  /** Milliseconds clock; injected for tests. Default performance.now-free Date.now. */
  readonly now?: () => number;
  /** Slow start: a newly ready endpoint's weight ramps from 10% to 100% over this. 0 = off. */
  readonly slowStartWindowMs?: number;
  /** First ejection after a connect failure; doubles per failure in a row. Default 1 s. */
  readonly ejectBaseMs?: number;
  /** Longest ejection. Default 30 s. */
  readonly ejectMaxMs?: number;
  /**
   * Count in shared memory, node-wide (worker threads). Endpoints without a slot count in this
   * thread only. Unset: every count is this thread's.
   */
  readonly shared?: SharedSlots | undefined;
}

/** One endpoint whose status changed in an `update`. `previous` is undefined for new ones. */
export interface EndpointChange {
  readonly stats: EndpointStats;
  readonly previous: EndpointStatus | undefined;
  readonly current: EndpointStatus;
}

const byScoreThenSeq = (a: EndpointStats, b: EndpointStats): number =>
  a.score() - b.score() || a.seq - b.seq;

/**
 * Shared by every balancer as its empty ejected and ramping sets (a Service port that never
 * ejects nor ramps an endpoint, most of them, holds no set of its own). Never added to: `own`
 * replaces it first.
 */
const NONE: Set<EndpointStats> = new Set();

function own(set: Set<EndpointStats>): Set<EndpointStats> {
  return set === NONE ? new Set() : set;
}

/** Slow start's floor: a new endpoint starts at this fraction of its weight (as Envoy). */
export const SLOW_START_MIN_WEIGHT = 0.1;

/**
 * Least-connection balancing for one Service port, IPVS `lc`/`wlc` style: the endpoint with the
 * lowest `(active * 256 + draining) / weight` wins. Ties, the common case at reconnect, rotate:
 * the least recently picked tied endpoint wins, and endpoints that arrive together start in an
 * order rotated from a random point, so one client reconnecting visits every endpoint in turn
 * and many proxies that all see zero connections do not all choose the same pod.
 *
 * Picks are O(log n) in the number of eligible endpoints (an indexed heap), not a scan.
 * Endpoints whose dial failed are ejected for a while (1 s doubling to 30 s) unless nothing else
 * is left. The caller reports every connection's life through `pick`, `connected`,
 * `connectFailed`, `startDraining` and `closed`; counts return to exactly zero when every
 * connection has ended. A removed endpoint stays listed until its last connection closes.
 */
export class LeastConnBalancer {
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #slowStartMs: number;
  readonly #ejectBaseMs: number;
  readonly #ejectMaxMs: number;
  readonly #all = new Map<string, EndpointStats>();
  /** Eligible endpoints by score, ties by `seq` (lower first): the next pick is on top. */
  readonly #heap = new IndexedMinHeap<EndpointStats>(byScoreThenSeq);
  /** Ejected and slow-starting endpoints; rare, so these shared empty sets until needed. */
  #ejected: Set<EndpointStats> = NONE;
  #ramping: Set<EndpointStats> = NONE;
  #highSeq = 0;
  #lowSeq = 0;
  #updates = 0;
  /** Added to a picked endpoint's `remote` per pick (cluster view on); see setCluster. */
  #herdStep = 0;
  /** Endpoints the next connections go to, in order (cluster rebalance destinations). */
  #reserved: string[] = [];
  readonly #slots: SharedSlots | undefined;
  /**
   * Shared counts: the eligible endpoints' slots, for a scan that reads only the shared cells,
   * valid while every weight is 1 and no cluster estimate applies (`#scanPlain`); rebuilt after
   * any change of the eligible set, of weights or of estimates.
   */
  #scanSlots: Int32Array = new Int32Array(0);
  #scanEps: EndpointStats[] = [];
  #scanPlain = false;
  #scanStale = true;

  constructor(opts: BalancerOptions = {}) {
    this.#slots = opts.shared;
    this.#random = opts.random ?? Math.random;
    this.#now = opts.now ?? Date.now;
    this.#slowStartMs = opts.slowStartWindowMs ?? 0;
    this.#ejectBaseMs = opts.ejectBaseMs ?? 1000;
    this.#ejectMaxMs = opts.ejectMaxMs ?? 30_000;
  }

  /** Every endpoint with state or connections, in table order then removed ones. */
  endpoints(): IterableIterator<EndpointStats> {
    return this.#all.values();
  }

  get(key: string): EndpointStats | undefined {
    return this.#all.get(key);
  }

  /**
   * Applies a new endpoint list (a ServicePort's `endpoints`). Returns the endpoints whose
   * status changed. Connections already open are never touched here.
   */
  update(endpoints: readonly Endpoint[]): EndpointChange[] {
    const first = this.#updates++ === 0;
    const now = this.#now();
    const changes: EndpointChange[] = [];
    const seen = new Set<string>();
    const fresh: EndpointStats[] = [];
    for (const ep of endpoints) {
      seen.add(ep.key);
      let stats = this.#all.get(ep.key);
      const previous = stats?.status;
      if (stats === undefined) {
        stats = new EndpointStats(ep);
        const slot = this.#slots?.slotOf(ep.key);
        if (slot !== undefined && this.#slots !== undefined)
          stats.share({ counts: this.#slots.counts, slot, region: this.#slots.region });
        this.#all.set(ep.key, stats);
        fresh.push(stats);
      }
      stats.endpoint = ep;
      stats.status = ep.state;
      if (previous !== ep.state) changes.push({ stats, previous, current: ep.state });
      // Slow start applies to endpoints that turn ready after the first table, as in Envoy:
      // at start every endpoint is old.
      if (!first && ep.state === 'ready' && previous !== 'ready' && this.#slowStartMs > 0) {
        stats.rampStart = now;
        this.#ramping = own(this.#ramping);
        this.#ramping.add(stats);
        this.#scanStale = true;
      } else if (ep.state !== 'ready') {
        this.#endRamp(stats);
      }
      this.#setEligible(stats, ep.eligible);
    }
    for (const stats of [...this.#all.values()]) {
      if (seen.has(stats.key)) continue;
      if (stats.status !== 'removed') {
        changes.push({ stats, previous: stats.status, current: 'removed' });
        stats.status = 'removed';
        this.#setEligible(stats, false);
        this.#endRamp(stats);
      }
      this.#forgetIfIdle(stats);
    }
    this.#placeFresh(fresh);
    this.#refreshRamps();
    return changes;
  }

  /**
   * Chooses the endpoint for a new connection and counts it as active. `exclude` holds
   * endpoints this connection already failed to reach. Undefined when none is eligible.
   */
  pick(exclude?: ReadonlySet<EndpointStats>): EndpointStats | undefined {
    this.#readmitEjected();
    this.#refreshRamps();
    const reserved = this.#takeReserved(exclude);
    if (reserved !== undefined) {
      reserved.addActive(1);
      this.#touch(reserved);
      return reserved;
    }
    if (this.#slots !== undefined) return this.#pickShared(exclude);
    let chosen = this.#heap.peek();
    if (chosen !== undefined && exclude?.has(chosen)) {
      const skipped: EndpointStats[] = [];
      while ((chosen = this.#heap.pop()) !== undefined && exclude.has(chosen)) skipped.push(chosen);
      if (chosen !== undefined) this.#heap.push(chosen);
      for (const s of skipped) this.#heap.push(s);
    }
    if (chosen === undefined) chosen = this.#leastEjected(exclude);
    if (chosen === undefined) return undefined;
    chosen.addActive(1);
    chosen.remote += this.#herdStep;
    this.#touch(chosen);
    return chosen;
  }

  /**
   * Restores the heap order after `ep`'s score or tie-break changed. Not with shared counts:
   * their picks scan (other threads move the counts, so no order would hold).
   */
  #fix(ep: EndpointStats): void {
    if (this.#slots === undefined) this.#heap.fix(ep);
  }

  /** See `#scanSlots`. */
  #rebuildScan(): void {
    const eps = [...this.#heap.items];
    this.#scanEps = eps;
    this.#scanSlots = Int32Array.from(eps, (ep) => ep.shared?.slot ?? -1);
    this.#scanPlain =
      this.#herdStep === 0 &&
      eps.every((ep) => ep.shared !== undefined && ep.weight === 1 && ep.remote === 0);
    this.#scanStale = false;
  }

  /** Marks `ep` as just picked: it goes last among ties (rotation). */
  #touch(ep: EndpointStats): void {
    const shared = ep.shared;
    if (shared !== undefined) shared.counts.touch(shared.slot);
    else ep.seq = ++this.#highSeq;
    this.#fix(ep);
  }

  /**
   * The pick with shared counts (worker threads): other threads change the counts under the
   * heap, so its order cannot be trusted; the eligible endpoints are scanned instead, reading
   * the node-wide counts. O(endpoints) per connection. Two threads picking at the same instant
   * may both choose the same endpoint (IPVS's per-CPU picks race the same way); sequential
   * connections always see each other.
   */
  #pickShared(exclude?: ReadonlySet<EndpointStats>): EndpointStats | undefined {
    if (this.#scanStale) this.#rebuildScan();
    if (this.#scanPlain && exclude === undefined && this.#scanEps.length > 0) {
      const { cells, stride } = (this.#slots as SharedSlots).counts;
      const slots = this.#scanSlots;
      let bestAt = -1;
      let bestScore = 0;
      let bestSeq = 0;
      // Plain reads, not Atomics.load: an aligned Int32 read of shared memory is tear-free (it
      // sees a value some thread wrote, perhaps a moment old, as a concurrent pick would), and
      // it is about 8 times cheaper in V8 (3 ns an endpoint against 26). Writes stay atomic.
      for (let i = 0; i < slots.length; i++) {
        const base = (slots[i] as number) * stride;
        const score =
          (cells[base + Cell.ACTIVE] as number) * 256 + (cells[base + Cell.DRAINING] as number);
        const seq = cells[base + SEQ_CELL] as number;
        if (bestAt < 0 || score < bestScore || (score === bestScore && seqBefore(seq, bestSeq))) {
          bestAt = i;
          bestScore = score;
          bestSeq = seq;
        }
      }
      const best = this.#scanEps[bestAt] as EndpointStats;
      best.addActive(1);
      this.#touch(best);
      return best;
    }
    let best: EndpointStats | undefined;
    let bestScore = 0;
    let bestSeq = 0;
    const items = this.#heap.items;
    for (let i = 0; i < items.length; i++) {
      const ep = items[i] as EndpointStats;
      if (exclude !== undefined && exclude.has(ep)) continue;
      const shared = ep.shared;
      const score = shared === undefined ? ep.score() : shared.counts.score(shared.slot, ep);
      const seq = shared === undefined ? ep.seq : shared.counts.seq(shared.slot);
      if (
        best === undefined ||
        score < bestScore ||
        (score === bestScore && seqBefore(seq, bestSeq))
      ) {
        best = ep;
        bestScore = score;
        bestSeq = seq;
      }
    }
    best ??= this.#leastEjected(exclude);
    if (best === undefined) return undefined;
    best.addActive(1);
    best.remote += this.#herdStep;
    this.#touch(best);
    return best;
  }

  /**
   * Cluster estimates. `others` holds, per endpoint key, the active connections the other nodes
   * held at the last sync of the cluster view; undefined means the view is off or stale, and
   * picks use this node's counts alone (the node-local behaviour). An endpoint's score then uses
   * `others + this node's live count`: local deltas are never stale.
   *
   * `herdStep` bounds herding: between two syncs every node sees the same emptiest endpoint (a
   * new pod). Each pick this node makes until the next sync adds `herdStep` to the picked
   * endpoint's estimate, standing for the picks the other nodes are expected to make in the
   * meantime (it is the number of other nodes serving the Service port, the pessimistic case).
   * The next call resets the estimates from fresh counts.
   *
   * `reserved` endpoints take this node's next connections, one each, in order: the
   * destinations the cluster rebalance chose for the clients it drains here. A reservation that
   * cannot be used (endpoint gone, ejected, excluded) is skipped. O(n log n) per call; picks stay
   * O(log n).
   */
  setCluster(
    others: ReadonlyMap<string, number> | undefined,
    herdStep = 0,
    reserved: readonly string[] = [],
  ): void {
    this.#herdStep = others === undefined ? 0 : Math.max(0, herdStep);
    this.#scanStale = true;
    this.#reserved = others === undefined ? [] : [...reserved];
    for (const ep of this.#all.values()) {
      const r = others?.get(ep.key) ?? 0;
      if (ep.remote !== r) {
        ep.remote = r;
        this.#fix(ep);
      }
    }
  }

  /** Reservations not yet used, for /debug/state and tests. */
  get reservations(): readonly string[] {
    return this.#reserved;
  }

  #takeReserved(exclude?: ReadonlySet<EndpointStats>): EndpointStats | undefined {
    while (this.#reserved.length > 0) {
      const ep = this.#all.get(this.#reserved.shift() as string);
      if (ep !== undefined && ep.eligible && this.#heap.has(ep) && !exclude?.has(ep)) return ep;
    }
    return undefined;
  }

  /**
   * Brings slow-start weights up to date with the clock. Picks do this themselves; readers of
   * `weight` between picks (the rebalance, /debug/state) call it first.
   */
  refreshWeights(): void {
    this.#refreshRamps();
  }

  /**
   * Would a connection of endpoint `key` that starts draining now come straight back? True when,
   * with that connection counted as draining, `key` still scores strictly lower than every other
   * eligible endpoint (on a tie rotation may well send it elsewhere). False for unknown or
   * ineligible endpoints.
   */
  wouldPickAgain(key: string): boolean {
    const ep = this.#all.get(key);
    if (ep === undefined || !ep.eligible || ep.active < 1) return false;
    this.#refreshRamps();
    const after = ((ep.active - 1 + ep.remote) * 256 + ep.draining + 1) / ep.weight;
    for (const other of this.#heap) if (other !== ep && other.score() <= after) return false;
    for (const other of this.#ejected) if (other !== ep && other.score() <= after) return false;
    return true;
  }

  /**
   * The picked endpoint accepted the connection. An accept alone does not prove the endpoint
   * healthy (some accept and reset at once): `confirmed` ends a run of failures.
   */
  connected(ep: EndpointStats): void {
    ep.total++;
  }

  /**
   * The endpoint showed it works: it sent a byte, or a connection to it ended cleanly. Ends its
   * run of failures, so the next failure is ejected for the base time again.
   */
  confirmed(ep: EndpointStats): void {
    ep.consecutiveFailures = 0;
  }

  /** The dial to a picked endpoint failed: uncount it and eject the endpoint for a while. */
  connectFailed(ep: EndpointStats, reason: string): void {
    this.#fail(ep, reason);
    this.#release(ep, false);
  }

  /**
   * An established connection was reset by the endpoint before it sent any byte: eject the
   * endpoint as after a refused dial (same run of failures, same back-off). The connection still
   * counts until `closed`.
   */
  earlyReset(ep: EndpointStats): void {
    this.#fail(ep, 'early_reset'); // ConnectFailureReason.EARLY_RESET
  }

  #fail(ep: EndpointStats, reason: string): void {
    ep.countConnectFailure(reason);
    ep.consecutiveFailures++;
    const backoff = Math.min(
      this.#ejectMaxMs,
      this.#ejectBaseMs * 2 ** (ep.consecutiveFailures - 1),
    );
    ep.ejectedUntil = this.#now() + backoff;
    if (this.#heap.has(ep)) {
      this.#heap.remove(ep);
      this.#scanStale = true;
      this.#ejected = own(this.#ejected);
      this.#ejected.add(ep);
    }
  }

  /** An open connection starts draining: it moves from active to draining. */
  startDraining(ep: EndpointStats): void {
    ep.addActive(-1);
    ep.addDraining(1);
    this.#fix(ep);
  }

  /** An established connection ended. `draining` says which count it was in. */
  closed(ep: EndpointStats, draining: boolean): void {
    this.#release(ep, draining);
  }

  #release(ep: EndpointStats, draining: boolean): void {
    if (draining) ep.addDraining(-1);
    else ep.addActive(-1);
    this.#fix(ep);
    if (ep.status === 'removed') this.#forgetIfIdle(ep);
  }

  #forgetIfIdle(ep: EndpointStats): void {
    if (ep.active === 0 && ep.draining === 0) {
      this.#all.delete(ep.key);
      this.#ejected.delete(ep);
    }
  }

  #setEligible(ep: EndpointStats, eligible: boolean): void {
    ep.eligible = eligible;
    this.#scanStale = true;
    if (!eligible) {
      this.#heap.remove(ep);
      this.#ejected.delete(ep);
    } else if (!this.#heap.has(ep) && !this.#ejected.has(ep)) {
      if (ep.ejectedUntil > this.#now()) {
        this.#ejected = own(this.#ejected);
        this.#ejected.add(ep);
      } else this.#heap.push(ep);
    }
  }

  /**
   * New endpoints take tie-break positions before every existing one (they have never been
   * picked), in table order rotated from a random point.
   */
  #placeFresh(fresh: EndpointStats[]): void {
    const n = fresh.length;
    // Shared slots got their places from the main thread (SlotTable.assign).
    if (n === 0 || this.#slots !== undefined) return;
    const start = Math.floor(this.#random() * n) % n;
    for (let i = 0; i < n; i++) {
      const ep = fresh[(start + i) % n] as EndpointStats;
      ep.seq = this.#lowSeq - n + i;
      this.#fix(ep);
    }
    this.#lowSeq -= n;
  }

  #readmitEjected(): void {
    if (this.#ejected.size === 0) return;
    const now = this.#now();
    for (const ep of this.#ejected) {
      if (ep.ejectedUntil <= now) {
        this.#ejected.delete(ep);
        this.#heap.push(ep);
        this.#scanStale = true;
      }
    }
  }

  /** When every eligible endpoint is ejected, trying one beats failing the client. */
  #leastEjected(exclude?: ReadonlySet<EndpointStats>): EndpointStats | undefined {
    let best: EndpointStats | undefined;
    for (const ep of this.#ejected) {
      if (exclude?.has(ep)) continue;
      if (best === undefined || ep.ejectedUntil < best.ejectedUntil) best = ep;
    }
    return best;
  }

  #endRamp(ep: EndpointStats): void {
    if (ep.rampStart < 0) return;
    ep.rampStart = -1;
    ep.weight = 1;
    this.#ramping.delete(ep);
    this.#scanStale = true;
    this.#fix(ep);
  }

  #refreshRamps(): void {
    if (this.#ramping.size === 0) return;
    const now = this.#now();
    for (const ep of this.#ramping) {
      const f = (now - ep.rampStart) / this.#slowStartMs;
      if (f >= 1) {
        this.#endRamp(ep);
        continue;
      }
      const w = Math.max(SLOW_START_MIN_WEIGHT, f);
      if (w !== ep.weight) {
        ep.weight = w;
        this.#fix(ep);
      }
    }
  }
}
