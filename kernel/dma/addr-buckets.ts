/**
 * Address-bucketed index for the DMA bookkeeping (dma-debug's table, the sanitizer's physical
 * index): items keyed by a start address, with an extent, in buckets of BUCKET_BYTES by start,
 * the way kernel/dma/debug.c hashes its entries by device address. Buckets are found through
 * a two-level radix (BucketRadix: 16 MiB chunks in a hash map, the last chunk remembered), so
 * the pages of one sg list usually cost no hashing at all.
 *
 * Why not a sorted structure: a dma_map_sg of 256 segments is 256 inserts, and the device then
 * looks each segment up by a contained address. Kept sorted, every insert and delete moves keys
 * (or the keys are re-sorted once per batch); bucketed, an insert is a bucket look-up and an
 * append, and a containing look-up walks the buckets from the address's down to the one
 * `maxSmall` bytes below, or only the address's own while no item reaches past its bucket
 * (`spills`: page-sized, page-aligned segments). Items longer than BIG_EXTENT (rare: large
 * coherent allocations, big mappings) would make that walk long; they are also kept on a short
 * list that containing look-ups scan whole, and the bucket walk skips them.
 *
 * Order: a bucket lists its items in insertion order, and every item has a sequence number
 * (insertion order across buckets and the big list), so callers can reproduce "sorted by
 * address, then insertion order" exactly without keeping anything sorted.
 * Ghosts (optional): the last item removed at each key stays in its bucket, dead, for the last
 * `ghostMax` keys (dma-debug's memory of unmapped entries). Nodes are pooled: the steady state
 * of map/unmap cycles allocates nothing.
 */

import { NumMap } from "./num-map.ts";

/** Bucket granule: addresses [n * BUCKET_BYTES, (n + 1) * BUCKET_BYTES) share bucket n. */
export const BUCKET_BYTES = 4096;
/** Items longer than this are also on the big list (and skipped by bucket walks). */
export const BIG_EXTENT = 16 * BUCKET_BYTES;

/** The bucket of address @a. */
export const bucketOf = (a: number): number => Math.floor(a / BUCKET_BYTES);

/** Buckets per radix chunk (4096 x 4 KiB = 16 MiB of addresses; 16 KiB of slots). */
const CHUNK = 4096;

class RadixChunk<V> {
  readonly heads: (V | undefined)[] = new Array<V | undefined>(CHUNK).fill(undefined);
  used = 0;
}

/**
 * Bucket number -> value, as a two-level radix: a hash map of 16 MiB chunks, each an array of
 * CHUNK slots. DMA buffers cluster (an sg list's pages come from a few megabytes), so the chunk
 * of the last access usually serves the next one and no hashing happens at all.
 */
class BucketRadix<V> {
  private readonly chunks = new NumMap<RadixChunk<V>>();
  private readonly spare: RadixChunk<V>[] = [];
  private lastHi = NaN;
  private last: RadixChunk<V> | undefined = undefined;
  /** Slots in use. */
  size = 0;

  private chunkOf(hi: number): RadixChunk<V> | undefined {
    if (hi === this.lastHi) return this.last;
    const c = this.chunks.get(hi);
    if (c !== undefined) {
      this.lastHi = hi;
      this.last = c;
    }
    return c;
  }

  get(n: number): V | undefined {
    const hi = Math.floor(n / CHUNK);
    const c = this.chunkOf(hi);
    return c === undefined ? undefined : c.heads[n - hi * CHUNK];
  }

  /** The value at @n if any; else set it to @v and return undefined. */
  setIfAbsent(n: number, v: V): V | undefined {
    const hi = Math.floor(n / CHUNK);
    let c = this.chunkOf(hi);
    if (c === undefined) {
      c = this.spare.pop() ?? new RadixChunk<V>();
      this.chunks.set(hi, c);
      this.lastHi = hi;
      this.last = c;
    }
    const i = n - hi * CHUNK;
    const h = c.heads[i];
    if (h !== undefined) return h;
    c.heads[i] = v;
    c.used++;
    this.size++;
    return undefined;
  }

  /** Replace the value at @n (which has one). */
  set(n: number, v: V): void {
    const hi = Math.floor(n / CHUNK);
    this.chunkOf(hi)!.heads[n - hi * CHUNK] = v;
  }

  /** Drop the value at @n (which has one). */
  delete(n: number): void {
    const hi = Math.floor(n / CHUNK);
    const c = this.chunkOf(hi)!;
    c.heads[n - hi * CHUNK] = undefined;
    this.size--;
    if (--c.used === 0) {
      this.chunks.delete(hi);
      this.spare.push(c);
      if (this.lastHi === hi) {
        this.lastHi = NaN;
        this.last = undefined;
      }
    }
  }

  forEach(fn: (v: V) => void): void {
    this.chunks.forEach((c) => {
      for (const h of c.heads) if (h !== undefined) fn(h);
    });
  }
}

/**
 * One item held: a node of its bucket's list (oldest first) and, if long, of the big list.
 * A removed item may stay as a ghost (see AddrBuckets). Nodes are pooled.
 */
