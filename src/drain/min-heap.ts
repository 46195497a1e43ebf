/**
 * A plain binary min-heap ordered by `compare` (negative: `a` first). Removal of arbitrary
 * elements is left to the user (mark them and skip them when popped).
 */
export class MinHeap<T> {
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

  push(item: T): void {
    const a = this.#items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#compare(a[i] as T, a[parent] as T) >= 0) break;
      [a[i], a[parent]] = [a[parent] as T, a[i] as T];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const best = r < a.length && this.#compare(a[r] as T, a[l] as T) < 0 ? r : l;
      if (this.#compare(a[best] as T, a[i] as T) >= 0) break;
      [a[i], a[best]] = [a[best] as T, a[i] as T];
      i = best;
    }
    return top;
  }
}
