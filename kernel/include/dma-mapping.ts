/**
 * <linux/dma-mapping.h>: the DMA mapping API as drivers see it.
 *
 * Direct path only for now (no IOMMU, no swiotlb): bus address = physical address, cache
 * maintenance per direction on non-coherent devices, dma-debug bookkeeping of every mapping.
 */

export { DMA_BIT_MASK, type dma_addr_t } from "./types.ts";

export {
  DMA_BIDIRECTIONAL,
  DMA_TO_DEVICE,
  DMA_FROM_DEVICE,
  DMA_NONE,
  type dma_data_direction,
  DMA_ATTR_WEAK_ORDERING,
  DMA_ATTR_WRITE_COMBINE,
  DMA_ATTR_NO_KERNEL_MAPPING,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_ATTR_FORCE_CONTIGUOUS,
  DMA_ATTR_ALLOC_SINGLE_PAGES,
  DMA_ATTR_NO_WARN,
  DMA_ATTR_PRIVILEGED,
  DMA_ATTR_MMIO,
  DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
  DMA_ATTR_REQUIRE_COHERENT,
  DMA_MAPPING_ERROR,
  type dma_addr_ref,
  dma_addr_holder,
  valid_dma_direction,
} from "../dma/defs.ts";

export {
  dma_set_mask,
  dma_set_coherent_mask,
  dma_set_mask_and_coherent,
  dma_get_mask,
  dma_get_cache_alignment,
  dma_set_max_seg_size,
  dma_get_max_seg_size,
  dma_set_seg_boundary,
  dma_get_seg_boundary,
} from "../dma/mask.ts";

export {
  dma_map_single,
  dma_map_single_attrs,
  dma_unmap_single,
  dma_unmap_single_attrs,
  dma_map_page,
  dma_map_page_attrs,
  dma_unmap_page,
  dma_unmap_page_attrs,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_sync_single_range_for_device,
  dma_mapping_error,
} from "../dma/mapping.ts";

export { dma_need_sync, dma_get_required_mask, dma_addressing_limited, dma_max_mapping_size } from "../dma/mapping-query.ts";

export {
  dma_alloc_coherent,
  dma_free_coherent,
  dma_alloc_attrs,
  dma_free_attrs,
  dmam_alloc_coherent,
  dmam_alloc_attrs,
  dmam_free_coherent,
  dma_alloc_noncoherent,
  dma_free_noncoherent,
} from "../dma/coherent.ts";

export { dma_set_min_align_mask, dma_get_min_align_mask } from "../dma/swiotlb.ts";

export {
  dma_map_sg,
  dma_map_sg_attrs,
  dma_unmap_sg,
  dma_unmap_sg_attrs,
  dma_map_sgtable,
  dma_unmap_sgtable,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_sync_sgtable_for_cpu,
  dma_sync_sgtable_for_device,
} from "../dma/mapping-sg.ts";
export { sg_dma_address, sg_dma_len, type scatterlist, type sg_table } from "./scatterlist.ts";
