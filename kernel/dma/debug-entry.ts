/**
 * The entries of the dma-debug table (debug.c's struct dma_debug_entry): what dma-debug knows
 * of one live mapping or allocation, and its history of DMA API calls, built when first read.
 */

import type { device } from "../include/device.ts";
import type { vaddr_t } from "../include/types.ts";
import type { FindingHistoryEntry } from "../core/findings.ts";
import type { dma_data_direction } from "./defs.ts";
import { note_map } from "./debug-history.ts";

/**
 * How an entry was created; unmapping with another function is an error. "sg": one segment of
 * a dma_map_sg mapping (Linux's "scather-gather" entries, one per mapped segment).
 */
export type dma_debug_type = "single" | "page" | "coherent" | "noncoherent" | "sg";

/**
 * Who may touch the bytes now (§1.2): CPU after sync_for_cpu/unmap, DEVICE after
 * map/sync_for_device; COHERENT memory is shared and has no hand-over.
 */
export type dma_domain = "CPU" | "DEVICE" | "COHERENT";

export interface dma_debug_entry {
  readonly dev: device;
  readonly type: dma_debug_type;
  readonly dev_addr: number;
  readonly phys: number;
  /** The CPU address the driver passed or was given (linear, stack or uncached alias). */
  readonly cpu_addr: vaddr_t;
  readonly size: number;
  readonly direction: dma_data_direction;
  readonly attrs: number;
  /** Driver that created the entry (the code running at map/alloc time). */
  readonly owner: string;
  readonly timeNs: number;
  /** dma_mapping_error() was called on this handle (always true for allocations). */
  map_err_checked: boolean;
  /** The unchecked error has been reported once already. */
  map_err_reported: boolean;
  domain: dma_domain;
  /** Reported by dma_debug_device_unbind as a leak already. */
  leak_reported: boolean;
  readonly history: FindingHistoryEntry[];
  /** sg entries: the nents the driver passed to dma_map_sg (unmap and sync must pass it too). */
  readonly sg_call_ents?: number;
  /** sg entries: the count dma_map_sg returned (how many segments have entries). */
  readonly sg_mapped_ents?: number;
  /** The coherence sanitizer's record of this entry (its business; null or absent: none). */
  san_rec?: unknown;
  /**
   * After a partial sync: the offset ranges [a0, b0, a1, b1, ...) the CPU owns (sorted,
   * disjoint), the device owning the rest, with domain "CPU". null or absent: domain says who
   * owns every byte (debug-owner.ts).
   */
  cpu_owned?: number[] | null;
}

/**
 * The entries dma-debug makes (debug_dma_add). The history starts with the map note, which is
 * made from the entry's own fields when the history is first read; one more note (the unmap
 * of a mapping nobody looked at) is held aside the same way. So the usual map/unmap cycle
 * allocates no history array.
 */
export class DmaDebugEntry implements dma_debug_entry {
  map_err_checked: boolean;
  map_err_reported = false;
  leak_reported = false;
  san_rec: unknown = null;
  cpu_owned: number[] | null = null;
  /** In the table now (set by DmaDebugTable.add and remove). */
  live = false;
  /** Stands for a whole dma_map_sg call, recorded while dma-debug was off (debug-sg-whole.ts). */
  sg_whole = false;
  /** sg segments: the entry of the next segment of the same dma_map_sg call, while live. */
  next_seg: DmaDebugEntry | null = null;
  private hist: FindingHistoryEntry[] | null = null;
  private pend: FindingHistoryEntry | null = null;

  constructor(
    readonly dev: device,
    readonly type: dma_debug_type,
    readonly dev_addr: number,
    readonly phys: number,
    readonly cpu_addr: vaddr_t,
    readonly size: number,
    readonly direction: dma_data_direction,
    readonly attrs: number,
    public domain: dma_domain,
    readonly sg_call_ents: number | undefined,
    readonly sg_mapped_ents: number | undefined,
    readonly owner: string,
    readonly timeNs: number,
    /** The map call and the sg segment index (-1: none), for the first note. */
    private readonly mapOp: string,
    private readonly mapSeg: number,
  ) {
    // allocations return no error cookie, and sg maps return a count: nothing to check
    this.map_err_checked = type === "coherent" || type === "noncoherent" || type === "sg";
  }

  get history(): FindingHistoryEntry[] {
    let h = this.hist;
    if (h === null) {
      h = [note_map(this.timeNs, this.mapOp, this.mapSeg, this.sg_call_ents ?? 0, this.dev_addr, this.size, this.direction)];
      if (this.pend !== null) h.push(this.pend);
      this.pend = null;
      this.hist = h;
    }
    return h;
  }

  /** history.length, without building the history. */
  get historyLength(): number {
    return this.hist !== null ? this.hist.length : this.pend !== null ? 2 : 1;
  }

  note(n: FindingHistoryEntry): void {
    if (this.hist !== null) this.hist.push(n);
    else if (this.pend === null) this.pend = n;
    else this.history.push(n);
  }
}

/** dma_debug_entry_note - append @n to @e's history. Context: any. */
export function dma_debug_entry_note(e: dma_debug_entry, n: FindingHistoryEntry): void {
  if (e instanceof DmaDebugEntry) e.note(n);
  else e.history.push(n);
}

/** dma_debug_history_length - @e.history.length, without building a lazy history. */
export function dma_debug_history_length(e: dma_debug_entry): number {
  return e instanceof DmaDebugEntry ? e.historyLength : e.history.length;
}

/** What a caller knows when it looks an entry up (the `ref` of debug.c). */
export interface dma_debug_ref {
  readonly type: dma_debug_type;
  readonly size: number;
  readonly direction: dma_data_direction;
}
