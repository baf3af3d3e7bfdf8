/**
 * Scatterlists (§8; include/linux/scatterlist.h, lib/scatterlist.c): the entries, building
 * and walking them, chaining. Tables (sg_alloc_table...) are in sg-table.ts, copies in
 * sg-copy.ts.
 *
 * Representation
 * - An entry is a host-side object, not bytes in simulated RAM. In Linux the array is kernel
 *   memory, but no device ever reads it: the DMA API reads it on the CPU and the driver then
 *   programs the device (or writes its own descriptors) from sg_dma_address/sg_dma_len. So
 *   nothing is lost by keeping it on the host, and a driver cannot corrupt it by a stray store.
 *   The buffers the entries describe are simulated RAM, reached through the cache model.
 * - The CPU view (page, offset, length) and the DMA view (dma_address, dma_length) are separate
 *   fields; mapping fills the DMA view of the first `count` entries only (§8.3).
 * - Linux packs SG_CHAIN and SG_END into the low bits of page_link. Here they are explicit:
 *   `chain` (this slot is a link and holds no data; the entry it leads to) and `end`.
 * - C's pointer arithmetic (sg + 1) needs to know the array: every entry remembers its array
 *   and index. sg_array(n) makes one (the `struct scatterlist sg[n]` of C); functions that take
 *   a list accept the array itself or any entry of it (a pointer into it).
 */

import { current_kernel } from "../core/current.ts";
import { BUG } from "../core/oops.ts";
import type { page } from "../include/device.ts";
import { EINVAL } from "../include/errno.ts";
import { PAGE_SIZE, type dma_addr_t, type phys_addr_t, type vaddr_t } from "../include/types.ts";
import { AddressSpace, PAGE_OFFSET } from "../mm/layout.ts";

export class scatterlist {
  /** The page the data starts in; null for an empty or refused entry and for chain links. */
  page: page | null = null;
  offset = 0;
  length = 0;
  dma_address: dma_addr_t = 0 as dma_addr_t;
  dma_length = 0;
  /** SG_CHAIN: this slot is a link to another array; the entry it leads to. */
  chain: scatterlist | null = null;
  /** SG_END: the last entry of the list. */
  end = false;

  constructor(
    /** The array this entry lives in (for sg + 1). */
    readonly array: readonly scatterlist[],
    readonly index: number,
  ) {}
}

/** A list argument: an array of entries, or a pointer to one entry of such an array. */
export type sg_list = scatterlist | readonly scatterlist[];

/**
 * sg_array - a fresh array of @n zeroed entries (C's `struct scatterlist sg[n]`); call
 * sg_init_table on it before use, as in C.
 */
export function sg_array(n: number): scatterlist[] {
  if (!Number.isSafeInteger(n) || n < 0) BUG(`sg_array of invalid size ${n}`);
  const a: scatterlist[] = new Array<scatterlist>(n);
  for (let i = 0; i < n; i++) a[i] = new scatterlist(a, i);
  return a;
}

/** sg_first - the entry a list argument points at. */
export function sg_first(sgl: sg_list): scatterlist {
  const sg = sgl instanceof scatterlist ? sgl : sgl[0];
  if (!sg) BUG("scatterlist: empty array used as a list");
  return sg;
}

/** sg_at - `&sgl[i]`: the entry @i slots after @sgl in the same array (no chain following). */
export function sg_at(sgl: sg_list, i: number): scatterlist {
  const first = sg_first(sgl);
  const sg = first.array[first.index + i];
  if (!sg) BUG(`scatterlist: index ${i} is past the end of the array (${first.array.length - first.index} entries)`);
  return sg;
}

function clear(sg: scatterlist): void {
  sg.page = null;
  sg.offset = 0;
  sg.length = 0;
  sg.dma_address = 0 as dma_addr_t;
  sg.dma_length = 0;
  sg.chain = null;
  sg.end = false;
}

/** sg_is_chain - is @sg a chain link (no data)? */
export function sg_is_chain(sg: scatterlist): boolean {
  return sg.chain !== null;
}

