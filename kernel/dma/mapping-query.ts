/**
 * The DMA API's questions about a device (kernel/dma/mapping.c in Linux): whether a mapping
 * needs syncs, which mask reaches all memory, whether the device is addressing-limited, and
 * the largest single mapping. Each is answered by the path the device's mappings take: the
 * direct path (mask.ts, direct.ts, swiotlb.ts) or a translating IOMMU domain, where IOVAs
 * reach any page, so only bouncing (untrusted devices) and non-coherent caches matter.
 */

import { current_kernel } from "../core/current.ts";
import type { device } from "../include/device.ts";
import { DMA_BIT_MASK, type dma_addr_t } from "../include/types.ts";
import { dev_is_untrusted, iommu_iova_to_phys } from "../iommu/iommu.ts";
import { SIZE_MAX } from "./defs.ts";
import { dma_direct_need_sync } from "./direct.ts";
import { dma_direct_addressing_limited, dma_direct_get_required_mask, dma_get_mask } from "./mask.ts";
import { dma_direct_max_mapping_size, is_swiotlb_buffer, swiotlb_max_mapping_size, swiotlb_state } from "./swiotlb.ts";
import { iommu_dma_domain } from "./iommu-dma.ts";

/**
 * dma_need_sync - must the driver call dma_sync_* for the mapping at @addr? Always on a
 * non-coherent device; on a coherent one only for a bounced mapping (the sync is what copies
 * the data): behind an IOMMU, one whose IOVA leads to a swiotlb slot.
 * Context: any.
 */
export function dma_need_sync(dev: device, addr: dma_addr_t): boolean {
  const dom = iommu_dma_domain(dev);
  if (dom === null) return dma_direct_need_sync(dev, addr);
  return !dev.dma_coherent || is_swiotlb_buffer(current_kernel(), iommu_iova_to_phys(dom, addr));
}

/**
 * dma_get_required_mask - the smallest mask that reaches every page @dev may be given: all of
 * RAM on the direct path; behind an IOMMU 32 bits, as Linux says (IOVAs are allocated below
 * 4 GiB first, and any mask of 32 bits or more works).
 * Context: any.
 */
export function dma_get_required_mask(dev: device): number {
  return iommu_dma_domain(dev) !== null ? DMA_BIT_MASK(32) : dma_direct_get_required_mask(dev);
}

/**
 * dma_addressing_limited - would some of @dev's buffers need bouncing or low allocation? Behind
 * an IOMMU only a mask below 32 bits is limited: the IOVA space, not RAM, is what it must reach.
 * Context: any.
 */
export function dma_addressing_limited(dev: device): boolean {
  if (iommu_dma_domain(dev) !== null) return dma_get_mask(dev) < DMA_BIT_MASK(32);
  return dma_direct_addressing_limited(dev);
}

/**
 * dma_max_mapping_size - the largest single mapping: on the direct path SIZE_MAX, or 256 KiB
 * (swiotlb_max_mapping_size) for a device that may bounce; behind an IOMMU SIZE_MAX, except
 * for an untrusted device, whose sub-page buffers are bounced (iommu_dma_max_mapping_size).
 * Context: any.
 */
export function dma_max_mapping_size(dev: device): number {
  if (iommu_dma_domain(dev) === null) return dma_direct_max_mapping_size(dev);
  return dev_is_untrusted(dev) && swiotlb_state(current_kernel()).pool !== null ? swiotlb_max_mapping_size(dev) : SIZE_MAX;
}
