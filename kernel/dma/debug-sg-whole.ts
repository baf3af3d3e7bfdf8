/**
 * dma-debug's sg bookkeeping while it is off (dma_debug=off, what `boot({ checks: false })`
 * gives) and nobody listens to the table (no coherence sanitizer): nothing will ever check or
 * report a segment, yet the table must still say whether mappings are live (the teardown
 * check "no live DMA mappings", dma_debug_live()). So a dma_map_sg call is recorded whole: one
 * entry of type "sg" at the first segment's address whose size is the bytes of all mapped
 * segments, dropped by the unmap of the same list, without a table insert and delete per
 * segment. Segment entries made while dma-debug was on are still dropped one by one
 * (debug-sg.ts).
 */

import type { Kernel } from "../core/kernel.ts";
import type { device } from "../include/device.ts";
import { PAGE_SIZE, type vaddr_t } from "../include/types.ts";
import { PAGE_OFFSET } from "../mm/layout.ts";
import type { scatterlist } from "../lib/scatterlist.ts";
import type { dma_data_direction } from "./defs.ts";
import { DmaDebugEntry, dma_debug_entry_note, type dma_debug_entry } from "./debug-entry.ts";
import { debug_dma_add } from "./debug.ts";
import { note_sg_sync, note_sg_unmap } from "./debug-history.ts";
import { dma_debug_disabled } from "./debug-knobs.ts";
import { dma_state } from "./state.ts";

/** sg_whole_records - record each call whole rather than each segment? Only while nothing could use segments. */
export function sg_whole_records(k: Kernel): boolean {
  return dma_debug_disabled(k) && !dma_state(k).table.listening;
}

/** The whole-call entry of @dev at @addr (the list's first segment), preferring @nents. */
function find_whole(k: Kernel, dev: device, addr: number, nents: number): dma_debug_entry | null {
  let found: dma_debug_entry | null = null;
  const table = dma_state(k).table;
  for (let i = 0, e = table.nthAt(dev, addr, 0); e !== null; e = table.nthAt(dev, addr, ++i)) {
    if (!(e instanceof DmaDebugEntry) || !e.sg_whole) continue;
    if (e.sg_call_ents === nents) return e;
    found ??= e;
  }
  return found;
}

/** sg_whole_add - debug_dma_map_sg with dma-debug off: one entry for the whole call. Context: any. */
export function sg_whole_add(k: Kernel, dev: device, sgl: scatterlist, nents: number, mapped: number, dir: dma_data_direction, attrs: number, op: string, size: number): void {
  const phys = sgl.page ? sgl.page.pfn * PAGE_SIZE + sgl.offset : 0;
  const e = debug_dma_add(k, {
    dev,
    type: "sg",
    dev_addr: sgl.dma_address,
    phys,
    cpu_addr: (PAGE_OFFSET + phys) as vaddr_t,
    size,
    direction: dir,
    attrs,
    domain: "DEVICE",
    sg_call_ents: nents,
    sg_mapped_ents: mapped,
  }, op);
  // a flag on the entry, not a WeakSet (an insert per call showed as 3% of a checks-off sg256 profile)
  e.sg_whole = true;
}

/**
 * sg_whole_unmap - debug_dma_unmap_sg of a call recorded whole: note and drop its entry.
 * Context: any. Returns: false if @sgl's first segment has no whole-call entry of @dev.
 */
export function sg_whole_unmap(k: Kernel, dev: device, sgl: scatterlist, nelems: number, dir: dma_data_direction, op: string): boolean {
  const w = find_whole(k, dev, sgl.dma_address, nelems);
  if (w === null) return false;
  dma_debug_entry_note(w, note_sg_unmap(k.exec.now(), op, nelems, w.size, dir));
  w.domain = "CPU";
  dma_state(k).table.remove(w);
  return true;
}

/**
 * sg_whole_sync - debug_dma_sync_sg of a call recorded whole: note it and move the ownership.
 * Context: any. Returns: false if @sgl's first segment has no whole-call entry of @dev.
 */
export function sg_whole_sync(k: Kernel, dev: device, sgl: scatterlist, nelems: number, dir: dma_data_direction, to_cpu: boolean, op: string): boolean {
  const w = find_whole(k, dev, sgl.dma_address, nelems);
  if (w === null) return false;
  dma_debug_entry_note(w, note_sg_sync(k.exec.now(), op, nelems, sgl.dma_address, w.size, dir));
  w.domain = to_cpu ? "CPU" : "DEVICE";
  return true;
}
