/** Driver-facing allocation API (include/linux/slab.h, vmalloc.h, gfp.h, mm.h). */
export {
  NULL, kmalloc, kzalloc, kcalloc, kfree, ksize, __get_free_pages, free_pages, vmalloc, vzalloc, vfree,
  is_vmalloc_addr, virt_addr_valid, virt_to_phys, phys_to_virt, get_order,
} from "../mm/slab-api.ts";
export { GFP_KERNEL, GFP_ATOMIC, __GFP_ZERO, __GFP_DMA32, PAGE_SIZE, PAGE_SHIFT } from "./types.ts";
