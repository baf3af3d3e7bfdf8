/**
 * sg tables (§8.1, §8.2; lib/scatterlist.c): allocating chained entry arrays, building a
 * table from a page array, freeing, and the table walks.
 *
 * Tables longer than SG_MAX_SINGLE_ALLOC entries are chained arrays of at most that many
 * slots, each non-final array spending its last slot on the link, exactly as Linux lays them
 * out, so code that walks with sg_next sees the same shape. The arrays are host objects (see
 * scatterlist.ts), so allocation cannot fail and needs no freeing; sg_free_table still checks
 * what Linux relies on: orig_nents must still be the allocated count (overwriting it with the
 * mapped count makes Linux free the wrong chunks).
 */

import { current_kernel } from "../core/current.ts";
import type { page } from "../include/device.ts";
import { EINVAL } from "../include/errno.ts";
import { PAGE_SIZE, type gfp_t } from "../include/types.ts";
import { sg_array, sg_chain, sg_init_table, sg_mark_end, sg_next, sg_set_page, for_each_sg, type scatterlist } from "./scatterlist.ts";

/** struct sg_table. */
export class sg_table {
  sgl: scatterlist | null = null;
  /** Entries after mapping (the DMA view). */
  nents = 0;
  /** Entries allocated (the CPU view). Never overwrite it with the mapped count. */
  orig_nents = 0;
}

/** sizeof(struct scatterlist) on a 64-bit kernel with CONFIG_NEED_SG_DMA_LENGTH. */
export const SG_STRUCT_SIZE = 32;
/** Entries per page-sized array: longer tables are chained arrays of this many slots. */
export const SG_MAX_SINGLE_ALLOC = PAGE_SIZE / SG_STRUCT_SIZE;
/** The largest entry sg_alloc_table_from_pages builds (UINT_MAX rounded down to a page). */
export const SG_MAX_SEGMENT = 0xfffff000;

/** Entries each table was allocated with, to check orig_nents at free time. */
const allocated = new WeakMap<sg_table, number>();

/**
 * sg_alloc_table - allocate @nents entries for @sgt, chaining arrays of SG_MAX_SINGLE_ALLOC
 * Context: process (GFP_KERNEL) or any (GFP_ATOMIC).
 * Returns: 0 (nents = orig_nents = @nents, the last entry marked END), or -EINVAL for 0 entries.
 */
export function sg_alloc_table(sgt: sg_table, nents: number, gfp: gfp_t): number {
  void gfp;
  if (!Number.isSafeInteger(nents) || nents <= 0) return -EINVAL;
  sgt.sgl = null;
  sgt.nents = sgt.orig_nents = 0;
  let left = nents;
  let prv: scatterlist[] | null = null;
  while (left > 0) {
    let alloc = left;
    let used = left;
    if (alloc > SG_MAX_SINGLE_ALLOC) {
      alloc = SG_MAX_SINGLE_ALLOC;
      used = alloc - 1; // the last slot becomes the chain link
    }
    left -= used;
    const sg = sg_array(alloc);
    sg_init_table(sg, alloc);
    sgt.nents = sgt.orig_nents += used;
    if (prv) sg_chain(prv, SG_MAX_SINGLE_ALLOC, sg);
    else sgt.sgl = sg[0];
    if (!left) sg_mark_end(sg[used - 1]);
    prv = sg;
  }
  allocated.set(sgt, nents);
  return 0;
}

/**
 * sg_free_table - free @sgt's entries (all its chained arrays). Nothing happens for a table
 * that has none. WARNs if orig_nents is no longer the allocated count. Context: any.
 */
export function sg_free_table(sgt: sg_table): void {
  if (!sgt.sgl) return;
  const n = allocated.get(sgt);
  if (n !== undefined && n !== sgt.orig_nents) {
    current_kernel().warn(`sg_free_table: orig_nents is ${sgt.orig_nents} but ${n} entries were allocated (orig_nents must never be overwritten, e.g. with the mapped count)`);
  }
  allocated.delete(sgt);
  sgt.sgl = null;
  sgt.nents = sgt.orig_nents = 0;
}

/** Two pages are mergeable into one entry when physically consecutive. */
function pages_are_mergeable(a: page, b: page): boolean {
  return a.pfn === b.pfn + 1;
}