/** sg_is_last - is @sg marked as the end of its list? */
export function sg_is_last(sg: scatterlist): boolean {
  return sg.end;
}

/** sg_chain_ptr - the entry a chain link leads to. */
export function sg_chain_ptr(sg: scatterlist): scatterlist | null {
  return sg.chain;
}

/** sg_mark_end - make @sg the last entry (sets END, clears CHAIN). */
export function sg_mark_end(sg: scatterlist): void {
  sg.end = true;
  sg.chain = null;
}

/** sg_unmark_end - @sg is no longer the last entry. */
export function sg_unmark_end(sg: scatterlist): void {
  sg.end = false;
}

/**
 * sg_init_table - zero @nents entries starting at @sgl and mark the last as the end
 * Context: any.
 */
export function sg_init_table(sgl: sg_list, nents: number): void {
  if (!Number.isSafeInteger(nents) || nents <= 0) BUG(`sg_init_table with nents ${nents}`);
  const first = sg_first(sgl);
  sg_at(first, nents - 1); // bounds check
  for (let i = 0; i < nents; i++) clear(first.array[first.index + i]);
  sg_mark_end(first.array[first.index + nents - 1]);
}

/**
 * sg_set_page - point @sg at @len bytes from @offset in @pg (and the pages after it, which
 * must be physically contiguous). Keeps the END mark. Context: any.
 */
export function sg_set_page(sg: scatterlist, pg: page, len: number, offset: number): void {
  if (sg.chain) BUG("sg_set_page on a chain link: it would cut the list");
  if (!Number.isSafeInteger(len) || len < 0 || !Number.isSafeInteger(offset) || offset < 0) BUG(`sg_set_page with len ${len}, offset ${offset}`);
  sg.page = pg;
  sg.offset = offset;
  sg.length = len;
}

/** The page and offset behind a buffer address, or null (with the reason) if it has none. */
function buf_page(va: vaddr_t, len: number): { pg: page; offset: number } | string {
  const k = current_kernel();
  const kind = AddressSpace.kind(va);
  if (kind === "linear") {
    const phys = va - PAGE_OFFSET;
    if (!k.platform.isRam(phys, Math.max(len, 1))) return "not RAM";
    return { pg: { pfn: Math.floor(phys / PAGE_SIZE) }, offset: phys % PAGE_SIZE };
  }
  if (kind === "stack") {
    // What a kernel without vmapped stacks would get: the real page. dma-debug then names the
    // bug (map-stack-memory) when the entry is mapped.
    const pfn = k.aspace.pfnOf(va);
    const pages = Math.ceil(((va % PAGE_SIZE) + Math.max(len, 1)) / PAGE_SIZE);
    for (let i = 1; i < pages; i++) if (k.aspace.pfnOf(va + i * PAGE_SIZE) !== pfn + i) return "stack pages not contiguous";
    if (pfn >= 0) return { pg: { pfn }, offset: va % PAGE_SIZE };
  }
  return kind === "vmalloc" ? "vmalloc memory (use vmalloc_to_page per page)" : `${kind} memory`;
}

/**
 * sg_set_buf - point @sg at @buflen bytes of a linear-map buffer (kmalloc, page allocator)
 * Context: any.
 * Linux computes virt_to_page(buf), which is garbage for vmalloc memory (CONFIG_DEBUG_SG BUGs).
 * Here such a buffer is refused with a WARN and the entry left empty (page null), so mapping
 * it fails with a map-invalid-memory finding instead of DMA to a random page. A stack buffer
 * gets its real page (see buf_page), for dma-debug to report.
 */
export function sg_set_buf(sg: scatterlist, buf: vaddr_t, buflen: number): void {
  const r = buf_page(buf, buflen);
  if (typeof r === "string") {
    current_kernel().warn(`sg_set_buf: 0x${buf.toString(16)} is ${r}, not linear-map memory`);
    if (sg.chain) BUG("sg_set_buf on a chain link");
    sg.page = null;
    sg.offset = 0;
    sg.length = buflen;
    return;
  }
  sg_set_page(sg, r.pg, buflen, r.offset);
}

