/**
 * Number-keyed containers for the DMA bookkeeping: NumMap (a hash map from addresses, used by
 * addr-buckets.ts, which indexes dma-debug's table and the sanitizer's physical index), and
 * SortedKeys / SortedMultiMap (keys in order on demand), which those indexes used before they
 * moved to address buckets; kept for callers that need ordered walks.
 *
 * SortedKeys: a sorted set of numbers (bus or physical start addresses).
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
    return SortedKeys.fromArray(sorted, n);
  }

  /** A set of the @n distinct numbers in @sorted[0..n), which it sorts in place. */
  static fromArray(sorted: Float64Array, n: number): SortedKeys {
    sorted.subarray(0, n).sort(); // numeric, in place
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
    // Fill by index and fix the length once: `out.length = 0` would drop the array's storage,
    // so every query would allocate it again.
    let n = 0;
    const chunks = this.chunks;
    for (let ci = this.chunkOf(hi); ci >= 0; ci--) {
      const c = chunks[ci];
      let i = upper_bound(c, hi) - 1;
      for (; i >= 0 && c[i] >= lo; i--) out[n++] = c[i];
      if (i >= 0) break; // stopped below lo
    }
    if (out.length !== n) out.length = n;
    return n;
  }

  /** Every key in ascending order, into `out` (appended). */
  appendAll(out: number[]): number[] {
    for (const c of this.chunks) for (const x of c) out.push(x);
    return out;
  }
}

/** murmur3's finalizer over both halves of a number key: 4 KiB-aligned keys spread too. */
function hashKey(k: number): number {
  let h = (k >>> 0) ^ Math.imul((k / 4294967296) >>> 0, 0x27d4eb2d); // low ^ mixed high 32 bits
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * A hash map from numbers (addresses) to values: open addressing with linear probing in typed
 * arrays, deletion by backward shift (no tombstones). For the DMA bookkeeping's per-segment
 * look-ups it beats a Map: no entry objects, no rehash churn from delete/insert cycles.
 * Iteration order is unspecified (callers sort the keys).
 */
export class NumMap<V> {
  private keys: Float64Array;
  private vals: (V | undefined)[];
  private used: Uint8Array;
  private mask: number;
  size = 0;

  constructor(capacity = 16) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Float64Array(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
  }

  private slotOf(k: number): number {
    const keys = this.keys;
    const used = this.used;
    const mask = this.mask;
    for (let i = hashKey(k) & mask; ; i = (i + 1) & mask) {
      if (used[i] === 0) return -1 - i; // not present: where it would go
      if (keys[i] === k) return i;
    }
  }

  get(k: number): V | undefined {
    const i = this.slotOf(k);
    return i >= 0 ? this.vals[i] : undefined;
  }

  has(k: number): boolean {
    return this.slotOf(k) >= 0;
  }

  set(k: number, v: V): void {
    let i = this.slotOf(k);
    if (i >= 0) {
      this.vals[i] = v;
      return;
    }
    if ((this.size + 1) * 2 > this.mask + 1) {
      this.grow();
      i = this.slotOf(k);
    }
    i = -1 - i;
    this.keys[i] = k;
    this.vals[i] = v;
    this.used[i] = 1;
    this.size++;
  }

  /** The value of @k if present; else set @k to @v and return undefined (one probe). */
  setIfAbsent(k: number, v: V): V | undefined {
    let i = this.slotOf(k);
    if (i >= 0) return this.vals[i];
    if ((this.size + 1) * 2 > this.mask + 1) {
      this.grow();
      i = this.slotOf(k);
    }
    i = -1 - i;
    this.keys[i] = k;
    this.vals[i] = v;
    this.used[i] = 1;
    this.size++;
    return undefined;
  }

  delete(k: number): boolean {
    let i = this.slotOf(k);
    if (i < 0) return false;
    const keys = this.keys;
    const vals = this.vals;
    const used = this.used;
    const mask = this.mask;
    // backward shift: pull later members of the probe run into the hole when their home allows
    for (let j = (i + 1) & mask; used[j] !== 0; j = (j + 1) & mask) {
      const home = hashKey(keys[j]) & mask;
      // may j's key move to i? only if its home is not cyclically in (i, j]
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (between) continue;
      keys[i] = keys[j];
      vals[i] = vals[j];
      i = j;
    }
    used[i] = 0;
    vals[i] = undefined;
    this.size--;
    return true;
  }

  /** Every key, in no particular order, into @out from index 0. Returns: how many. */
  copyKeys(out: Float64Array): number {
    const used = this.used;
    let n = 0;
    for (let i = 0; i < used.length; i++) if (used[i] !== 0) out[n++] = this.keys[i];
    return n;
  }

  /** Remove every key (O(capacity)). */
  clear(): void {
    if (this.size === 0) return;
    this.used.fill(0);
    this.vals.fill(undefined);
    this.size = 0;
  }

  /** Call @fn with every value, in no particular order (do not change the map meanwhile). */
  forEach(fn: (v: V, k: number) => void): void {
    const used = this.used;
    for (let i = 0; i < used.length; i++) if (used[i] !== 0) fn(this.vals[i] as V, this.keys[i]);
  }

  private grow(): void {
    const { keys, vals, used } = this;
    const cap = (this.mask + 1) * 2;
    this.keys = new Float64Array(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < used.length; i++) if (used[i] !== 0) this.set(keys[i], vals[i] as V);
  }
}

/**
 * Lists of values keyed by a number, with the keys in order on demand: look-ups by exact key
 * hit a hash map (NumMap); the sorted keys (a SortedKeys) are built on the first ordered look-up, kept up
 * to date from then on, and dropped again when more changes than there are keys went by
 * without an ordered look-up. So a workload that only adds, finds and removes by key never
 * sorts, and one that asks in order pays O(log n) per change (a rebuild is O(n log n) after at
 * least n changes). Each key's list keeps insertion order.
 */
export class SortedMultiMap<T> {
  readonly byKey = new NumMap<T[]>();
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
    if (this.sorted === null) {
      const a = new Float64Array(this.byKey.size);
      this.sorted = SortedKeys.fromArray(a, this.byKey.copyKeys(a));
    }
    return this.sorted;
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
