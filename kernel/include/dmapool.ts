/**
 * <linux/dmapool.h>: pools of small coherent blocks (descriptors, command blocks) carved from
 * dma_alloc_coherent pages, and the managed dmam_pool_create.
 */

export {
  type dma_pool,
  dma_pool_create,
  dma_pool_alloc,
  dma_pool_zalloc,
  dma_pool_free,
  dma_pool_destroy,
  dmam_pool_create,
  dmam_pool_destroy,
} from "../dma/pool.ts";
export { dma_addr_holder, type dma_addr_ref } from "../dma/defs.ts";
