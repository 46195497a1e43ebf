import type { EndpointStats } from './endpoint-stats.js';

/**
 * An indexed binary min-heap of endpoints ordered by score, ties broken by `seq` (lower first).
 * Each element stores its own position (`heapIndex`), so an element whose counts changed is
 * re-placed in O(log n) with `fix`. Not a general container: an endpoint is in at most one heap.
 */
export class EndpointHeap {
  readonly #items: EndpointStats[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): EndpointStats | undefined {
    return this.#items[0];
  }

  has(ep: EndpointStats): boolean {
    return ep.heapIndex >= 0 && this.#items[ep.heapIndex] === ep;
  }

  push(ep: EndpointStats): void {
    ep.heapIndex = this.#items.length;
    this.#items.push(ep);
    this.#up(ep.heapIndex);
  }

  remove(ep: EndpointStats): void {
    if (!this.has(ep)) return;
    const i = ep.heapIndex;
    const last = this.#items.pop() as EndpointStats;
    ep.heapIndex = -1;
    if (last === ep) return;
    this.#items[i] = last;
    last.heapIndex = i;
    this.#fixAt(i);
  }

  /** Restores order after `ep`'s score or seq changed. No-op when `ep` is not here. */
  fix(ep: EndpointStats): void {
    if (this.has(ep)) this.#fixAt(ep.heapIndex);
  }

  /** Removes and returns the best element. */
  pop(): EndpointStats | undefined {
    const top = this.#items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  *[Symbol.iterator](): IterableIterator<EndpointStats> {
    yield* this.#items;
  }

  #fixAt(i: number): void {
    if (!this.#up(i)) this.#down(i);
  }

  static #less(a: EndpointStats, b: EndpointStats): boolean {
    const sa = a.score();
    const sb = b.score();
    return sa < sb || (sa === sb && a.seq < b.seq);
  }

  #swap(i: number, j: number): void {
    const a = this.#items[i] as EndpointStats;
    const b = this.#items[j] as EndpointStats;
    this.#items[i] = b;
    this.#items[j] = a;
    b.heapIndex = i;
    a.heapIndex = j;
  }

  #up(i: number): boolean {
    let moved = false;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (
        !EndpointHeap.#less(this.#items[i] as EndpointStats, this.#items[parent] as EndpointStats)
      )
        break;
      this.#swap(i, parent);
      i = parent;
      moved = true;
    }
    return moved;
  }

  #down(i: number): void {
    const n = this.#items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      let best = l;
      if (
        r < n &&
        EndpointHeap.#less(this.#items[r] as EndpointStats, this.#items[l] as EndpointStats)
      )
        best = r;
      if (!EndpointHeap.#less(this.#items[best] as EndpointStats, this.#items[i] as EndpointStats))
        return;
      this.#swap(i, best);
      i = best;
    }
  }
}
