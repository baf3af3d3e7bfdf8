/**
 * Driver-facing memory allocation: kmalloc/kzalloc/kfree, vmalloc/vfree, the page allocator
 * and the address conversions. NULL is 0: no valid kernel address is 0.
 */

import { current_kernel } from "../core/current.ts";
import { PAGE_SIZE, __GFP_ZERO, type gfp_t, type phys_addr_t, type vaddr_t } from "../include/types.ts";
import { AddressSpace, PAGE_OFFSET, REGION_LINEAR, REGION_VMALLOC } from "./layout.ts";
import { orderFor } from "./slab.ts";
import { memset } from "./access.ts";

export const NULL = 0;

/**
 * kmalloc - allocate physically contiguous kernel memory
 * @size: bytes wanted
 * @flags: GFP flags (__GFP_ZERO zeroes it)
 * Returns: a linear-map address aligned to at least ARCH_KMALLOC_MINALIGN, or NULL.
 */
export function kmalloc(size: number, flags: gfp_t): vaddr_t {
  const k = current_kernel();
  const phys = k.slab.alloc(size, k.exec.owner, k.exec.now());
  if (phys < 0) return NULL;
  const va = PAGE_OFFSET + phys;
  if (flags & __GFP_ZERO) memset(va, 0, size);
  return va;
}

/** kzalloc - kmalloc, zeroed. */
export function kzalloc(size: number, flags: gfp_t): vaddr_t {
  return kmalloc(size, flags | __GFP_ZERO);
}

/** kcalloc - zeroed array of n elements; NULL on overflow or failure. */
export function kcalloc(n: number, size: number, flags: gfp_t): vaddr_t {
  if (!Number.isSafeInteger(n * size)) return NULL;
  return kzalloc(n * size, flags);
}

/**
 * kfree - free memory from kmalloc. kfree(NULL) does nothing.
 * Freeing anything else (a double free, a pointer into the middle of an object) is a bug: WARN.
 */
export function kfree(p: vaddr_t): void {
  if (!p) return;
  const k = current_kernel();
  if (AddressSpace.region(p) !== REGION_LINEAR || !k.slab.free(p - PAGE_OFFSET)) {
    k.warn(`kfree: 0x${p.toString(16)} is not a live kmalloc object (double free or bad pointer)`);
  }
}

/** ksize - usable size of a kmalloc object. */
export function ksize(p: vaddr_t): number {
  const o = current_kernel().slab.objectAt(p - PAGE_OFFSET);
  return o ? o.slotSize : 0;
}

/** __get_free_pages - 2^order contiguous pages; returns a linear address or NULL. */
export function __get_free_pages(flags: gfp_t, order: number): vaddr_t {
  const k = current_kernel();
  const phys = k.pages.alloc(order, 0);
  if (phys < 0) return NULL;
  const va = PAGE_OFFSET + phys;
  if (flags & __GFP_ZERO) memset(va, 0, PAGE_SIZE << order);
  return va;
}

export function free_pages(addr: vaddr_t, _order: number): void {
  if (!addr) return;
  const k = current_kernel();
  if (!k.pages.free(addr - PAGE_OFFSET)) k.warn(`free_pages: 0x${addr.toString(16)} is not a live page block`);
}

/** vmalloc - virtually contiguous memory made of scattered pages (never DMA-mappable directly). */
export function vmalloc(size: number): vaddr_t {
  const k = current_kernel();
  const n = Math.ceil(size / PAGE_SIZE);
  const pfns: number[] = [];
  for (let i = 0; i < n; i++) {
    const phys = k.pages.alloc(0, 0);
    if (phys < 0) {
      for (const p of pfns) k.pages.free(p * PAGE_SIZE);
      return NULL;
    }
    pfns.push(phys / PAGE_SIZE);
  }
  const va = k.aspace.mapPages(REGION_VMALLOC, pfns);
  k.state("vmalloc", () => new Map<number, number[]>()).set(va, pfns);
  return va;
}

export function vzalloc(size: number): vaddr_t {
  const va = vmalloc(size);
  if (va) memset(va, 0, size);
  return va;
}

export function vfree(addr: vaddr_t): void {
  if (!addr) return;
  const k = current_kernel();
  const areas = k.state("vmalloc", () => new Map<number, number[]>());
  const pfns = areas.get(addr);
  if (!pfns) {
    k.warn(`vfree: 0x${addr.toString(16)} is not a vmalloc area`);
    return;
  }
  areas.delete(addr);
  k.aspace.unmapPages(addr, pfns.length);
  for (const p of pfns) k.pages.free(p * PAGE_SIZE);
}

export function is_vmalloc_addr(addr: vaddr_t): boolean {
  return AddressSpace.region(addr) === REGION_VMALLOC;
}

/** virt_addr_valid - true for linear-map addresses backed by RAM. */
export function virt_addr_valid(addr: vaddr_t): boolean {
  return AddressSpace.region(addr) === REGION_LINEAR && current_kernel().platform.isRam(addr - PAGE_OFFSET, 1);
}

/** virt_to_phys - only meaningful for linear-map addresses (as in Linux). */
export function virt_to_phys(addr: vaddr_t): phys_addr_t {
  return (addr - PAGE_OFFSET) as phys_addr_t;
}

export function phys_to_virt(phys: phys_addr_t): vaddr_t {
  return PAGE_OFFSET + phys;
}

export { orderFor as get_order };
