/**
 * The direct mapping path (kernel/dma/direct.c, direct.h): no IOMMU, bus address = physical
 * address, cache maintenance on non-coherent devices, bouncing through swiotlb when needed.
 *
 * `dma_direct_route` is the one place that decides how a buffer reaches the device (§6.1, in
 * this order): a device in force-bounce mode always bounces; a buffer beyond the DMA mask
 * bounces if there is a pool and fails otherwise; a small kmalloc-sized FROM_DEVICE /
 * BIDIRECTIONAL buffer of a non-coherent device bounces where kmalloc objects may share cache
 * lines; everything else maps directly. `dma_direct_map_phys` and its unmap and sync
 * counterparts serve single and scatter-gather mappings alike, so bouncing lives in them: a
 * bus address inside the swiotlb pool is a bounce slot, whatever created it. Cache maintenance
 * of a bounced mapping applies to the slot, the buffer the device really uses.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import type { device } from "../include/device.ts";
import type { dma_addr_t, phys_addr_t } from "../include/types.ts";
import * as defs from "./defs.ts";
import { dma_dir_name, dma_fmt_addr, type dma_data_direction } from "./defs.ts";
import { arch_sync_dma_for_cpu, arch_sync_dma_for_device } from "./noncoherent.ts";
import { dma_warn_once } from "./state.ts";
import { dma_debug_report } from "./debug.ts";
import { orderFor } from "../mm/slab.ts";
import {
  is_swiotlb_active,
  is_swiotlb_buffer,
  is_swiotlb_force_bounce,
  swiotlb_map,
  swiotlb_sync_single_for_cpu,
  swiotlb_sync_single_for_device,
  swiotlb_tbl_unmap_single,
} from "./swiotlb.ts";

// Copied into module constants once: the per-segment tests then use constants TurboFan folds,
// not imported bindings it loads and hole-checks at every use (a getter call each under a
// CommonJS transform). defs.ts imports nothing of the DMA layer, so it is loaded by now.
const { DMA_ATTR_MMIO, DMA_ATTR_REQUIRE_COHERENT, DMA_ATTR_SKIP_CPU_SYNC, DMA_MAPPING_ERROR, DMA_TO_DEVICE } = defs;

/** phys_to_dma - bus address of a physical address (no bus offsets on our machines). */
export function phys_to_dma(dev: device, phys: phys_addr_t | number): dma_addr_t {
  void dev;
  return phys as dma_addr_t;
}

/** dma_to_phys - physical address behind a direct-path bus address. */
export function dma_to_phys(dev: device, addr: dma_addr_t | number): phys_addr_t {
  void dev;
  return addr as phys_addr_t;
}

/** dev_is_dma_coherent - does @dev snoop the CPU caches? */
export function dev_is_dma_coherent(dev: device): boolean {
  return dev.dma_coherent;
}

/**
 * dma_capable - can @dev reach [addr, addr+size) under its streaming mask? (There is no
 * bus_dma_limit on our buses, so the mask alone decides.)
 */
export function dma_capable(dev: device, addr: number, size: number): boolean {
  const last = size > 0 ? addr + size - 1 : addr;
  return last <= dev.dma_mask;
}

/**
 * dma_direct_need_sync - dma_need_sync on the direct path: on a non-coherent device always;
 * on a coherent one only for a bounced mapping (the sync is what copies the data).
 */
export function dma_direct_need_sync(dev: device, addr: dma_addr_t): boolean {
  return !dev.dma_coherent || is_swiotlb_buffer(current_kernel(), dma_to_phys(dev, addr));
}

export type dma_route = "direct" | "bounce" | "fail-mask" | "fail-coherent" | "fail-mmio";

/**
 * The kmalloc size classes (kernel/mm/slab.ts) rounded to the machine's kmalloc alignment:
 * kmalloc_size_roundup(). Larger sizes come from the page allocator, 2^order pages.
 */
const KMALLOC_CLASSES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

/** kmalloc_size_roundup - the size kmalloc really hands out for a request of @size bytes. */
export function kmalloc_size_roundup(k: Kernel, size: number): number {
  const a = k.kmallocMinAlign;
  for (const c of KMALLOC_CLASSES) {
    const cls = Math.ceil(c / a) * a;
    if (cls >= size) return cls;
  }
  return 4096 << orderFor(size);
}

