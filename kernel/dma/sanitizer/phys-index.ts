/**
 * Live streaming mappings by CPU physical address: what the sanitizer consults on every CPU
 * access while any mapping is live.
 *
 * A record covers its mapping's bytes and, for a mapping the device writes (FROM_DEVICE,
 * BIDIRECTIONAL), the rest of every cache-line granule the mapping touches inside the same
 * allocation: the bytes a CPU store must not dirty while the device owns the buffer (§5.3,
 * §5.4). Records may overlap (one buffer mapped twice, or for two devices). Starts are kept
 * sorted (on demand: sorted-keys.ts) and the longest record bounds a backward walk, as in the
 * dma-debug table. Queries fill a reused array, so the hot path allocates nothing.
 */

import type { dma_debug_entry } from "../debug-table.ts";
import { SortedMultiMap } from "../sorted-keys.ts";

export interface san_record {
  readonly e: dma_debug_entry;
  /** First byte a CPU store may not dirty while the device owns the mapping. */
  readonly lo: number;
  /** One past the last such byte. */
  readonly hi: number;
  /**
   * The CPU bytes of the mapping this record covers: [plo, plo + psize), at mapping offset
   * poff. One record per entry (plo = e.phys, poff 0) unless an IOMMU merged pages from several
   * places into one segment (cpu-pieces.ts): then one record per piece.
   */
  readonly plo: number;
  readonly psize: number;
  readonly poff: number;
  /** The entry's first record, which carries cpuWriteAt and recycledAt for all its pieces. */
  readonly main: san_record | null;
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

export class PhysIndex {
  /** Records by first byte; starts sorted on demand (sorted-keys.ts). */
  private readonly recs = new SortedMultiMap<san_record>();
  /** Longest record ever indexed: how far back a query must look. */
  private maxLen = 0;
  /** Results of the last query (valid until the next one). */
  readonly hits: san_record[] = [];
  /** Scratch for the starts a query walks. */
  private readonly starts: number[] = [];

  get count(): number {
    return this.recs.count;
  }

  add(r: san_record): void {
    this.recs.add(r.lo, r);
    if (r.hi - r.lo > this.maxLen) this.maxLen = r.hi - r.lo;
  }

  remove(r: san_record): void {
    if (this.recs.remove(r.lo, r) && this.recs.count === 0) this.maxLen = 0;
  }

  /**
   * Records overlapping [a, b), into `hits`: in descending start order, the later added first
   * among records with the same start.
   * Returns: how many.
   */
  query(a: number, b: number): number {
    const hits = this.hits;
    hits.length = 0;
    const starts = this.starts;
    // starts in (a - maxLen, b - 1]: a record starting at or below a - maxLen ends by a
    const n = this.recs.keys().downFrom(b - 1, a - this.maxLen + 1, starts);
    for (let i = 0; i < n; i++) {
      const list = this.recs.get(starts[i])!;
      for (let j = list.length - 1; j >= 0; j--) if (list[j].hi > a) hits.push(list[j]);
    }
    return hits.length;
  }
}
