/**
 * NumMap: a hash map from numbers (addresses) to values, for the DMA bookkeeping's per-segment
 * look-ups (addr-buckets.ts). Open addressing with linear probing in typed arrays, deletion by
 * backward shift (no tombstones): no entry objects and no rehash churn from delete/insert
 * cycles, which is what made it faster than a Map for addresses above 2^30.
 */

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
    const i = this.slotOf(k);
    if (i >= 0) this.vals[i] = v;
    else this.insertAt(i, k, v);
  }

  /** The value of @k if present; else set @k to @v and return undefined (one probe). */
  setIfAbsent(k: number, v: V): V | undefined {
    const i = this.slotOf(k);
    if (i >= 0) return this.vals[i];
    this.insertAt(i, k, v);
    return undefined;
  }

  /** Insert @k (absent; slotOf returned @miss for it), growing first when half full. */
  private insertAt(miss: number, k: number, v: V): void {
    if ((this.size + 1) * 2 > this.mask + 1) {
      this.grow();
      miss = this.slotOf(k);
    }
    const i = -1 - miss;
    this.keys[i] = k;
    this.vals[i] = v;
    this.used[i] = 1;
    this.size++;
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
