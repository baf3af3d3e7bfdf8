/**
 * Live streaming mappings by CPU physical address: what the sanitizer consults on every CPU
 * access while any mapping is live.
 *
 * A record covers its mapping's bytes and, for a mapping the device writes (FROM_DEVICE,
 * BIDIRECTIONAL), the rest of every cache-line granule the mapping touches inside the same
 * allocation: the bytes a CPU store must not dirty while the device owns the buffer (§5.3,
 * §5.4). Records may overlap (one buffer mapped twice, or for two devices). Starts are kept
 * sorted and the longest record bounds a backward walk, as in the dma-debug table. Queries
 * fill a reused array, so the hot path allocates nothing.
 */

import type { dma_debug_entry } from "../debug-table.ts";

export interface san_record {
  readonly e: dma_debug_entry;
  /** First byte a CPU store may not dirty while the device owns the mapping. */
  readonly lo: number;
  /** One past the last such byte. */
  readonly hi: number;
  /**
   * e.history.length when the CPU last wrote the mapping's bytes while owning them (-1:
   * never). Tells a documented recycle (device reuses a buffer the CPU only read after
   * sync_for_cpu) from a missing sync_for_device.
   */
  cpuWriteAt: number;
  /**
   * e.history.length when the device took the buffer back without a sync (the recycle
   * above). Until the next DMA API call on the mapping the device owns it again, whatever
   * the dma-debug domain says; -1: not recycled.
   */
  recycledAt: number;
}

/** Index of the first element of sorted `a` greater than `x`. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class PhysIndex {
  private readonly starts: number[] = [];
  private readonly recs: san_record[] = [];
  /** Longest record ever indexed: how far back a query must look. */
  private maxLen = 0;
  /** Results of the last query (valid until the next one). */
  readonly hits: san_record[] = [];

  get count(): number {
    return this.recs.length;
  }

  add(r: san_record): void {
    const i = upperBound(this.starts, r.lo);
    this.starts.splice(i, 0, r.lo);
    this.recs.splice(i, 0, r);
    if (r.hi - r.lo > this.maxLen) this.maxLen = r.hi - r.lo;
  }

  remove(r: san_record): void {
    for (let i = upperBound(this.starts, r.lo) - 1; i >= 0 && this.starts[i] === r.lo; i--) {
      if (this.recs[i] !== r) continue;
      this.starts.splice(i, 1);
      this.recs.splice(i, 1);
      if (this.recs.length === 0) this.maxLen = 0;
      return;
    }
  }

  /**
   * Records overlapping [a, b), into `hits` (in descending start order).
   * Returns: how many.
   */
  query(a: number, b: number): number {
    const hits = this.hits;
    hits.length = 0;
    const starts = this.starts;
    for (let i = upperBound(starts, b - 1) - 1; i >= 0 && starts[i] + this.maxLen > a; i--) {
      const r = this.recs[i];
      if (r.hi > a) hits.push(r);
    }
    return hits.length;
  }
}
