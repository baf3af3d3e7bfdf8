/**
 * dma-debug's active-cacheline tracker (§7.1, §7.2 rows 5-6; debug.c active_cacheline_*).
 *
 * Every live entry the device may write (FROM_DEVICE and BIDIRECTIONAL streaming mappings,
 * each sg segment separately, coherent allocations) is keyed by the cache line holding its
 * first byte. A second such entry on a line that is already active is reported as
 * `cacheline-overlap`: on a non-coherent machine the two mappings' cache maintenance and the
 * CPU's use of the line fight each other (§5.4). As in Linux only the first line is keyed, so
 * this catches a buffer mapped twice and small buffers that start in one line; the coherence
 * sanitizer sees the other cases when they actually lose data.
 *
 * Granularity: Linux keys by L1_CACHE_BYTES. We take the larger of the machine's line size and
 * dma_get_cache_alignment(), i.e. the writeback granule DMA buffers must not share (64 bytes on
 * x86, 128 on arm64), so x86 behaves as Linux does and arm64 is judged by ARCH_DMA_MINALIGN.
 *
 * Not reported, as in Linux: mappings with DMA_ATTR_SKIP_CPU_SYNC (the caller manages the
 * lines), and overlaps where both mappings carry DMA_ATTR_DEBUGGING_IGNORE_CACHELINES.
 * Not mirrored: Linux also stays quiet for a device whose small kmalloc buffers are bounced
 * (CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC with swiotlb active). That bouncing only happens where
 * kmalloc aligns below the DMA alignment, which no built-in profile does.
 * More than 7 entries on one line gets Linux's one-time "exceeded" warning (a leak hint).
 */

import type { Kernel } from "../core/kernel.ts";
import { KERN_WARNING } from "../core/printk.ts";
import { DMA_ATTR_DEBUGGING_IGNORE_CACHELINES, DMA_ATTR_SKIP_CPU_SYNC, DMA_TO_DEVICE, dma_fmt_addr } from "./defs.ts";
import type { dma_debug_entry } from "./debug-entry.ts";
import { dma_state } from "./state.ts";

/** ACTIVE_CACHELINE_MAX_OVERLAP. */
export const ACTIVE_CACHELINE_MAX_OVERLAP = 7;

class CachelineTracker {
  readonly lines = new Map<number, dma_debug_entry[]>();
  warnedMax = false;
}

/** The tracker of @k; created with a table listener so entries leave it however they go. */
function tracker(k: Kernel): CachelineTracker {
  return k.state("dma-debug-cacheline", () => {
    const t = new CachelineTracker();
    dma_state(k).table.listen({
      onAdd: () => {},
      onRemove: (e) => dma_debug_cacheline_remove(k, e),
      // an sg run is one direction throughout: untracked (DMA_TO_DEVICE) runs need no entries
      onRemoveRun: (run) => {
        if (run.call.dir !== DMA_TO_DEVICE) for (let i = 0; i < run.n; i++) dma_debug_cacheline_remove(k, run.entryAt(i));
      },
    });
    return t;
  });
}

/** The tracking granule in bytes for @k's machine. */
export function dma_debug_cacheline_size(k: Kernel): number {
  // dma_get_cache_alignment() of @k (that function asks the running kernel)
  const align = k.arch === "x86" && k.platform.coherentDma ? 1 : k.dmaMinAlign;
  return Math.max(k.platform.lineSize(), align);
}

function tracked(e: dma_debug_entry): boolean {
  return e.direction !== DMA_TO_DEVICE;
}

function live(k: Kernel, e: dma_debug_entry): boolean {
  return dma_state(k).table.has(e);
}

/** What an overlap looks like to the reporter: the entry already on the line. */
export interface dma_cacheline_overlap {
  readonly other: dma_debug_entry;
  readonly line: number;
  readonly lineSize: number;
  readonly count: number;
}

/**
 * dma_debug_cacheline_insert - track @e; report nothing, return the overlap to report (or null)
 * Context: any.
 */
export function dma_debug_cacheline_insert(k: Kernel, e: dma_debug_entry): dma_cacheline_overlap | null {
  if (!tracked(e)) return null;
  const t = tracker(k);
  const lineSize = dma_debug_cacheline_size(k);
  const line = Math.floor(e.phys / lineSize);
  let list = t.lines.get(line);
  if (!list) {
    t.lines.set(line, [e]);
    return null;
  }
  // defensive: an entry removed while no listener was registered
  for (let i = list.length - 1; i >= 0; i--) if (!live(k, list[i])) list.splice(i, 1);
  list.push(e);
  if (list.length === 1) return null;
  if (list.length > ACTIVE_CACHELINE_MAX_OVERLAP + 1 && !t.warnedMax) {
    t.warnedMax = true;
    k.warnings++;
    k.printk.log(KERN_WARNING, `WARNING: exceeded ${ACTIVE_CACHELINE_MAX_OVERLAP} overlapping mappings of cacheline ${dma_fmt_addr(line * lineSize)}`, "DMA-API: ");
  }
  const other = list[0];
  if (e.attrs & DMA_ATTR_SKIP_CPU_SYNC) return null;
  if (e.attrs & DMA_ATTR_DEBUGGING_IGNORE_CACHELINES && list.every((x) => x.attrs & DMA_ATTR_DEBUGGING_IGNORE_CACHELINES)) return null;
  return { other, line, lineSize, count: list.length };
}

/**
 * dma_debug_cacheline_remove - stop tracking @e (it was unmapped or freed); the table's
 * listener calls it. Context: any.
 */
export function dma_debug_cacheline_remove(k: Kernel, e: dma_debug_entry): void {
  if (!tracked(e)) return;
  const t = k.subsys.get("dma-debug-cacheline") as CachelineTracker | undefined;
  if (!t) return;
  const line = Math.floor(e.phys / dma_debug_cacheline_size(k));
  const list = t.lines.get(line);
  if (!list) return;
  const i = list.indexOf(e);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) t.lines.delete(line);
}

/** Entries being tracked (for tests and the dump). */
export function dma_debug_cacheline_count(k: Kernel): number {
  const t = k.subsys.get("dma-debug-cacheline") as CachelineTracker | undefined;
  let n = 0;
  if (t) for (const l of t.lines.values()) n += l.length;
  return n;
}
