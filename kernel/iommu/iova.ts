/**
 * The IOVA allocator (drivers/iommu/iova.c, spec §9.3): which I/O virtual addresses of a
 * translating domain are in use.
 *
 * Theory of operation
 * - Space is counted in granules (the IOMMU's smallest page, 4 KiB here) as page frame numbers
 *   (pfns). Every allocated or reserved range is a node [pfn_lo, pfn_hi] (inclusive, as Linux).
 *   Linux keeps them in a red-black tree; here they live in sorted parallel Float64Arrays
 *   (pfns exceed 2^31) searched by bisection, grown by doubling, and shifted in place with
 *   copyWithin, so neither allocation nor free allocates JS objects however many ranges are live.
 *   An anchor node at the very top (IOVA_ANCHOR) means every gap has a node above it.
 * - Allocation is top-down below a limit (__alloc_and_insert_iova_range): the new range goes in
 *   the highest gap below the limit that holds it with the required alignment. The search starts
 *   at a cached node (the last allocation, one cache for ranges below 4 GiB and one above),
 *   walks downward, and once retries from the limit down to where it started, so a steady
 *   alloc/free stream does not rescan all live ranges. A failed 32-bit request remembers its size
 *   (max32_alloc_size) so equal or larger 32-bit requests fail at once until something below
 *   4 GiB is freed.
 * - alloc_iova_fast rounds requests shorter than 32 granules up to a power of two (so they could
 *   be recycled through per-CPU magazines, which are not modelled); every request is aligned to
 *   the power of two at or above its size, as Linux passes size_aligned = true.
 * - Reserved ranges (reserve_iova: MSI windows, IOVA 0) are nodes that free_iova never releases.
 * Nothing here touches the kernel: the DMA layer (kernel/dma/iommu-dma.ts) owns one IovaDomain
 * per translating domain.
 */

/** Granule shift of every domain we build: 4 KiB IOMMU pages. */
export const IOVA_SHIFT = 12;
export const IOVA_GRANULE = 1 << IOVA_SHIFT;
/** Requests shorter than this many granules are rounded up to a power of two (IOVA_RANGE_CACHE_MAX_SIZE). */
export const IOVA_RANGE_CACHE_MAX_PAGES = 32;
/** pfn of the anchor node above every real range. */
const IOVA_ANCHOR = 2 ** 52;

const KIND_ALLOC = 0;
const KIND_RESERVED = 1;