export class AddrNode<T> {
  key = 0;
  item: T | null = null;
  ext = 0;
  seq = 0;
  /** Removed, kept as the ghost of its key. Walks over live items skip ghosts. */
  dead = false;
  /** The next node of the same bucket. */
  next: AddrNode<T> | null = null;
  /** The next node of the big list. */
  nextBig: AddrNode<T> | null = null;
  /** Ghosts only: neighbours in burial order. */
  older: AddrNode<T> | null = null;
  newer: AddrNode<T> | null = null;
}

export class AddrBuckets<T> {
  /** First node of each bucket holding a live item or a ghost. */
  private readonly map = new BucketRadix<AddrNode<T>>();
  private readonly pool: AddrNode<T>[] = [];
  /** First node of the big list: live items longer than BIG_EXTENT (in their bucket too). */
  bigHead: AddrNode<T> | null = null;
  private seq = 0;
  /** Live items held. */
  count = 0;
  /** Largest extent of an item not on the big list ever added: bounds a bucket walk. */
  maxSmall = 0;
  /**
   * Live items not on the big list that reach past their own bucket. While there are none
   * (page sized and aligned buffers), an address can only be held by an item of its own bucket.
   */
  spills = 0;
  /**
   * Live items that share their bucket with an older live item (the sum over buckets of live
   * items - 1). While it, `spills` and the big list are all zero or empty, an address is held
   * by at most one live item: a caller that already knows a live item holding it (the next
   * segment of an sg list) knows every look-up would find that one.
   */
  shared = 0;
  /** Ghosts, oldest and newest burial, and how many. */
  private oldestGhost: AddrNode<T> | null = null;
  private newestGhost: AddrNode<T> | null = null;
  private ghosts = 0;

  /**
   * @ghostMax: keep the last item removed at each key, for the last @ghostMax distinct keys
   * (the least recently removed key is forgotten first); 0 keeps none. A ghost stays in its
   * bucket, so removing an item costs no hash update and adding one where a ghost lies
   * finds its bucket already there (dma-debug's double-unmap explanation, debug-table.ts).
   */
  constructor(public ghostMax = 0) {}

  /** The lowest bucket a walk for live items holding address @a must look at. */
  lowestBucketFor(a: number): number {
    return this.spills === 0 ? bucketOf(a) : bucketOf(a - this.maxSmall);
  }

  /**
   * The bucket last asked for with bucket(), while nothing changed since (`changes`): an unmap
   * looks its entry up and then removes it, and the removal need not hash again.
   */
  private cachedN = NaN;
  private cachedHead: AddrNode<T> | undefined = undefined;
  private cachedAt = -1;
  private changes = 0;

  /** The first node of bucket @n (oldest first; ghosts included), or undefined. */
  bucket(n: number): AddrNode<T> | undefined {
    const h = this.map.get(n);
    this.cachedN = n;
    this.cachedHead = h;
    this.cachedAt = this.changes;
    return h;
  }

  add(key: number, item: T, extent: number): void {
    this.changes++;
    const x = this.pool.pop() ?? new AddrNode<T>();
    x.key = key;
    x.item = item;
    x.ext = extent;
    x.seq = this.seq++;
    x.dead = false;
    x.next = null;
    x.nextBig = null;
    const n = bucketOf(key);
    let t = this.map.setIfAbsent(n, x);
    if (t !== undefined) {
      let others = t.dead ? 0 : 1;
      while (t.next !== null) {
        t = t.next;
        if (!t.dead) others++;
      }
      t.next = x;
      if (others !== 0) this.shared++;
    }
    if (extent > BIG_EXTENT) {
      if (this.bigHead === null) this.bigHead = x;
      else {
        let b = this.bigHead;
        while (b.nextBig !== null) b = b.nextBig;
        b.nextBig = x;
      }
    } else {
      if (extent > this.maxSmall) this.maxSmall = extent;
      if (extent > 1 && bucketOf(key + extent - 1) !== n) this.spills++;
    }
    this.count++;
  }

  /** Remove live @item (by identity) added at @key; returns whether it was there. */
  remove(key: number, item: T): boolean {
    const n = bucketOf(key);
    const head = (n === this.cachedN && this.cachedAt === this.changes ? this.cachedHead : this.map.get(n)) ?? null;
    this.changes++;
    let x = head;
    let prev: AddrNode<T> | null = null;
    let ghost: AddrNode<T> | null = null;
    while (x !== null && (x.dead || x.item !== item || x.key !== key)) {
      if (x.dead && x.key === key) ghost = x;
      prev = x;
      x = x.next;
    }
    if (x === null) return false;
    if (this.shared !== 0 && AddrBuckets.liveBesides(head!, x)) this.shared--;
    if (x.ext <= BIG_EXTENT) {
      if (x.ext > 1 && bucketOf(key + x.ext - 1) !== n) this.spills--;
    } else {
      let bp: AddrNode<T> | null = null;
      let b = this.bigHead;
      while (b !== null && b !== x) {
        bp = b;
        b = b.nextBig;
      }
      if (b !== null) {
        if (bp === null) this.bigHead = b.nextBig;
        else bp.nextBig = b.nextBig;
      }
      x.nextBig = null;
    }
    this.count--;
    if (this.ghostMax === 0) {
      this.unlinkAfter(n, prev, x);
      return true;
    }
    if (ghost === null) for (let g = x.next; g !== null; g = g.next) if (g.dead && g.key === key) ghost = g;
    if (ghost === null) {
      // the key's first ghost: the node stays where it is, dead
      x.dead = true;
      this.appendGhost(x);
      if (++this.ghosts > this.ghostMax) this.bury(this.oldestGhost!);
      return true;
    }
    // the key has a ghost already: it takes the item and becomes the newest burial, and the
    // live node goes (a bucket's first node is usually the ghost: no hash update)
    ghost.item = item;
    ghost.ext = x.ext;
    this.dropGhost(ghost);
    this.appendGhost(ghost);
    this.unlinkAfter(n, prev, x);
    return true;
  }