/**
 * dma_kmalloc_needs_bounce - could a @size-byte mapping be a kmalloc object sharing a cache
 * line with other data, on a device where that matters? (CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC.)
 * Only where kmalloc aligns below the DMA alignment (a machine whose kmallocMinAlign is smaller
 * than its dmaMinAlign) and a pool exists to bounce through, as Linux lowers kmalloc's
 * alignment only then. Coherent devices and TO_DEVICE mappings never need it (cleaning a line
 * destroys nothing); the size rule is Linux's: bounce unless the kmalloc size class the size
 * falls in is a multiple of the DMA alignment (so 129..192 bytes bounce on arm64, 256 does not).
 */
export function dma_kmalloc_needs_bounce(dev: device, size: number, dir: dma_data_direction, k: Kernel = current_kernel()): boolean {
  if (dev.dma_coherent || dir === DMA_TO_DEVICE) return false;
  const align = k.arch === "x86" && k.platform.coherentDma ? 1 : k.dmaMinAlign;
  if (k.kmallocMinAlign >= align || !is_swiotlb_active(dev, k)) return false;
  return kmalloc_size_roundup(k, size) % align !== 0;
}

/**
 * dma_direct_route - how a map of [phys, phys+size) for @dev proceeds (§6.1 order).
 * Returns: "direct", "bounce" (through swiotlb), or why it fails: "fail-mask" (unreachable
 * and no pool, or MMIO), "fail-coherent" (DMA_ATTR_REQUIRE_COHERENT but bouncing or cache
 * maintenance would be needed), "fail-mmio" (DMA_ATTR_MMIO on a device that must bounce).
 */
export function dma_direct_route(dev: device, phys: number, size: number, dir: dma_data_direction, attrs: number, k: Kernel = current_kernel()): dma_route {
  const strict = (attrs & DMA_ATTR_REQUIRE_COHERENT) !== 0;
  // MMIO (DMA_ATTR_MMIO) is never copied by the CPU: where RAM would bounce, it fails.
  const mmio = (attrs & DMA_ATTR_MMIO) !== 0;
  // 1. Force-bounce: the device never sees the original buffer.
  if (is_swiotlb_force_bounce(dev, k)) return mmio ? "fail-mmio" : strict ? "fail-coherent" : "bounce";
  // 2. Unreachable under the mask: bounce if there is a pool, else fail.
  if (!dma_capable(dev, phys, size)) {
    if (mmio || !is_swiotlb_active(dev, k)) return "fail-mask";
    return strict ? "fail-coherent" : "bounce";
  }
  if (strict && !dev.dma_coherent) return "fail-coherent";
  // 3. A small kmalloc buffer that may share cache lines with CPU data.
  if (!mmio && dma_kmalloc_needs_bounce(dev, size, dir, k)) return "bounce";
  return "direct";
}

/**
 * dma_direct_maps_plainly - the part of dma_direct_route that does not depend on the buffer,
 * worked out once for a run of segments (dma_map_sg): true when every buffer @dev can reach
 * (dma_capable) maps "direct" whatever its size, i.e. no force-bounce, no
 * DMA_ATTR_REQUIRE_COHERENT or DMA_ATTR_MMIO, and no kmalloc bounce possible for @dir.
 * False says nothing: ask dma_direct_map_phys per segment.
 */
export function dma_direct_maps_plainly(dev: device, dir: dma_data_direction, attrs: number, k: Kernel): boolean {
  if (attrs & (DMA_ATTR_REQUIRE_COHERENT | DMA_ATTR_MMIO)) return false;
  if (is_swiotlb_force_bounce(dev, k)) return false;
  // dma_kmalloc_needs_bounce is false for every size exactly when its size-free tests say so
  if (dev.dma_coherent || dir === DMA_TO_DEVICE) return true;
  const align = k.arch === "x86" && k.platform.coherentDma ? 1 : k.dmaMinAlign;
  return k.kmallocMinAlign >= align || !is_swiotlb_active(dev, k);
}

/**
 * dma_direct_map_plain - dma_direct_map_phys for a segment dma_direct_maps_plainly cleared and
 * dma_capable accepts: cache maintenance (unless @attrs skip it), bus address = physical.
 */
export function dma_direct_map_plain(k: Kernel, dev: device, phys: number, size: number, dir: dma_data_direction, attrs: number): dma_addr_t {
  if (needs_cpu_sync(dev, attrs)) arch_sync_dma_for_device(phys, size, dir, k);
  return phys_to_dma(dev, phys);
}

function needs_cpu_sync(dev: device, attrs: number): boolean {
  return !dev.dma_coherent && !(attrs & (DMA_ATTR_SKIP_CPU_SYNC | DMA_ATTR_MMIO));
}

