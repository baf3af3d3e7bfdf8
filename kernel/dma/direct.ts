/**
 * The direct mapping path (kernel/dma/direct.c, direct.h): no IOMMU, bus address = physical
 * address, cache maintenance on non-coherent devices.
 *
 * `dma_direct_route` is the one place that decides how a buffer reaches the device: directly,
 * through a swiotlb bounce slot, or not at all. swiotlb does not exist yet, so "bounce" is
 * never returned; when it lands, its checks go where the comments in that function say (the
 * order is §6.1's) and `dma_direct_map_phys` calls swiotlb_tbl_map_single for that route.
 */

import type { Kernel } from "../core/kernel.ts";
import { BUG } from "../core/oops.ts";
import type { device } from "../include/device.ts";
import type { dma_addr_t, phys_addr_t } from "../include/types.ts";
import {
  DMA_ATTR_MMIO,
  DMA_ATTR_REQUIRE_COHERENT,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_MAPPING_ERROR,
  dma_dir_name,
  dma_fmt_addr,
  type dma_data_direction,
} from "./defs.ts";
import { arch_sync_dma_for_cpu, arch_sync_dma_for_device } from "./noncoherent.ts";
import { dma_warn_once } from "./state.ts";
import { dma_debug_report } from "./debug.ts";

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
 * dma_need_sync - must the driver call dma_sync_* for @addr? Only on a non-coherent device
 * (and, once swiotlb exists, for bounced mappings).
 */
export function dma_need_sync(dev: device, addr: dma_addr_t): boolean {
  void addr;
  return !dev.dma_coherent;
}

export type dma_route = "direct" | "bounce" | "fail-mask" | "fail-coherent";

/**
 * dma_direct_route - how a map of [phys, phys+size) for @dev proceeds (§6.1 order).
 * Returns: "direct", "bounce" (reserved for swiotlb), or why it fails.
 */
export function dma_direct_route(dev: device, phys: number, size: number, dir: dma_data_direction, attrs: number): dma_route {
  void dir;
  // 1. swiotlb force-bounce (swiotlb=force, restricted pools) goes here: return "bounce".
  if (!dma_capable(dev, phys, size)) {
    // 2. Unreachable under the mask: bounce if the device has a swiotlb pool, else fail.
    return "fail-mask";
  }
  if (attrs & DMA_ATTR_REQUIRE_COHERENT && !dev.dma_coherent) return "fail-coherent";
  // 3. dma_kmalloc_needs_bounce (small unaligned FROM/BIDI kmalloc buffers on a non-coherent
  //    device) goes here once swiotlb exists.
  return "direct";
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
 * dma_direct_map_phys - map [phys, phys+size) for @dev: hand the lines to the device (clean
 * on a non-coherent device unless DMA_ATTR_SKIP_CPU_SYNC) and return the bus address.
 * Context: any.
 * Returns: the bus address, or DMA_MAPPING_ERROR (reported) if the device cannot reach it.
 */
export function dma_direct_map_phys(k: Kernel, dev: device, phys: number, size: number, dir: dma_data_direction, attrs: number): dma_addr_t {
  const addr = phys_to_dma(dev, phys);
  switch (dma_direct_route(dev, phys, size, dir, attrs)) {
    case "direct":
      break;
    case "bounce":
      BUG("swiotlb bounce requested but swiotlb is not implemented");
      break;
    case "fail-mask":
      report_overflow(k, dev, addr, size, dir);
      return DMA_MAPPING_ERROR;
    case "fail-coherent":
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
 * dma_direct_unmap_phys - give [addr, addr+size) back to the CPU (invalidate for FROM/BIDI on
 * a non-coherent device unless DMA_ATTR_SKIP_CPU_SYNC). Acts on what the caller passed, as
 * Linux does, even if that does not match the mapping (dma-debug reports the mismatch).
 * Context: any.
 */
export function dma_direct_unmap_phys(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction, attrs: number): void {
  const phys = dma_to_phys(dev, addr);
  if (needs_cpu_sync(dev, attrs) && ram_range(k, phys, size)) arch_sync_dma_for_cpu(phys, size, dir, k);
}

/** dma_direct_sync_single_for_cpu - the CPU is about to read what the device wrote. */
export function dma_direct_sync_single_for_cpu(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction): void {
  const phys = dma_to_phys(dev, addr);
  if (!dev.dma_coherent && ram_range(k, phys, size)) arch_sync_dma_for_cpu(phys, size, dir, k);
}

/** dma_direct_sync_single_for_device - the device is about to use what the CPU wrote. */
export function dma_direct_sync_single_for_device(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction): void {
  const phys = dma_to_phys(dev, addr);
  if (!dev.dma_coherent && ram_range(k, phys, size)) arch_sync_dma_for_device(phys, size, dir, k);
}