/** sg_init_one - a one-entry list over a linear buffer. Context: any. */
export function sg_init_one(sg: scatterlist, buf: vaddr_t, buflen: number): void {
  sg_init_table(sg, 1);
  sg_set_buf(sg, buf, buflen);
}

/** sg_page - the page of @sg (a chain link has none: BUG). */
export function sg_page(sg: scatterlist): page | null {
  if (sg.chain) BUG("sg_page of a chain link");
  return sg.page;
}

/** sg_phys - the physical address @sg's data starts at. */
export function sg_phys(sg: scatterlist): phys_addr_t {
  const pg = sg_page(sg);
  if (!pg) BUG("sg_phys of an entry with no page");
  return (pg.pfn * PAGE_SIZE + sg.offset) as phys_addr_t;
}

/** sg_virt - the linear-map address @sg's data starts at. */
export function sg_virt(sg: scatterlist): vaddr_t {
  return PAGE_OFFSET + sg_phys(sg);
}

/** sg_dma_address - the bus address mapping gave @sg (valid for the first `count` entries). */
export function sg_dma_address(sg: scatterlist): dma_addr_t {
  return sg.dma_address;
}

/** sg_dma_len - the DMA length mapping gave @sg (valid for the first `count` entries). */
export function sg_dma_len(sg: scatterlist): number {
  return sg.dma_length;
}

/**
 * sg_next - the entry after @sg: null after the END entry, else the next slot, following a
 * chain link if that slot is one.
 * Context: any.
 * A list without an END mark would make Linux walk into whatever memory follows the array;
 * here running off the array is a BUG naming the likely cause.
 */
export function sg_next(sg: scatterlist): scatterlist | null {
  if (sg.end) return null;
  let next = sg.array[sg.index + 1];
  if (!next) BUG("sg_next ran off the end of a scatterlist array with no end mark (was sg_init_table called?)");
  if (next.chain) next = next.chain;
  return next;
}

/**
 * for_each_sg - walk @nents entries from @sgl, following chains:
 * `for (const [sg, i] of for_each_sg(sgl, nents))`. Stops early at the END entry.
 */
export function* for_each_sg(sgl: sg_list, nents: number): Generator<[scatterlist, number]> {
  let sg: scatterlist | null = sg_first(sgl);
  for (let i = 0; i < nents && sg; i++) {
    yield [sg, i];
    if (i + 1 < nents) sg = sg_next(sg);
  }
}

/**
 * sg_chain - turn @prv[@prv_nents - 1] into a link to @sgl, joining two arrays into one list.
 * That slot loses its data (the first array holds prv_nents - 1 entries). Context: any.
 */
export function sg_chain(prv: sg_list, prv_nents: number, sgl: sg_list): void {
  const link = sg_at(prv, prv_nents - 1);
  link.page = null;
  link.offset = 0;
  link.length = 0;
  link.end = false;
  link.chain = sg_first(sgl);
}

/** sg_nents - entries in the list from @sg to its END, following chains. */
export function sg_nents(sg: sg_list | null): number {
  let n = 0;
  for (let s: scatterlist | null = sg ? sg_first(sg) : null; s; s = sg_next(s)) n++;
  return n;
}

/**
 * sg_nents_for_len - how many entries from @sg cover @len bytes
 * Returns: the count (0 for len 0), or -EINVAL if the list is shorter than @len.
 */
export function sg_nents_for_len(sg: sg_list | null, len: number): number {
  if (!len) return 0;
  let n = 0;
  let total = 0;
  for (let s: scatterlist | null = sg ? sg_first(sg) : null; s; s = sg_next(s)) {
    n++;
    total += s.length;
    if (total >= len) return n;
  }
  return -EINVAL;
}

/** sg_last - the @nents-th entry from @sgl (or the END entry if the list is shorter). */
export function sg_last(sgl: sg_list, nents: number): scatterlist {
  let last = sg_first(sgl);
  for (const [sg] of for_each_sg(sgl, nents)) last = sg;
  return last;
}
