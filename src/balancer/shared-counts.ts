/**
 * Per-endpoint connection counts in shared memory, so that least connection stays exact per
 * node when the data path runs on several threads (issue 11): every worker picks from the same
 * node-wide counts, as IPVS does from its one connection table.
 *
 * Layout: a SharedArrayBuffer of Int32 cells, slot-major. Slot 0 holds two global counters (the
 * tie-break sequence); every other slot is one endpoint of one Service port:
 *
 *   [active, draining, streams, seq,  active, draining, streams (region 0),  ... (region R-1)]
 *
 * The first three cells are the node-wide totals. Each writer (a worker, or the main thread for
 * the few connections it handles itself) also keeps its own share in its region, so that when a
 * worker dies its connections can be taken out of the totals (`forgetRegion`). Writers change a
 * count with two `Atomics.add` (total, then own share); readers read the totals. `seq` orders
 * ties: the endpoint picked least recently goes first (rotation), and new endpoints go before
 * every old one, in an order the main thread rotates from a random point.
 *
 * Slots are assigned and freed by the main thread only (see SlotTable). The buffer has a fixed
 * number of slots (MAX_SLOTS), mapped by the kernel as they are first used.
 */

/** Cells of the totals part of a slot, and where each count lives in a region. */
export const Cell = { ACTIVE: 0, DRAINING: 1, STREAMS: 2 } as const;
export type Cell = (typeof Cell)[keyof typeof Cell];
const TOTALS = 4;
/** Where a slot's tie-break sequence number is (after the three totals). */
export const SEQ_CELL = 3;
const SEQ = SEQ_CELL;
const PER_REGION = 3;
/** Global cells in slot 0. */
const HIGH_SEQ = 0;
const LOW_SEQ = 1;

/**
 * Slots of the buffer: endpoints (of every Service port) a node can count in shared memory;
 * past it an endpoint counts per thread (SlotTable.unassigned). 1 << 18 slots of 2 workers take
 * 13.6 MB of address space, of which only the pages of used slots are resident.
 */
const MAX_SLOTS = 1 << 18;

/** What a thread needs to open the same counts (sent to workers with postMessage). */
export interface SharedCountsInit {
  readonly buffer: SharedArrayBuffer;
  readonly regions: number;
}

/**
 * Serial-number comparison of two tie-break sequence numbers (RFC 1982 style, as TCP compares
 * sequence numbers): correct across the Int32 wrap as long as the two are within 2^31 picks.
 */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** The shared counts, opened in one thread. */
export class SharedCounts {
  readonly buffer: SharedArrayBuffer;
  readonly regions: number;
  readonly stride: number;
  readonly cells: Int32Array;

  constructor(init: SharedCountsInit) {
    this.buffer = init.buffer;
    this.regions = init.regions;
    this.stride = TOTALS + PER_REGION * init.regions;
    this.cells = new Int32Array(init.buffer);
  }

  /** A new, empty buffer for `regions` writers. */
  static create(regions: number, slots = MAX_SLOTS): SharedCounts {
    const stride = TOTALS + PER_REGION * regions;
    // Fixed length: V8 compiles Atomics on a fixed-length view to a few instructions, while on a
    // growable buffer's length-tracking view each one was a runtime call (a pick over 10
    // endpoints cost 1.7 µs). The pages are mapped on first touch, so what is never used costs
    // address space, not memory.
    const buffer = new SharedArrayBuffer(slots * stride * 4);
    return new SharedCounts({ buffer, regions });
  }

  get init(): SharedCountsInit {
    return { buffer: this.buffer, regions: this.regions };
  }

  /** Slots the buffer holds now (slot 0 included). */
  get capacity(): number {
    return Math.floor(this.cells.length / this.stride);
  }

  /** Whether slot `slot` fits in the buffer. */
  ensure(slot: number): boolean {
    return slot < this.capacity;
  }

  /** A node-wide count of `slot`. */
  total(slot: number, cell: Cell): number {
    return Atomics.load(this.cells, slot * this.stride + cell);
  }

  /** `region`'s own share of a count of `slot`. */
  share(slot: number, region: number, cell: Cell): number {
    return Atomics.load(this.cells, slot * this.stride + TOTALS + region * PER_REGION + cell);
  }

  /** Adds `n` to a count of `slot`, for writer `region` (its share and the total). */
  add(slot: number, region: number, cell: Cell, n: number): void {
    const base = slot * this.stride;
    Atomics.add(this.cells, base + cell, n);
    Atomics.add(this.cells, base + TOTALS + region * PER_REGION + cell, n);
  }

  /**
   * IPVS overhead of `slot` with its estimates (see EndpointStats.score), for a pick. Plain
   * reads: tear-free on aligned Int32 cells, perhaps a moment old, and much cheaper than
   * Atomics.load in V8 (see LeastConnBalancer's scan).
   */
  score(slot: number, ep: { readonly remote: number; readonly weight: number }): number {
    const base = slot * this.stride;
    const active = this.cells[base + Cell.ACTIVE] as number;
    const draining = this.cells[base + Cell.DRAINING] as number;
    return ((active + ep.remote) * 256 + draining) / ep.weight;
  }

  /** The tie-break sequence number of `slot`, for a pick (a plain read, as in `score`). */
  seq(slot: number): number {
    return this.cells[slot * this.stride + SEQ] as number;
  }

  /** Marks `slot` as picked now: it goes after every other endpoint on a tie. */
  touch(slot: number): void {
    const next = (Atomics.add(this.cells, HIGH_SEQ, 1) + 1) | 0;
    Atomics.store(this.cells, slot * this.stride + SEQ, next);
  }

