/**
 * Where a DMA buffer must never be (§7.2 rows 1 and 2; debug.c check_for_stack and
 * check_for_illegal_area), for the checks that look at the memory behind a mapping rather
 * than at the call: kernel stacks, and the kernel image (text and rodata).
 *
 * The kernel image is the block the page allocator reserves at the start of node 0's first
 * RAM range (KERNEL_RESERVED_BYTES); nothing is ever allocated there, so a mapping that touches
 * it was made from a pointer into the kernel itself (a static table, a string).
 */

import type { Kernel } from "../core/kernel.ts";
import { KERNEL_RESERVED_BYTES } from "../mm/page-alloc.ts";
import { PAGE_SIZE } from "../include/types.ts";
import { is_stack_page } from "../lib/kstack.ts";

/** The physical range of the kernel image: [base, base + KERNEL_RESERVED_BYTES). */
export function kernel_image_base(k: Kernel): number {
  const ram = k.platform.ram();
  return (ram.find((x) => x.node === 0) ?? ram[0])?.base ?? 0;
}

/** Does [phys, phys+len) touch the kernel image? */
export function dma_debug_in_kernel_image(k: Kernel, phys: number, len: number): boolean {
  const base = kernel_image_base(k);
  return phys < base + KERNEL_RESERVED_BYTES && phys + Math.max(len, 1) > base;
}

/** Does [phys, phys+len) touch a live kernel stack page? */
export function dma_debug_on_stack(k: Kernel, phys: number, len: number): boolean {
  const first = Math.floor(phys / PAGE_SIZE);
  const last = Math.floor((phys + Math.max(len, 1) - 1) / PAGE_SIZE);
  for (let pfn = first; pfn <= last; pfn++) if (is_stack_page(k, pfn)) return true;
  return false;
}
