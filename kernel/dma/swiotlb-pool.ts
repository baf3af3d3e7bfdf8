/**
 * The slot allocator of a swiotlb pool (kernel/dma/swiotlb.c: swiotlb_search_pool_area,
 * swiotlb_release_slots), kept free of kernel calls so it can be tested on its own.
 *
 * The pool is an array of 2 KiB slots (IO_TLB_SHIFT 11) grouped in segments of 128 slots
 * (IO_TLB_SEGSIZE). An allocation is a run of contiguous slots that never leaves its segment,
 * so no mapping exceeds 256 KiB. As in Linux each slot keeps `list`, the number of free slots
 * from it to the end of its segment (0 when used): a run of n fits at slot i iff list[i] >= n,
 * and freeing merges the run with free neighbours by recounting those numbers. Each slot of an
 * allocation also records the original physical address it shadows (original + i x 2 KiB) and
 * how many bytes of the mapping remain from its start, which is what lets a partial sync find
 * its bytes.
 *
 * The search is next-fit from where the last one stopped. Linux splits the pool into per-CPU
 * areas with a lock each; here there is one area (nothing runs in parallel), which changes
 * which free slot is picked, not whether one is found.
 */

export const IO_TLB_SHIFT = 11;
export const IO_TLB_SIZE = 1 << IO_TLB_SHIFT;
export const IO_TLB_SEGSIZE = 128;
/** The largest single bounce allocation (swiotlb_max_mapping_size without min_align_mask). */
export const IO_TLB_SEGMENT_BYTES = IO_TLB_SIZE * IO_TLB_SEGSIZE;
/** IO_TLB_DEFAULT_SIZE: 64 MiB. */
export const IO_TLB_DEFAULT_SIZE = 64 << 20;
/** orig_addr of a free slot (INVALID_PHYS_ADDR). */
export const INVALID_PHYS_ADDR = -1;

const PAGE_SIZE = 4096;
const TWO_32 = 4294967296;

/** Slots needed for @size bytes (nr_slots). */
export function nr_slots(size: number): number {
  return Math.ceil(size / IO_TLB_SIZE);
}

/** Low bits of a (possibly > 32-bit) address under a mask below 2^31: JS bit operators are 32-bit. */
export function low_bits(addr: number, mask: number): number {
  return (addr % TWO_32) & mask;
}

/** get_max_slots: slots in a (mask + 1)-sized window; an all-ones mask means "no limit". */
function get_max_slots(mask: number): number {
  if (mask >= Number.MAX_SAFE_INTEGER) return 2 ** (64 - IO_TLB_SHIFT);
  return nr_slots(mask + 1);
}

/** iommu_is_span_boundary: would slots [index, index+nr) cross a boundary_size-slot line? */
function crosses_boundary(index: number, nr: number, shift: number, boundarySlots: number): boolean {
  const pos = (shift + index) % boundarySlots;
  return pos + nr > boundarySlots;
}

/** What the search must honour (swiotlb_search_pool_area's arguments, resolved). */
export interface slot_request {
  /** Physical address of the original buffer (0 = none: no min_align_mask matching). */
  readonly orig_addr: number;
  /** Bytes to allocate: the mapping plus the preserved min_align offset. */
  readonly alloc_size: number;
  /** Required alignment of the allocation minus one (0: none beyond a slot). */
  readonly alloc_align_mask: number;
  /** The device's min_align_mask (0 if it has none). */
  readonly min_align_mask: number;
  /** The device's segment boundary mask (Number.MAX_SAFE_INTEGER: none). */
  readonly boundary_mask: number;
  /** Bytes of the first slot before the mapping starts (the preserved low bits). */
  readonly offset: number;
}

export class IoTlbPool {
  readonly nslabs: number;
  /** Per slot: original physical address shadowed, or INVALID_PHYS_ADDR. */
  readonly orig_addr: Float64Array;
  /** Per slot: bytes of the allocation from this slot's start (as swiotlb.c keeps alloc_size). */
  readonly alloc_size: Float64Array;
  /** Per slot: free slots from here to the end of the segment; 0 if used. */
  readonly list: Int32Array;
  /** 1 on the first slot of a live allocation: only such a slot can be released. */
  readonly head: Uint8Array;
  /** On a head slot: how many slots the allocation holds (Linux derives it from alloc_size). */
  readonly run: Int32Array;
  /** Next-fit cursor (area->index). */
  index = 0;
  used = 0;
  hiwater = 0;

  /**
   * @start: physical (= bus) address of the first slot, page aligned
   * @nslabs: number of slots, a multiple of IO_TLB_SEGSIZE
   */
  constructor(
    readonly start: number,
    nslabs: number,
  ) {
    if (!(nslabs > 0) || nslabs % IO_TLB_SEGSIZE !== 0) throw new RangeError(`swiotlb: nslabs ${nslabs} is not a positive multiple of ${IO_TLB_SEGSIZE}`);
    this.nslabs = nslabs;
    this.orig_addr = new Float64Array(nslabs).fill(INVALID_PHYS_ADDR);
    this.alloc_size = new Float64Array(nslabs);
    this.list = new Int32Array(nslabs);
    this.head = new Uint8Array(nslabs);
    this.run = new Int32Array(nslabs);
    for (let i = 0; i < nslabs; i++) this.list[i] = IO_TLB_SEGSIZE - (i % IO_TLB_SEGSIZE);
  }

