/**
 * Per-kernel state of the DMA layer: the dma-debug table, the counters the report prints, and
 * the "warn once" memory of dev_WARN_ONCE. Kept in `Kernel.state("dma")` so several machines
 * in one process never share it.
 */

import type { Kernel } from "../core/kernel.ts";
import { KERN_WARNING } from "../core/printk.ts";
import { current_kernel } from "../core/current.ts";
import type { device } from "../include/device.ts";
import { DmaDebugTable } from "./debug-table.ts";

/** Counters for the report (`dma_stats`). Lines are cache lines touched by DMA-API maintenance. */
export interface DmaStats {
  maps: number;
  map_errors: number;
  unmaps: number;
  syncs_for_cpu: number;
  syncs_for_device: number;
  bytes_mapped: number;
  coherent_allocs: number;
  coherent_frees: number;
  coherent_bytes: number;
  /** Lines written back and kept (dcache_clean_poc). */
  lines_cleaned: number;
  /** Lines dropped (dcache_inval_poc, whole lines only). */
  lines_invalidated: number;
  /** Lines cleaned and dropped (dcache_clean_inval_poc, and partial edges of an invalidate). */
  lines_flushed: number;
  /** Cache maintenance calls issued (each clean / inval / flush over a range counts once). */
  cache_ops: number;
  /** swiotlb: mappings that went through a bounce buffer. */
  swiotlb_maps: number;
  /** swiotlb: bounce mappings refused (pool full, no pool, or a slot the device cannot reach). */
  swiotlb_map_failures: number;
  /** swiotlb: bytes copied original -> bounce buffer at map time. */
  swiotlb_bytes_map: number;
  /** swiotlb: bytes copied original -> bounce buffer by dma_sync_*_for_device. */
  swiotlb_bytes_sync_for_device: number;
  /** swiotlb: bytes copied bounce buffer -> original by dma_sync_*_for_cpu. */
  swiotlb_bytes_sync_for_cpu: number;
  /** swiotlb: bytes copied bounce buffer -> original at unmap time. */
  swiotlb_bytes_unmap: number;
  /** swiotlb: all bytes copied towards the device (map + sync_for_device). */
  swiotlb_bytes_to_bounce: number;
  /** swiotlb: all bytes copied back to the CPU's buffer (sync_for_cpu + unmap). */
  swiotlb_bytes_from_bounce: number;
  /** swiotlb: slots in the pool (2 KiB each; 0 without a pool). */
  swiotlb_slots_total: number;
  /** swiotlb: slots in use now (io_tlb_used). */
  swiotlb_slots_used: number;
  /** swiotlb: most slots ever in use at once (io_tlb_used_hiwater). */
  swiotlb_slots_hiwater: number;
}

export class DmaState {
  readonly table = new DmaDebugTable();
  readonly stats: DmaStats = {
    maps: 0,
    map_errors: 0,
    unmaps: 0,
    syncs_for_cpu: 0,
    syncs_for_device: 0,
    bytes_mapped: 0,
    coherent_allocs: 0,
    coherent_frees: 0,
    coherent_bytes: 0,
    lines_cleaned: 0,
    lines_invalidated: 0,
    lines_flushed: 0,
    cache_ops: 0,
    swiotlb_maps: 0,
    swiotlb_map_failures: 0,
    swiotlb_bytes_map: 0,
    swiotlb_bytes_sync_for_device: 0,
    swiotlb_bytes_sync_for_cpu: 0,
    swiotlb_bytes_unmap: 0,
    swiotlb_bytes_to_bounce: 0,
    swiotlb_bytes_from_bounce: 0,
    swiotlb_slots_total: 0,
    swiotlb_slots_used: 0,
    swiotlb_slots_hiwater: 0,
  };
  /** Keys of dev_WARN_ONCE sites already fired. */
  readonly warned = new Set<string>();
  /** dma-debug's driver-unbind hook is registered with the driver core. */
  unbindHooked = false;
  /**
   * Record a direct DMA_TO_DEVICE dma_map_sg call as one deferred run (debug-run.ts); off: one
   * entry per segment at once. Only a test turns it off, to check the two agree.
   */
  sgRuns = true;
}

const newDmaState = (): DmaState => new DmaState();
/** The last kernel asked about and its state: every DMA call asks, usually about the same kernel. */
let lastKernel: Kernel | null = null;
let lastState: DmaState | null = null;

/** The DMA layer's state in `k` (created on first use). */
export function dma_state(k: Kernel): DmaState {
  if (k === lastKernel) return lastState!;
  const st = k.state("dma", newDmaState);
  lastKernel = k;
  lastState = st;
  return st;
}

/**
 * dma_stats - a snapshot of the DMA layer's counters for the report.
 * @k: the kernel (default: the running one)
 * Context: any.
 * Returns: a copy; later DMA calls do not change it.
 */
export function dma_stats(k: Kernel = current_kernel()): DmaStats {
  return { ...dma_state(k).stats };
}

/**
 * dev_WARN_ONCE for the DMA layer: the first time `site` fires for `dev`, log a WARNING line
 * with the device prefix and count it in `k.warnings`. The finding that names the bug is added
 * by the caller on every occurrence; a generic "warn" finding would only duplicate it.
 */
export function dma_warn_once(k: Kernel, dev: device, site: string, text: string): void {
  const key = `${site}\u0000${dev.name}`;
  const st = dma_state(k);
  if (st.warned.has(key)) return;
  st.warned.add(key);
  k.warnings++;
  k.printk.log(KERN_WARNING, `WARNING: ${text}`, `${dev.name}: `);
}