/** The overflow report of dma_direct_map_phys: a WARN once, a finding every time. */
function report_overflow(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction): void {
  const text = `DMA addr ${dma_fmt_addr(addr)}+${size} overflow (mask ${dev.dma_mask.toString(16)}, bus limit 0).`;
  dma_warn_once(k, dev, "dma_direct_map_phys:overflow", text);
  dma_debug_report(k, "dma-mask-exceeded", dev, null, text, {
    dev_addr: dma_fmt_addr(addr),
    size,
    direction: dma_dir_name(dir),
    mask: `0x${dev.dma_mask.toString(16)}`,
  });
}

/**
 * dma_direct_map_phys - map [phys, phys+size) for @dev: either hand the lines to the device
 * (clean on a non-coherent device unless DMA_ATTR_SKIP_CPU_SYNC), or bounce through swiotlb
 * (copy to a slot, clean the slot), as dma_direct_route decides.
 * Context: any.
 * Returns: the bus address (the slot's when bounced), or DMA_MAPPING_ERROR: the device cannot
 * reach the buffer and there is no pool (reported), the pool is full or out of the device's
 * reach, or DMA_ATTR_REQUIRE_COHERENT cannot be honoured.
 */
export function dma_direct_map_phys(k: Kernel, dev: device, phys: number, size: number, dir: dma_data_direction, attrs: number): dma_addr_t {
  const addr = phys_to_dma(dev, phys);
  switch (dma_direct_route(dev, phys, size, dir, attrs, k)) {
    case "direct":
      break;
    case "bounce":
      return swiotlb_map(k, dev, phys, size, dir, attrs);
    case "fail-mask":
      report_overflow(k, dev, addr, size, dir);
      return DMA_MAPPING_ERROR;
    case "fail-coherent":
    case "fail-mmio":
      return DMA_MAPPING_ERROR;
  }
  if (needs_cpu_sync(dev, attrs)) arch_sync_dma_for_device(phys, size, dir, k);
  return addr;
}

/** Cache maintenance only on RAM: a junk handle must not make us walk 2^53 bytes of lines. */
function ram_range(k: Kernel, phys: number, size: number): boolean {
  return size > 0 && k.platform.isRam(phys, size);
}

/**
 * dma_direct_unmap_sync - the cache maintenance half of dma_direct_unmap_phys, which is all of
 * it for an address outside the swiotlb pool (an sg unmap tests the pool once per call).
 * Returns: the physical address behind @addr.
 */
export function dma_direct_unmap_sync(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction, attrs: number): number {
  const phys = dma_to_phys(dev, addr);
  // TO_DEVICE needs nothing back (arch_sync_dma_for_cpu would return at once): skip the RAM test
  if (dir !== DMA_TO_DEVICE && needs_cpu_sync(dev, attrs) && ram_range(k, phys, size)) arch_sync_dma_for_cpu(phys, size, dir, k);
  return phys;
}

/**
 * dma_direct_unmap_phys - give [addr, addr+size) back to the CPU: unless
 * DMA_ATTR_SKIP_CPU_SYNC, invalidate for FROM/BIDI on a non-coherent device and, for a bounce
 * slot, copy it back to the original; then free the slot. Acts on what the caller passed, as
 * Linux does, even if that does not match the mapping (dma-debug reports the mismatch); the
 * pool itself frees exactly what it allocated.
 * Context: any.
 */
export function dma_direct_unmap_phys(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction, attrs: number): void {
  const phys = dma_direct_unmap_sync(k, dev, addr, size, dir, attrs);
  if (is_swiotlb_buffer(k, phys)) {
    if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC)) swiotlb_sync_single_for_cpu(k, dev, phys, size, dir, "unmap");
    swiotlb_tbl_unmap_single(k, dev, phys, size, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
  }
}

/**
 * dma_direct_sync_single_for_cpu - the CPU is about to read what the device wrote: invalidate
 * (non-coherent), then copy a bounce slot back to the original.
 */
export function dma_direct_sync_single_for_cpu(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction): void {
  const phys = dma_to_phys(dev, addr);
  if (!dev.dma_coherent && ram_range(k, phys, size)) arch_sync_dma_for_cpu(phys, size, dir, k);
  swiotlb_sync_single_for_cpu(k, dev, phys, size, dir);
}

/**
 * dma_direct_sync_single_for_device - the device is about to use what the CPU wrote: copy the
 * original into a bounce slot, then clean (non-coherent).
 */
export function dma_direct_sync_single_for_device(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction): void {
  const phys = dma_to_phys(dev, addr);
  swiotlb_sync_single_for_device(k, dev, phys, size, dir);
  if (!dev.dma_coherent && ram_range(k, phys, size)) arch_sync_dma_for_device(phys, size, dir, k);
}
