/**
 * <linux/scatterlist.h>: scatterlists and sg tables, plus the struct page helpers a driver
 * needs to fill them (virt_to_page, vmalloc_to_page, alloc_pages...), which Linux's header
 * pulls in from <linux/mm.h>.
 *
 * Entries are host-side objects: no device reads the entry array itself (the driver programs
 * its device from sg_dma_address/sg_dma_len), so only the buffers they describe live in
 * simulated RAM. Make an array with sg_array(n) (C's `struct scatterlist sg[n]`), then
 * sg_init_table(sg, n) as in C; or let sg_alloc_table* allocate a (chained) table.
 * Mapping them is in <linux/dma-mapping.h> (dma_map_sg, dma_map_sgtable...).
 */

export {
  scatterlist,
  type sg_list,
  sg_array,
  sg_first,
  sg_at,
  sg_init_table,
  sg_init_one,
  sg_set_page,
  sg_set_buf,
  sg_page,
  sg_phys,
  sg_virt,
  sg_dma_address,
  sg_dma_len,
  sg_next,
  for_each_sg,
  sg_chain,
  sg_chain_ptr,
  sg_is_chain,
  sg_is_last,
  sg_mark_end,
  sg_unmark_end,
  sg_nents,
  sg_nents_for_len,
  sg_last,
} from "../lib/scatterlist.ts";

export {
  sg_table,
  SG_MAX_SINGLE_ALLOC,
  SG_MAX_SEGMENT,
  sg_alloc_table,
  sg_free_table,
  sg_alloc_table_from_pages,
  sg_alloc_table_from_pages_segment,
  for_each_sgtable_sg,
  for_each_sgtable_dma_sg,
} from "../lib/sg-table.ts";

export {
  type sg_linear_buf,
  sg_copy_buffer,
  sg_copy_from_buffer,
  sg_copy_to_buffer,
  sg_pcopy_from_buffer,
  sg_pcopy_to_buffer,
  sg_zero_buffer,
} from "../lib/sg-copy.ts";

export {
  type page,
  pfn_to_page,
  page_to_pfn,
  page_to_phys,
  page_address,
  nth_page,
  offset_in_page,
  virt_to_page,
  vmalloc_to_page,
  alloc_pages,
  alloc_page,
  __free_pages,
  __free_page,
} from "../lib/page.ts";
