/**
 * The CPU side of DMA segments that are not one physical range.
 *
 * A dma-debug entry describes its CPU memory as [phys, phys + size), as Linux's does. That holds
 * for every direct-path mapping and every single mapping through an IOMMU, but not for a
 * scatter-gather segment an IOMMU merged: its IOVA range is contiguous while the pages behind
 * it are wherever the sg entries were. The DMA layer (kernel/dma/iommu-dma-sg.ts) stages the
 * real pieces here right before it records such segments with dma-debug, and the sanitizer
 * takes them when the entry is added, so its CPU-side index covers exactly the mapped bytes.
 * Staging lasts one call (nothing runs in between), so one process-wide slot serves every kernel.
 */

import type { device } from "../../include/device.ts";
import type { dma_debug_entry } from "../debug-entry.ts";

/** One physically contiguous stretch of a segment: mapping offset `off`, CPU physical `phys`. */
export interface san_cpu_piece {
  readonly off: number;
  readonly phys: number;
  readonly size: number;
}

let stagedDev: device | null = null;
const staged = new Map<number, readonly san_cpu_piece[]>();

/**
 * san_stage_cpu_pieces - the segment of @dev at bus address @dev_addr about to be recorded
 * consists of @pieces. Call san_unstage_cpu_pieces() once the segments are recorded.
 */
export function san_stage_cpu_pieces(dev: device, dev_addr: number, pieces: readonly san_cpu_piece[]): void {
  if (stagedDev !== dev) staged.clear();
  stagedDev = dev;
  staged.set(dev_addr, pieces);
}

/** san_unstage_cpu_pieces - forget whatever was staged. */
export function san_unstage_cpu_pieces(): void {
  stagedDev = null;
  staged.clear();
}

/** The staged pieces of @e, if any (the sanitizer's onAdd). */
export function san_cpu_pieces_of(e: dma_debug_entry): readonly san_cpu_piece[] | null {
  if (stagedDev !== e.dev || staged.size === 0 || e.type !== "sg") return null;
  return staged.get(e.dev_addr) ?? null;
}
