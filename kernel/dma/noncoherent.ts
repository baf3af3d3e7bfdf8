/**
 * Cache maintenance for non-coherent DMA: our arch/arm64/mm/dma-mapping.c and the dcache_*_poc
 * routines of arch/arm64/mm/cache.S.
 *
 * The modern arm64 column of §5.2 of the spec:
 *   map / sync_for_device   TO_DEVICE clean, FROM_DEVICE clean, BIDIRECTIONAL clean
 *   sync_for_cpu / unmap    TO_DEVICE nothing, FROM_DEVICE invalidate, BIDIRECTIONAL invalidate
 * FROM_DEVICE is cleaned (not invalidated) before the transfer so CPU writes already made to
 * the buffer are never thrown away; the invalidate after the transfer is what guarantees
 * fresh data, since a speculating CPU may have refetched lines while the device owned them.
 * An invalidate whose first or last line is only partly covered cleans+invalidates that line
 * instead (`__dma_inv_area`): bytes outside the buffer that share the line survive, at the
 * price of writing the line's stale buffer bytes back (the §5.4 shared-line hazard).
 *
 * Callers decide whether maintenance applies at all (coherent device, DMA_ATTR_SKIP_CPU_SYNC).
 * The CPU doing the work is the one running the calling code (`k.exec.cpu`); each operation is
 * charged to it by the memory system, counted in dma_stats and traced as an instant.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { TRACE_PID_CPU } from "../platform/platform.ts";
import type { phys_addr_t } from "../include/types.ts";
import * as defs from "./defs.ts";
import type { dma_data_direction } from "./defs.ts";
import { dma_state } from "./state.ts";

// A module constant, not an imported binding, in the per-segment test (see direct.ts).
const { DMA_TO_DEVICE } = defs;

type CacheOp = "clean" | "inval" | "flush";

const TRACE_NAME: Record<CacheOp, string> = {
  clean: "dcache_clean_poc",
  inval: "dcache_inval_poc",
  flush: "dcache_clean_inval_poc",
};

/** Trace one maintenance primitive as an instant on the CPU's track (tracing on only). */
function trace_op(k: Kernel, op: CacheOp, phys: number, len: number): void {
  const t = k.platform.trace;
  t.instant(t.track(TRACE_PID_CPU, `CPU ${k.exec.cpu}`), "dma", TRACE_NAME[op], k.exec.now(), { phys, len });
}

/**
 * One maintenance primitive over whole lines: run it, count it, trace it. The platform returns
 * the lines the range covers, which is what the stats count.
 */
function cache_op(k: Kernel, op: CacheOp, phys: number, len: number): void {
  if (len <= 0) return;
  const p = k.platform;
  const cpu = k.exec.cpu;
  const st = dma_state(k).stats;
  st.cache_ops++;
  if (op === "clean") st.lines_cleaned += p.cacheClean(cpu, phys, len);
  else if (op === "inval") st.lines_invalidated += p.cacheInvalidate(cpu, phys, len);
  else st.lines_flushed += p.cacheFlush(cpu, phys, len);
  if (p.trace.enabled) trace_op(k, op, phys, len);
}

/**
 * cache_op(k, "clean", ...) without the dispatch on the operation: the clean is what every
 * non-coherent map and sync_for_device does, once per segment.
 */
function clean_op(k: Kernel, phys: number, len: number): void {
  if (len <= 0) return;
  const p = k.platform;
  const st = dma_state(k).stats;
  st.cache_ops++;
  st.lines_cleaned += p.cacheClean(k.exec.cpu, phys, len);
  if (p.trace.enabled) trace_op(k, "clean", phys, len);
}

/**
 * dcache_clean_poc - write back dirty lines covering [phys, phys+len) to RAM; lines stay valid.
 * Context: any.
 */
export function dcache_clean_poc(phys: number, len: number, k: Kernel = current_kernel()): void {
  clean_op(k, phys, len);
}

/**
 * dcache_clean_inval_poc - write back and drop the lines covering [phys, phys+len).
 * Context: any.
 */
export function dcache_clean_inval_poc(phys: number, len: number, k: Kernel = current_kernel()): void {
  cache_op(k, "flush", phys, len);
}

/**
 * dcache_inval_poc - drop the lines covering [phys, phys+len), cleaning+invalidating a first or
 * last line the range covers only partly so neighbouring bytes are not lost (cache.S order:
 * the end line first, then the start line, then the whole lines in between).
 * Context: any.
 */
export function dcache_inval_poc(phys: number, len: number, k: Kernel = current_kernel()): void {
  if (len <= 0) return;
  const ls = k.platform.lineSize();
  // Rounded down with floor, not `%`: addresses are often above 2^31, where `%` is a slow
  // double modulo in V8.
  let start = phys;
  let end = phys + len;
  const endDown = Math.floor(end / ls) * ls;
  if (endDown !== end) {
    end = endDown;
    cache_op(k, "flush", end, ls);
  }
  const startDown = Math.floor(start / ls) * ls;
  if (startDown !== start) {
    start = startDown;
    cache_op(k, "flush", start, ls);
    start += ls;
  }
  if (start < end) cache_op(k, "inval", start, end - start);
}

/**
 * arch_sync_dma_for_device - hand a buffer to a non-coherent device (map, sync_for_device).
 * @phys: first byte
 * @size: bytes
 * @dir: mapping direction; every direction cleans on modern arm64
 * Context: any.
 */
export function arch_sync_dma_for_device(phys: phys_addr_t | number, size: number, dir: dma_data_direction, k: Kernel = current_kernel()): void {
  void dir; // TO, FROM and BIDIRECTIONAL all clean (see the file comment)
  clean_op(k, phys, size);
}

/**
 * arch_sync_dma_for_cpu - give a buffer back to the CPU after a non-coherent device used it
 * (sync_for_cpu, unmap). TO_DEVICE needs nothing: the device only read.
 * @phys: first byte
 * @size: bytes
 * @dir: mapping direction
 * Context: any.
 */
export function arch_sync_dma_for_cpu(phys: phys_addr_t | number, size: number, dir: dma_data_direction, k: Kernel = current_kernel()): void {
  if (dir === DMA_TO_DEVICE) return;
  dcache_inval_poc(phys, size, k);
}

/**
 * arch_dma_prep_coherent - make fresh pages safe to use through an uncached alias: clean and
 * invalidate them once, so no dirty line of the cacheable linear map can later be written back
 * over what the device or the uncached alias wrote.
 * Context: any.
 */
export function arch_dma_prep_coherent(phys: phys_addr_t | number, size: number, k: Kernel = current_kernel()): void {
  dcache_clean_inval_poc(phys, size, k);
}
