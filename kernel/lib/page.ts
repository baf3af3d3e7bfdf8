/**
 * struct page helpers that scatterlists are built from (include/linux/mm.h, the parts a driver
 * filling an sg table needs): virt_to_page, vmalloc_to_page, page_to_phys, page_address,
 * alloc_pages / __free_pages.
 *
 * A `page` is just its frame number here ({pfn}); two page objects with the same pfn are the
 * same page. All RAM is in the linear map (there is no highmem), so page_address always works.
 */

import { current_kernel } from "../core/current.ts";
import { BUG } from "../core/oops.ts";
import type { page } from "../include/device.ts";
import { PAGE_SIZE, type gfp_t, type phys_addr_t, type vaddr_t } from "../include/types.ts";
import { AddressSpace, PAGE_OFFSET } from "../mm/layout.ts";
import { __get_free_pages, free_pages } from "../mm/slab-api.ts";

export type { page };

/** pfn_to_page - the page of frame @pfn. */
export function pfn_to_page(pfn: number): page {
  return { pfn };
}

/** page_to_pfn - the frame number of @pg. */
export function page_to_pfn(pg: page): number {
  return pg.pfn;
}

/** page_to_phys - the physical address of the first byte of @pg. */
export function page_to_phys(pg: page): phys_addr_t {
  return (pg.pfn * PAGE_SIZE) as phys_addr_t;
}

/** page_address - the linear-map address of @pg (every page has one: no highmem here). */
export function page_address(pg: page): vaddr_t {
  return PAGE_OFFSET + pg.pfn * PAGE_SIZE;
}

/** nth_page - the page @n frames after @pg (physically, not virtually, contiguous). */
export function nth_page(pg: page, n: number): page {
  return { pfn: pg.pfn + n };
}

/** offset_in_page - @addr's offset inside its page. */
export function offset_in_page(addr: number): number {
  return addr % PAGE_SIZE;
}

/**
 * virt_to_page - the page behind a linear-map address
 * Context: any.
 * Returns: the page. Any other address (vmalloc, stack, an uncached alias) is a BUG here,
 * where Linux would silently compute a wrong page: use vmalloc_to_page for vmalloc memory.
 */
export function virt_to_page(addr: vaddr_t): page {
  if (AddressSpace.kind(addr) !== "linear") BUG(`virt_to_page of non-linear address 0x${addr.toString(16)} (use vmalloc_to_page for vmalloc memory)`);
  return { pfn: Math.floor((addr - PAGE_OFFSET) / PAGE_SIZE) };
}

/**
 * vmalloc_to_page - the page backing a page-mapped (vmalloc or stack) address
 * Context: any. Returns: the page, or null if nothing is mapped there.
 */
export function vmalloc_to_page(addr: vaddr_t): page | null {
  const pfn = current_kernel().aspace.pfnOf(addr);
  return pfn < 0 ? null : { pfn };
}

/**
 * alloc_pages - 2^@order physically contiguous pages
 * Context: process (GFP_KERNEL) or any (GFP_ATOMIC).
 * Returns: the first page, or null.
 */
export function alloc_pages(gfp: gfp_t, order: number): page | null {
  const va = __get_free_pages(gfp, order);
  return va ? virt_to_page(va) : null;
}

/** alloc_page - one page, or null. */
export function alloc_page(gfp: gfp_t): page | null {
  return alloc_pages(gfp, 0);
}

/** __free_pages - free 2^@order pages from alloc_pages. */
export function __free_pages(pg: page, order: number): void {
  free_pages(page_address(pg), order);
}

/** __free_page - free one page from alloc_page. */
export function __free_page(pg: page): void {
  __free_pages(pg, 0);
}