  /** Does the bucket starting at @head hold a live node other than @x? */
  private static liveBesides<T>(head: AddrNode<T>, x: AddrNode<T>): boolean {
    for (let y: AddrNode<T> | null = head; y !== null; y = y.next) if (y !== x && !y.dead) return true;
    return false;
  }

  /** Is every address held by at most one live item (see `shared`)? */
  get unambiguous(): boolean {
    return this.shared === 0 && this.spills === 0 && this.bigHead === null;
  }

  private appendGhost(g: AddrNode<T>): void {
    g.older = this.newestGhost;
    g.newer = null;
    if (this.newestGhost !== null) this.newestGhost.newer = g;
    else this.oldestGhost = g;
    this.newestGhost = g;
  }

  /** Take @g out of the burial order (it stays in its bucket). */
  private dropGhost(g: AddrNode<T>): void {
    if (g.older !== null) g.older.newer = g.newer;
    else this.oldestGhost = g.newer;
    if (g.newer !== null) g.newer.older = g.older;
    else this.newestGhost = g.older;
    g.older = g.newer = null;
  }

  /** The item last removed at @key, if its ghost is kept. */
  ghostAt(key: number): T | null {
    for (let x = this.map.get(bucketOf(key)) ?? null; x !== null; x = x.next) if (x.dead && x.key === key) return x.item;
    return null;
  }

  /** Forget ghost @g (the oldest burial). */
  private bury(g: AddrNode<T>): void {
    this.dropGhost(g);
    this.ghosts--;
    const n = bucketOf(g.key);
    let prev: AddrNode<T> | null = null;
    for (let p = this.map.get(n)!; p !== g; p = p.next!) prev = p;
    this.unlinkAfter(n, prev, g);
  }

  /** Take node @x, which follows @prev (null: first) in bucket @n, out and back to the pool. */
  private unlinkAfter(n: number, prev: AddrNode<T> | null, x: AddrNode<T>): void {
    if (prev !== null) prev.next = x.next;
    else if (x.next !== null) this.map.set(n, x.next);
    else this.map.delete(n);
    x.item = null;
    x.next = null;
    x.dead = false;
    this.pool.push(x);
  }

  /** Is live @item held at @key? */
  has(key: number, item: T): boolean {
    for (let x = this.map.get(bucketOf(key)) ?? null; x !== null; x = x.next) if (!x.dead && x.item === item && x.key === key) return true;
    return false;
  }

  /** The live items at exactly @key, in insertion order, appended to @out. */
  at(key: number, out: T[]): T[] {
    for (let x = this.map.get(bucketOf(key)) ?? null; x !== null; x = x.next) if (!x.dead && x.key === key) out.push(x.item as T);
    return out;
  }

  /** The @i-th live item at exactly @key (insertion order), or null. */
  nthAt(key: number, i: number): T | null {
    for (let x = this.map.get(bucketOf(key)) ?? null; x !== null; x = x.next) if (!x.dead && x.key === key && i-- === 0) return x.item;
    return null;
  }

  /** The smallest key of a live item in (@lo, @hi), or @hi if none. */
  nextKey(lo: number, hi: number): number {
    let best = hi;
    const first = bucketOf(lo);
    const last = bucketOf(hi);
    if (last - first > this.map.size) {
      this.map.forEach((h) => {
        for (let x: AddrNode<T> | null = h; x !== null; x = x.next) if (!x.dead && x.key > lo && x.key < best) best = x.key;
      });
      return best;
    }
    for (let n = first; n <= last; n++) {
      for (let x = this.map.get(n) ?? null; x !== null; x = x.next) if (!x.dead && x.key > lo && x.key < best) best = x.key;
      if (best < hi) return best; // buckets ascend: nothing later is smaller
    }
    return best;
  }

  /** Every live item, sorted by key and then insertion order, appended to @out. */
  appendSorted(out: T[]): T[] {
    const all: AddrNode<T>[] = [];
    this.map.forEach((h) => {
      for (let x: AddrNode<T> | null = h; x !== null; x = x.next) if (!x.dead) all.push(x);
    });
    all.sort((x, y) => x.key - y.key || x.seq - y.seq);
    for (const x of all) out.push(x.item as T);
    return out;
  }
}