  /**
   * Gives new slots tie-break places before every existing endpoint, in the given order (main
   * thread only, before any worker sees the slots).
   */
  placeFresh(slots: readonly number[]): void {
    const n = slots.length;
    const low = Atomics.sub(this.cells, LOW_SEQ, n) - n;
    for (let i = 0; i < n; i++)
      Atomics.store(this.cells, (slots[i] as number) * this.stride + SEQ, (low + i) | 0);
  }

  /** Whether every count of `slot` is zero (it may be reused). */
  idle(slot: number): boolean {
    const base = slot * this.stride;
    return (
      Atomics.load(this.cells, base + Cell.ACTIVE) === 0 &&
      Atomics.load(this.cells, base + Cell.DRAINING) === 0 &&
      Atomics.load(this.cells, base + Cell.STREAMS) === 0
    );
  }

  /**
   * Takes a writer that is gone (a worker that died) out of the totals of slots `1..slots-1`:
   * its shares are subtracted and zeroed. Returns the connections it held (active + draining).
   * The writer must not run any more.
   */
  forgetRegion(region: number, slots: number): number {
    let connections = 0;
    const end = Math.min(slots, this.capacity);
    for (let slot = 1; slot < end; slot++) {
      const base = slot * this.stride;
      const own = base + TOTALS + region * PER_REGION;
      for (let cell = 0; cell < PER_REGION; cell++) {
        const v = Atomics.exchange(this.cells, own + cell, 0);
        if (v === 0) continue;
        Atomics.sub(this.cells, base + cell, v);
        if (cell !== Cell.STREAMS) connections += v;
      }
    }
    return connections;
  }
}

/** One endpoint's place in the shared counts, as a writer sees it. */
export interface SlotRef {
  readonly counts: SharedCounts;
  readonly slot: number;
  readonly region: number;
}

/** Service port key → endpoint key → slot, as the main thread publishes it to workers. */
export type SlotMap = ReadonlyMap<string, ReadonlyMap<string, number>>;

/**
 * The main thread's assignment of slots (one per endpoint of a Service port). A slot is freed
 * when its endpoint has left the table, its counts are all zero, and every worker has applied a
 * table without it (`release`): until then a worker on an older table may still pick it.
 */
export class SlotTable {
  readonly counts: SharedCounts;
  readonly #slots = new Map<string, Map<string, number>>();
  readonly #free: number[] = [];
  #next = 1;
  /** Slots whose endpoint left, with the table version that dropped them. */
  readonly #leaving = new Map<number, { servicePort: string; endpoint: string; version: number }>();
  /** Endpoints that could not get a slot (the buffer is full); they are counted per thread. */
  unassigned = 0;

  constructor(counts: SharedCounts) {
    this.counts = counts;
  }

  /** Slots handed out so far (the upper bound for scans), slot 0 included. */
  get used(): number {
    return this.#next;
  }

  get map(): SlotMap {
    return this.#slots;
  }

  slotOf(servicePort: string, endpoint: string): number | undefined {
    return this.#slots.get(servicePort)?.get(endpoint);
  }

  /**
   * Assigns slots for table `version`: every endpoint of `ports` (Service port key → endpoint
   * keys) that has none gets one; endpoints that left are marked leaving. New slots of one
   * Service port get their tie-break places rotated from a random point (see LeastConnBalancer).
   * `removed` lists the Service ports gone from the table; without it, `ports` is the whole
   * table and every other Service port is gone.
   */
  assign(
    version: number,
    ports: ReadonlyMap<string, readonly string[]>,
    random: () => number,
    removed?: readonly string[],
  ): void {
    for (const [sp, endpoints] of ports) {
      let row = this.#slots.get(sp);
      if (row === undefined) this.#slots.set(sp, (row = new Map()));
      const fresh: number[] = [];
      const present = new Set(endpoints);
      for (const ep of endpoints) {
        const have = row.get(ep);
        if (have !== undefined) {
          this.#leaving.delete(have);
          continue;
        }
        const slot = this.#take();
        if (slot === undefined) {
          this.unassigned++;
          continue;
        }
        row.set(ep, slot);
        fresh.push(slot);
      }
      for (const [ep, slot] of row)
        if (!present.has(ep) && !this.#leaving.has(slot))
          this.#leaving.set(slot, { servicePort: sp, endpoint: ep, version });
      if (fresh.length > 0) {
        const start = Math.floor(random() * fresh.length) % fresh.length;
        this.counts.placeFresh([...fresh.slice(start), ...fresh.slice(0, start)]);
      }
    }
    const gone = removed ?? [...this.#slots.keys()].filter((sp) => !ports.has(sp));
    for (const sp of gone) {
      const row = this.#slots.get(sp);
      if (row === undefined || ports.has(sp)) continue;
      for (const [ep, slot] of row)
        if (!this.#leaving.has(slot))
          this.#leaving.set(slot, { servicePort: sp, endpoint: ep, version });
    }
  }

  /**
   * Frees the slots of endpoints that left at or before `appliedVersion` (the oldest table
   * every worker has applied) and whose counts are back to zero.
   */
  release(appliedVersion: number): number {
    let n = 0;
    for (const [slot, l] of this.#leaving) {
      if (l.version > appliedVersion || !this.counts.idle(slot)) continue;
      this.#leaving.delete(slot);
      const row = this.#slots.get(l.servicePort);
      if (row?.get(l.endpoint) === slot) row.delete(l.endpoint);
      if (row?.size === 0) this.#slots.delete(l.servicePort);
      this.#free.push(slot);
      n++;
    }
    return n;
  }

  #take(): number | undefined {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (!this.counts.ensure(this.#next)) return undefined;
    return this.#next++;
  }
}
