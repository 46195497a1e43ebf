/** An element of an IndexedMinHeap: it carries its own position (-1 when not in a heap). */
export interface HeapItem {
  heapIndex: number;
}

/**
 * A binary min-heap ordered by `compare` (negative: `a` first) whose elements record their own
 * position, so any element can be removed in O(log n). An element is in at most one heap.
 */
export class IndexedMinHeap<T extends HeapItem> {
  readonly #items: T[] = [];
  readonly #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  has(item: T): boolean {
    return item.heapIndex >= 0 && this.#items[item.heapIndex] === item;
  }

  push(item: T): void {
    item.heapIndex = this.#items.length;
    this.#items.push(item);
    this.#up(item.heapIndex);
  }

  pop(): T | undefined {
    const top = this.#items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** Restores the order after `item`'s key changed. No-op when `item` is not here. */
  fix(item: T): void {
    if (this.has(item) && !this.#up(item.heapIndex)) this.#down(item.heapIndex);
  }

  /** The items in heap order (not sorted), for a scan without an iterator. Do not modify. */
  get items(): readonly T[] {
    return this.#items;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    yield* this.#items;
  }

  /** Removes `item` if it is here. */
  remove(item: T): void {
    if (!this.has(item)) return;
    const i = item.heapIndex;
    const last = this.#items.pop() as T;
    item.heapIndex = -1;
    if (last === item) return;
    this.#items[i] = last;
    last.heapIndex = i;
    if (!this.#up(i)) this.#down(i);
  }

  #swap(i: number, j: number): void {
    const a = this.#items[i] as T;
    const b = this.#items[j] as T;
    this.#items[i] = b;
    this.#items[j] = a;
    b.heapIndex = i;
    a.heapIndex = j;
  }

  #up(i: number): boolean {
    let moved = false;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#compare(this.#items[i] as T, this.#items[parent] as T) >= 0) break;
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
      const best = r < n && this.#compare(this.#items[r] as T, this.#items[l] as T) < 0 ? r : l;
      if (this.#compare(this.#items[best] as T, this.#items[i] as T) >= 0) return;
      this.#swap(i, best);
      i = best;
    }
  }
}