  get end(): number {
    return this.start + this.nslabs * IO_TLB_SIZE;
  }

  get bytes(): number {
    return this.nslabs * IO_TLB_SIZE;
  }

  /** Does [phys, phys+1) lie in the pool (is_swiotlb_buffer)? */
  contains(phys: number): boolean {
    return phys >= this.start && phys < this.end;
  }

  /** Address of slot @i. */
  slot_addr(i: number): number {
    return this.start + i * IO_TLB_SIZE;
  }

  /** Slot holding byte @phys of the pool. */
  slot_of(phys: number): number {
    return Math.floor((phys - this.start) / IO_TLB_SIZE);
  }

  /**
   * find - allocate slots for @r (swiotlb_search_pool_area + the bookkeeping of
   * swiotlb_tbl_map_single). Allocations of a page or more are page aligned when the device
   * has no min_align_mask; slots whose address disagrees with the original in the
   * min_align_mask bits above the slot size are skipped; runs never cross the segment
   * boundary.
   * Returns: the first slot's index, or -1 if no run fits.
   */
  find(r: slot_request): number {
    // A zero-length mapping still takes a slot: its address must be unique and releasable.
    const nslots = Math.max(1, nr_slots(r.alloc_size));
    if (nslots > this.nslabs - this.used) return -1;
    let alloc_align_mask = r.alloc_align_mask;
    let iotlb_align_mask = r.min_align_mask;
    if (!alloc_align_mask && !iotlb_align_mask && r.alloc_size >= PAGE_SIZE) alloc_align_mask = PAGE_SIZE - 1;
    alloc_align_mask |= IO_TLB_SIZE - 1;
    iotlb_align_mask &= ~alloc_align_mask;
    const stride = get_max_slots(Math.max(alloc_align_mask, iotlb_align_mask));
    const boundary = r.boundary_mask >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : r.boundary_mask;
    // tbl_dma_addr: the pool's bus address within the boundary window
    const tbl = boundary >= Number.MAX_SAFE_INTEGER ? this.start : this.start % (boundary + 1);
    const maxSlots = get_max_slots(boundary);
    const shift = nr_slots(tbl);
    let index = this.index;
    for (let checked = 0; checked < this.nslabs; ) {
      const a = tbl + index * IO_TLB_SIZE;
      if (low_bits(a, alloc_align_mask) !== 0 || (r.orig_addr && low_bits(a, iotlb_align_mask) !== low_bits(r.orig_addr, iotlb_align_mask))) {
        index = this.wrap(index + 1);
        checked++;
        continue;
      }
      if (!crosses_boundary(index, nslots, shift, maxSlots) && this.list[index] >= nslots) {
        this.take(index, nslots, r);
        this.index = this.wrap(index + nslots);
        return index;
      }
      index = this.wrap(index + stride);
      checked += stride;
    }
    return -1;
  }

  private wrap(i: number): number {
    return i >= this.nslabs ? 0 : i;
  }

  private take(first: number, nslots: number, r: slot_request): void {
    for (let i = first; i < first + nslots; i++) {
      this.list[i] = 0;
      this.alloc_size[i] = r.alloc_size - (r.offset + (i - first) * IO_TLB_SIZE);
      this.orig_addr[i] = r.orig_addr + (i - first) * IO_TLB_SIZE;
    }
    this.head[first] = 1;
    this.run[first] = nslots;
    // The free run before us now ends at `first`: recount it.
    let count = 0;
    for (let i = first - 1; i >= 0 && i % IO_TLB_SEGSIZE !== IO_TLB_SEGSIZE - 1 && this.list[i]; i--) this.list[i] = ++count;
    this.used += nslots;
    if (this.used > this.hiwater) this.hiwater = this.used;
  }

  /** Slots held by the allocation whose first slot is @first (0 if none starts there). */
  slots_of(first: number): number {
    if (!(first >= 0 && first < this.nslabs) || !this.head[first]) return 0;
    return this.run[first];
  }

  /**
   * release - free the allocation starting at slot @first (swiotlb_release_slots). The slot
   * count comes from the pool's own record, never from the caller, so an unmap with the
   * wrong size frees exactly what was allocated.
   * Returns: the number of slots freed, 0 if no allocation starts at @first.
   */
  release(first: number): number {
    const n = this.slots_of(first);
    if (n === 0) return 0;
    let count = first + n < Math.ceil((first + 1) / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE ? this.list[first + n] : 0;
    for (let i = first + n - 1; i >= first; i--) {
      this.list[i] = ++count;
      this.orig_addr[i] = INVALID_PHYS_ADDR;
      this.alloc_size[i] = 0;
    }
    this.head[first] = 0;
    this.run[first] = 0;
    for (let i = first - 1; i >= 0 && i % IO_TLB_SEGSIZE !== IO_TLB_SEGSIZE - 1 && this.list[i]; i--) this.list[i] = ++count;
    this.used -= n;
    return n;
  }
}
