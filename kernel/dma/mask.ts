/**
 * Device DMA configuration (§2): the streaming and coherent masks, the addressing queries and
 * the segment limits. Masks are stored as the highest reachable bus address (what
 * DMA_BIT_MASK(n) returns), a safe integer: DMA_BIT_MASK(53..64) all mean "everything".
 *
 * Which masks are refused (-EIO): Linux's dma_direct_supported accepts every mask of 32 bits
 * or more (every platform is expected to satisfy those, through ZONE_DMA32 or an IOMMU) and a
 * narrower one only if it reaches the top of ZONE_DMA, the lowest zone the page allocator
 * serves. Our ZONE_DMA is the first 16 MiB of RAM (x86's ISA zone), so a mask below
 * `lowest RAM address + 16 MiB - 1` (or below the top of RAM on a machine with less than that)
 * cannot get even one zone of memory and is refused; zero, negative and fractional masks too.
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";
import type { device } from "../include/device.ts";
import { DMA_BIT_MASK } from "../include/types.ts";
import { EIO } from "../include/errno.ts";

export { DMA_BIT_MASK };

/** Size of our ZONE_DMA, counted from the lowest RAM address. */
export const ZONE_DMA_SIZE = 16 << 20;

/** Highest RAM address of the machine (max_pfn - 1 in bytes, roughly). */
function ram_top(k: Kernel): number {
  return k.platform.ram().reduce((top, r) => Math.max(top, r.base + r.size - 1), 0);
}

/** Lowest mask the platform can satisfy (top of ZONE_DMA, capped by the top of RAM). */
function min_supported_mask(k: Kernel): number {
  const ram = k.platform.ram();
  const low = ram.reduce((b, r) => Math.min(b, r.base), Infinity);
  return Math.min(low + ZONE_DMA_SIZE - 1, ram_top(k));
}

/** Truncate to dma_addr_t: our dma_addr_t holds 53 bits, so anything larger means "all". */
function truncate_mask(mask: number): number {
  return mask >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : mask;
}

/** dma_supported - can the direct path serve a device limited to `mask`? */
export function dma_supported(dev: device, mask: number): boolean {
  void dev;
  if (!(mask > 0) || (mask < Number.MAX_SAFE_INTEGER && !Number.isInteger(mask))) return false;
  if (mask >= DMA_BIT_MASK(32)) return true;
  return mask >= min_supported_mask(current_kernel());
}

/**
 * dma_set_mask - set the streaming DMA mask of @dev
 * @dev: device
 * @mask: highest bus address the device can drive, usually DMA_BIT_MASK(n)
 * Context: process (probe).
 * Returns: 0, or -EIO if the platform cannot serve a device limited to @mask.
 */
export function dma_set_mask(dev: device, mask: number): number {
  mask = truncate_mask(mask);
  if (!dma_supported(dev, mask)) return -EIO;
  dev.dma_mask = mask;
  return 0;
}

/**
 * dma_set_coherent_mask - set the mask for dma_alloc_coherent() memory of @dev
 * Context: process (probe).
 * Returns: 0 or -EIO (as dma_set_mask).
 */
export function dma_set_coherent_mask(dev: device, mask: number): number {
  mask = truncate_mask(mask);
  if (!dma_supported(dev, mask)) return -EIO;
  dev.coherent_dma_mask = mask;
  return 0;
}

/**
 * dma_set_mask_and_coherent - set both masks; the coherent one only if the streaming one took.
 * Context: process (probe).
 * Returns: 0 or -EIO.
 */
export function dma_set_mask_and_coherent(dev: device, mask: number): number {
  const rc = dma_set_mask(dev, mask);
  if (rc === 0) dma_set_coherent_mask(dev, mask);
  return rc;
}

/** dma_get_mask - the streaming mask (DMA_BIT_MASK(32) until the driver sets one). */
export function dma_get_mask(dev: device): number {
  return dev.dma_mask;
}

/**
 * dma_direct_get_required_mask - the smallest DMA_BIT_MASK(n) that reaches every byte of RAM
 * (dma_get_required_mask on the direct path, mapping-query.ts).
 * Context: any. Returns: the mask; it changes nothing.
 */
export function dma_direct_get_required_mask(dev: device): number {
  void dev;
  const top = ram_top(current_kernel());
  let bits = 1;
  while (DMA_BIT_MASK(bits) < top) bits++;
  return DMA_BIT_MASK(bits);
}

/**
 * dma_direct_addressing_limited - true if @dev cannot reach all RAM directly (its buffers would
 * need bouncing, or must be allocated low): dma_addressing_limited on the direct path. There
 * is no bus_dma_limit on our buses.
 */
export function dma_direct_addressing_limited(dev: device): boolean {
  return dma_get_mask(dev) < dma_direct_get_required_mask(dev);
}

/**
 * dma_get_cache_alignment - alignment and granularity for streaming buffers and partial syncs.
 * Linux returns ARCH_DMA_MINALIGN where the arch defines one and 1 where DMA is coherent by
 * construction (x86 defines none). Here: 1 on an x86 machine whose DMA is coherent, otherwise
 * the profile's dmaMinAlign (arm64: 128, the largest writeback granule; an x86 machine made
 * non-coherent by its description gets its dmaMinAlign too, so drivers stay safe on it).
 */
export function dma_get_cache_alignment(): number {
  const k = current_kernel();
  return k.arch === "x86" && k.platform.coherentDma ? 1 : k.dmaMinAlign;
}

/** dma_set_max_seg_size - largest scatter-gather segment @dev accepts (void in Linux 6.x). */
export function dma_set_max_seg_size(dev: device, size: number): void {
  dev.dma_parms.max_segment_size = size;
}

/** dma_get_max_seg_size - largest segment, 64 KiB unless the driver set it. */
export function dma_get_max_seg_size(dev: device): number {
  return dev.dma_parms.max_segment_size;
}

/**
 * dma_set_seg_boundary - segments of @dev must not cross a (@mask + 1)-aligned boundary.
 * Returns: 0.
 */
export function dma_set_seg_boundary(dev: device, mask: number): number {
  dev.dma_parms.segment_boundary_mask = mask;
  return 0;
}

/** dma_get_seg_boundary - the boundary mask (ULONG_MAX-like "none" by default). */
export function dma_get_seg_boundary(dev: device): number {
  return dev.dma_parms.segment_boundary_mask;
}
