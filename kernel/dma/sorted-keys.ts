/**
 * A sorted set of numbers (bus or physical start addresses) for the DMA bookkeeping indexes.
 *
 * Kept as a list of sorted chunks of at most CHUNK_MAX keys: a look-up is a binary search over
 * the chunks' first keys and then within one chunk (O(log n)), an insert or delete splices one
 * chunk (a bounded move, whatever the set's size) and only a chunk split or a chunk emptying
 * splices the chunk list, once per CHUNK_MAX / 2 inserts at the least. A plain sorted array
 * would move half the set on every insert: dma_map_sg of 256 segments is 256 inserts.
 * Queries fill a caller's reused array, so walks allocate nothing.
 */

const CHUNK_MAX = 64;

/** Index of the first element of sorted `a` greater than `x`. */
export function upper_bound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class SortedKeys {
  private readonly chunks: number[][] = [[]];
  size = 0;

  /** A set of the @count distinct numbers @keys yields. */
  static from(keys: Iterable<number>, count: number): SortedKeys {
    const sorted = new Float64Array(count);
    let n = 0;
    for (const k of keys) sorted[n++] = k;
    sorted.sort(); // numeric, in place
    const s = new SortedKeys();
    const half = CHUNK_MAX >>> 1;
    let c = s.chunks[0];
    for (let i = 0; i < n; i++) {
      if (c.length === half) s.chunks.push((c = []));
      c.push(sorted[i]);
    }
    s.size = n;
    return s;
  }

  /** The chunk that holds `x` or would: the last whose first key is <= x (else the first). */
  private chunkOf(x: number): number {
    const chunks = this.chunks;
    let lo = 1;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (chunks[mid][0] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** Add `x` (the caller knows it is not present). */
  insert(x: number): void {
    const ci = this.chunkOf(x);
    const c = this.chunks[ci];
    // open a hole at the insertion point by hand: cheaper than splice on short arrays
    const at = upper_bound(c, x);
    c.push(x);
    for (let j = c.length - 1; j > at; j--) c[j] = c[j - 1];
    c[at] = x;
    this.size++;
    if (c.length > CHUNK_MAX) this.chunks.splice(ci + 1, 0, c.splice(CHUNK_MAX >>> 1));
  }

  /** Remove `x`; returns whether it was present. */
  delete(x: number): boolean {
    const ci = this.chunkOf(x);
    const c = this.chunks[ci];
    const i = upper_bound(c, x) - 1;
    if (i < 0 || c[i] !== x) return false;
    for (let j = i + 1; j < c.length; j++) c[j - 1] = c[j];
    c.pop();
    this.size--;
    if (c.length === 0 && this.chunks.length > 1) this.chunks.splice(ci, 1);
    return true;
  }

  /** The smallest key greater than `x`, or Infinity. */
  next(x: number): number {
    const chunks = this.chunks;
    for (let ci = this.chunkOf(x); ci < chunks.length; ci++) {
      const c = chunks[ci];
      const i = upper_bound(c, x);
      if (i < c.length) return c[i];
    }
    return Infinity;
  }

  /**
   * The keys in [lo, hi], largest first, into `out` (emptied first).
   * Returns: how many.
   */
  downFrom(hi: number, lo: number, out: number[]): number {
    out.length = 0;
    const chunks = this.chunks;
    for (let ci = this.chunkOf(hi); ci >= 0; ci--) {
      const c = chunks[ci];
      for (let i = upper_bound(c, hi) - 1; i >= 0; i--) {
        if (c[i] < lo) return out.length;
        out.push(c[i]);
      }
    }
    return out.length;
  }

  /** Every key in ascending order, into `out` (appended). */
  appendAll(out: number[]): number[] {
    for (const c of this.chunks) for (const x of c) out.push(x);
    return out;
  }
}

/**
 * Lists of values keyed by a number, with the keys in order on demand: look-ups by exact key
 * hit a Map; the sorted keys (a SortedKeys) are built on the first ordered look-up, kept up
 * to date from then on, and dropped again when more changes than there are keys went by
 * without an ordered look-up. So a workload that only adds, finds and removes by key never
 * sorts, and one that asks in order pays O(log n) per change (a rebuild is O(n log n) after at
 * least n changes). Each key's list keeps insertion order.
 */
export class SortedMultiMap<T> {
  readonly byKey = new Map<number, T[]>();
  private sorted: SortedKeys | null = null;
  private changes = 0;
  /** Values held, over all keys. */
  count = 0;

  add(key: number, v: T): void {
    const list = this.byKey.get(key);
    if (list) list.push(v);
    else {
      this.byKey.set(key, [v]);
      this.keyChanged(key, true);
    }
    this.count++;
  }

  /** Remove value @v (by identity) from @key's list; returns whether it was there. */
  remove(key: number, v: T): boolean {
    const list = this.byKey.get(key);
    const i = list ? list.indexOf(v) : -1;
    if (i < 0) return false;
    if (list!.length === 1) {
      this.byKey.delete(key);
      this.keyChanged(key, false);
    } else {
      for (let j = i + 1; j < list!.length; j++) list![j - 1] = list![j];
      list!.pop();
    }
    this.count--;
    return true;
  }

  get(key: number): T[] | undefined {
    return this.byKey.get(key);
  }

  /** The distinct keys in order, for an ordered look-up (valid until the next change). */
  keys(): SortedKeys {
    this.changes = 0;
    return (this.sorted ??= SortedKeys.from(this.byKey.keys(), this.byKey.size));
  }

  private keyChanged(key: number, added: boolean): void {
    const s = this.sorted;
    if (s === null) return;
    if (++this.changes > s.size + 64) {
      this.sorted = null;
      return;
    }
    if (added) s.insert(key);
    else s.delete(key);
  }
}