/** The end (exclusive page index) of the chunk starting at page @cur. */
function chunk_end(pages: readonly page[], cur: number, n: number, max_segment: number): number {
  let seg_len = 0;
  let j = cur + 1;
  for (; j < n; j++) {
    seg_len += PAGE_SIZE;
    if (seg_len >= max_segment || !pages_are_mergeable(pages[j], pages[j - 1])) break;
  }
  return j;
}

/**
 * sg_alloc_table_from_pages_segment - build @sgt over @size bytes starting @offset bytes into
 * @pages, merging runs of physically consecutive pages into one entry of at most @max_segment
 * bytes
 * @pages: the pages, in buffer order (e.g. pinned user pages, or vmalloc_to_page of each page)
 * @n_pages: how many of @pages to use; they must cover @offset + @size bytes
 * @offset: where the data starts in the first page (< PAGE_SIZE)
 * @size: bytes the table describes
 * @max_segment: longest entry; rounded down to a multiple of PAGE_SIZE
 * Context: process (GFP_KERNEL) or any (GFP_ATOMIC).
 * Returns: 0, or -EINVAL (max_segment below a page, bad offset, pages too few for the size).
 * Pages beyond what @offset + @size needs are not used.
 */
export function sg_alloc_table_from_pages_segment(
  sgt: sg_table,
  pages: readonly page[],
  n_pages: number,
  offset: number,
  size: number,
  max_segment: number,
  gfp: gfp_t,
): number {
  max_segment -= max_segment % PAGE_SIZE;
  if (max_segment < PAGE_SIZE) {
    current_kernel().warn(`sg_alloc_table_from_pages_segment: max_segment ${max_segment} is below PAGE_SIZE`);
    return -EINVAL;
  }
  if (!Number.isSafeInteger(n_pages) || n_pages <= 0 || n_pages > pages.length) return -EINVAL;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= PAGE_SIZE) return -EINVAL;
  if (!Number.isSafeInteger(size) || size < 0 || offset + size > n_pages * PAGE_SIZE) return -EINVAL;
  const n = Math.max(1, Math.ceil((offset + size) / PAGE_SIZE));
  let chunks = 0;
  for (let cur = 0; cur < n; cur = chunk_end(pages, cur, n, max_segment)) chunks++;
  const err = sg_alloc_table(sgt, chunks, gfp);
  if (err) return err;
  let s: scatterlist | null = sgt.sgl;
  let left = size;
  for (let cur = 0; cur < n && s; ) {
    const j = chunk_end(pages, cur, n, max_segment);
    const chunk = (j - cur) * PAGE_SIZE - offset;
    sg_set_page(s, pages[cur], Math.min(left, chunk), offset);
    left -= Math.min(left, chunk);
    offset = 0;
    cur = j;
    s = j < n ? sg_next(s) : null;
  }
  return 0;
}

/**
 * sg_alloc_table_from_pages - sg_alloc_table_from_pages_segment with no practical segment
 * limit (SG_MAX_SEGMENT). Drivers whose device has a limit should pass
 * dma_get_max_seg_size(dev) to the _segment variant instead. Context and returns: the same.
 */
export function sg_alloc_table_from_pages(sgt: sg_table, pages: readonly page[], n_pages: number, offset: number, size: number, gfp: gfp_t): number {
  return sg_alloc_table_from_pages_segment(sgt, pages, n_pages, offset, size, SG_MAX_SEGMENT, gfp);
}

/** for_each_sgtable_sg - the CPU walk: every entry of @sgt (orig_nents). */
export function for_each_sgtable_sg(sgt: sg_table): Generator<[scatterlist, number]> {
  return sgt.sgl ? for_each_sg(sgt.sgl, sgt.orig_nents) : empty();
}

/** for_each_sgtable_dma_sg - the DMA walk: the mapped segments of @sgt (nents). */
export function for_each_sgtable_dma_sg(sgt: sg_table): Generator<[scatterlist, number]> {
  return sgt.sgl ? for_each_sg(sgt.sgl, sgt.nents) : empty();
}

function* empty(): Generator<[scatterlist, number]> {}