/** roundup_pow_of_two for positive integers below 2^52. */
export function roundup_pow_of_two(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Snapshot of one live range (tests, debugfs-style dumps). */
export interface iova_range {
  readonly pfn_lo: number;
  readonly pfn_hi: number;
  readonly reserved: boolean;
}

export class IovaDomain {
  /** Lowest pfn ever handed out (Linux start_pfn: at least 1, so IOVA 0 is never used). */
  readonly start_pfn: number;
  /** First pfn at or above 4 GiB (dma_32bit_pfn). */
  readonly dma_32bit_pfn: number;
  private lo: Float64Array;
  private hi: Float64Array;
  private kind: Uint8Array;
  /** Number of nodes, the anchor included. */
  private n = 0;
  /** pfn_lo of the cached node for searches with limits above / at or below 4 GiB. */
  private cached = IOVA_ANCHOR;
  private cached32 = IOVA_ANCHOR;
  /** Smallest 32-bit request known to fail (dma_32bit_pfn: none known). */
  private max32_alloc_size: number;
  /** Counters. */
  readonly stats = { allocs: 0, frees: 0, failures: 0, live_pages: 0 };

  constructor(
    readonly granule: number = IOVA_GRANULE,
    start_pfn = 1,
  ) {
    if (granule !== IOVA_GRANULE) throw new RangeError(`IovaDomain: only ${IOVA_GRANULE}-byte granules are supported`);
    this.start_pfn = Math.max(1, start_pfn);
    this.dma_32bit_pfn = 2 ** (32 - IOVA_SHIFT);
    this.max32_alloc_size = this.dma_32bit_pfn;
    this.lo = new Float64Array(64);
    this.hi = new Float64Array(64);
    this.kind = new Uint8Array(64);
    this.insertAt(0, IOVA_ANCHOR, IOVA_ANCHOR, KIND_RESERVED);
  }

  /** iova_pfn: the granule holding IOVA @addr. */
  iova_pfn(addr: number): number {
    return Math.floor(addr / this.granule);
  }

  /** iova_offset: @addr's offset inside its granule. */
  iova_offset(addr: number): number {
    return addr % this.granule;
  }

  /** iova_align: @size rounded up to whole granules. */
  iova_align(size: number): number {
    return Math.ceil(size / this.granule) * this.granule;
  }

  /** Live nodes, the anchor excluded. */
  get count(): number {
    return this.n - 1;
  }

  // ------------------------------------------------------------------ sorted arrays

  /** Index of the first node whose pfn_lo >= @pfn (n if none). */
  private lowerBound(pfn: number): number {
    let a = 0;
    let b = this.n;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.lo[m] < pfn) a = m + 1;
      else b = m;
    }
    return a;
  }

  /** Index of the node containing @pfn, or -1 (private_find_iova). */
  private indexOf(pfn: number): number {
    const i = this.lowerBound(pfn + 1) - 1;
    return i >= 0 && this.hi[i] >= pfn ? i : -1;
  }

  private insertAt(i: number, lo: number, hi: number, kind: number): void {
    if (this.n === this.lo.length) {
      const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.lo = grow(this.lo, (n) => new Float64Array(n));
      this.hi = grow(this.hi, (n) => new Float64Array(n));
      this.kind = grow(this.kind, (n) => new Uint8Array(n));
    }
    this.lo.copyWithin(i + 1, i, this.n);
    this.hi.copyWithin(i + 1, i, this.n);
    this.kind.copyWithin(i + 1, i, this.n);
    this.lo[i] = lo;
    this.hi[i] = hi;
    this.kind[i] = kind;
    this.n++;
  }

  private removeAt(i: number): void {
    this.lo.copyWithin(i, i + 1, this.n);
    this.hi.copyWithin(i, i + 1, this.n);
    this.kind.copyWithin(i, i + 1, this.n);
    this.n--;
  }

  // ------------------------------------------------------------------ allocation

  /**
   * alloc_iova - allocate @size granules top-down, ending at or below pfn @limit_pfn
   * @size: granules (>= 1)
   * @limit_pfn: highest pfn the range may use (the DMA mask or aperture end, >> shift)
   * @size_aligned: align the start to the power of two at or above @size
   * Returns: the first pfn of the range, or -1 if no gap fits.
   */
  alloc_iova(size: number, limit_pfn: number, size_aligned = true): number {
    if (!(Number.isSafeInteger(size) && size >= 1)) return -1;
    const limit = Math.min(limit_pfn, IOVA_ANCHOR - 1) + 1; // exclusive
    const align = size_aligned ? roundup_pow_of_two(size) : 1;
    const is32 = limit <= this.dma_32bit_pfn;
    if (is32 && size >= this.max32_alloc_size) return this.fail();
    let high = limit;
    let low = this.start_pfn;
    // __get_cached_rbnode: the node to start under
    let i = this.lowerBound(is32 ? this.cached32 : this.cached);
    if (i >= this.n || this.lo[i] > limit) i = this.lowerBound(limit); // cache above the limit: start at the limit
    const retry_pfn = this.hi[Math.min(i, this.n - 1)];
    let new_pfn = -1;
    for (let pass = 0; pass < 2; pass++) {
      // Walk down the nodes; the gap below node i ends at min(high, lo[i]).
      for (;;) {
        high = Math.min(high, this.lo[i]);
        new_pfn = Math.floor((high - size) / align) * align;
        i--;
        if (!(i >= 0 && new_pfn <= this.hi[i] && new_pfn >= low)) break;
      }
      if (high >= size && new_pfn >= low) break;
      new_pfn = -1;
      // Retry once from the limit down to where the cached search began.
      if (pass === 0 && low === this.start_pfn && retry_pfn < limit) {
        high = limit;
        low = retry_pfn + 1;
        i = this.lowerBound(limit);
        if (i > 0 && this.hi[i - 1] >= limit) i--; // a node straddling the limit bounds the gap
        continue;
      }
      break;
    }
    if (new_pfn < 0) {
      if (is32) this.max32_alloc_size = size;
      return this.fail();
    }
    const at = this.lowerBound(new_pfn);
    this.insertAt(at, new_pfn, new_pfn + size - 1, KIND_ALLOC);
    // iova_insert_rbtree + __cached_rbnode_insert_update
    if (new_pfn + size - 1 < this.dma_32bit_pfn) this.cached32 = new_pfn;
    else this.cached = new_pfn;
    this.stats.allocs++;
    this.stats.live_pages += size;
    return new_pfn;
  }

  private fail(): number {
    this.stats.failures++;
    return -1;
  }

  /**
   * alloc_iova_fast - alloc_iova with the rcache rounding: requests shorter than 32 granules
   * become a power of two; every request is size-aligned.
   * Returns: the first pfn, or -1.
   */
  alloc_iova_fast(size: number, limit_pfn: number): number {
    const n = size < IOVA_RANGE_CACHE_MAX_PAGES ? roundup_pow_of_two(size) : size;
    return this.alloc_iova(n, limit_pfn, true);
  }

  /**
   * free_iova - release the allocated range containing @pfn.
   * Returns: the granules released (0: nothing allocated there, or a reserved range).
   */
  free_iova(pfn: number): number {
    const i = this.indexOf(pfn);
    if (i < 0 || this.kind[i] !== KIND_ALLOC) return 0;
    const lo = this.lo[i];
    const hi = this.hi[i];
    const next = this.lo[i + 1]; // the anchor guarantees a next node
    // __cached_rbnode_delete_update: move the caches up past the freed gap so it is found again
    if (lo === this.cached32 || (hi < this.dma_32bit_pfn && lo >= this.cached32)) this.cached32 = next;
    if (lo < this.dma_32bit_pfn) this.max32_alloc_size = this.dma_32bit_pfn;
    if (lo >= this.cached) this.cached = next;
    this.removeAt(i);
    this.stats.frees++;
    this.stats.live_pages -= hi - lo + 1;
    return hi - lo + 1;
  }

  /** find_iova - the live range containing @pfn, or null. */
  find_iova(pfn: number): iova_range | null {
    const i = this.indexOf(pfn);
    if (i < 0 || this.lo[i] === IOVA_ANCHOR) return null;
    return { pfn_lo: this.lo[i], pfn_hi: this.hi[i], reserved: this.kind[i] === KIND_RESERVED };
  }

  /** Granules of the allocated (not reserved) range starting exactly at @pfn, or 0. */
  size_at(pfn: number): number {
    const i = this.indexOf(pfn);
    return i >= 0 && this.lo[i] === pfn && this.kind[i] === KIND_ALLOC ? this.hi[i] - pfn + 1 : 0;
  }

  /**
   * reserve_iova - keep [pfn_lo, pfn_hi] out of every allocation. Overlapping reserved ranges
   * merge; an overlap with an allocated range is refused.
   * Returns: true if reserved.
   */
  reserve_iova(pfn_lo: number, pfn_hi: number): boolean {
    if (!(pfn_lo <= pfn_hi) || pfn_lo < 0) return false;
    let lo = pfn_lo;
    let hi = Math.min(pfn_hi, IOVA_ANCHOR - 1);
    let i = this.lowerBound(lo);
    if (i > 0 && this.hi[i - 1] >= lo - 1 && this.kind[i - 1] === KIND_RESERVED) i--;
    // absorb the reserved neighbours it touches; refuse allocated ones
    while (i < this.n && this.lo[i] <= hi + 1 && this.lo[i] !== IOVA_ANCHOR) {
      if (this.kind[i] !== KIND_RESERVED) {
        if (this.lo[i] <= hi) return false;
        break;
      }
      lo = Math.min(lo, this.lo[i]);
      hi = Math.max(hi, this.hi[i]);
      this.removeAt(i);
    }
    this.insertAt(this.lowerBound(lo), lo, hi, KIND_RESERVED);
    return true;
  }

  /** The live ranges, lowest first (anchor excluded). */
  ranges(): iova_range[] {
    const out: iova_range[] = [];
    for (let i = 0; i < this.n - 1; i++) out.push({ pfn_lo: this.lo[i], pfn_hi: this.hi[i], reserved: this.kind[i] === KIND_RESERVED });
    return out;
  }
}
