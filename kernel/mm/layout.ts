/**
 * The kernel's virtual address layout and the software MMU that resolves it.
 *
 * Each region is 2^48 bytes, picked by the address's top bits, so translation is arithmetic
 * for the direct maps and one page-table lookup for the rest:
 *   1  linear map: all RAM, cached (kmalloc, the page allocator; virt_to_phys works here)
 *   2  uncached alias of RAM (coherent DMA memory on a non-coherent machine)
 *   3  write-combining alias of RAM
 *   4  vmalloc: page-mapped, cached, virtually contiguous only
 *   5  kernel stacks: page-mapped, cached
 *   6  ioremap: page-mapped MMIO
 * An address outside every region or on an unmapped page is a page fault (an oops).
 */

import { MEM_CACHED, MEM_UNCACHED, MEM_WC, type MemType } from "../platform/platform.ts";
import { PAGE_SIZE } from "../include/types.ts";
import { KernelOops } from "../core/oops.ts";

export const REGION_SIZE = 2 ** 48;
export const REGION_LINEAR = 1;
export const REGION_UNCACHED = 2;
export const REGION_WC = 3;
export const REGION_VMALLOC = 4;
export const REGION_STACK = 5;
export const REGION_IOREMAP = 6;

export const PAGE_OFFSET = REGION_LINEAR * REGION_SIZE;

export type MemoryKind = "linear" | "uncached" | "wc" | "vmalloc" | "stack" | "ioremap" | "invalid";

const KIND_OF_REGION: MemoryKind[] = ["invalid", "linear", "uncached", "wc", "vmalloc", "stack", "ioremap"];

/** Result of a translation; reused to keep the access path allocation-free. */
export interface Translation {
  phys: number;
  type: MemType;
  mmio: boolean;
}

export class AddressSpace {
  /** Page tables of the page-mapped regions: virtual page number -> physical frame number. */
  private readonly pageTables = new Map<number, Map<number, number>>([
    [REGION_VMALLOC, new Map()],
    [REGION_STACK, new Map()],
    [REGION_IOREMAP, new Map()],
  ]);
  private readonly next = new Map<number, number>([
    [REGION_VMALLOC, PAGE_SIZE * 16],
    [REGION_STACK, PAGE_SIZE * 16],
    [REGION_IOREMAP, PAGE_SIZE * 16],
  ]);

  constructor(private readonly isRam: (phys: number, len: number) => boolean) {}

  static region(va: number): number {
    return Math.floor(va / REGION_SIZE);
  }

  static kind(va: number): MemoryKind {
    return KIND_OF_REGION[AddressSpace.region(va)] ?? "invalid";
  }

  /** Resolve `va` into `out` (physical address, memory type, MMIO or not). Faults throw an oops. */
  translate(va: number, out: Translation, isWrite: boolean): void {
    const region = AddressSpace.region(va);
    const off = va - region * REGION_SIZE;
    switch (region) {
      case REGION_LINEAR:
      case REGION_UNCACHED:
      case REGION_WC:
        if (!this.isRam(off, 1)) pageFault(va, isWrite);
        out.phys = off;
        out.type = region === REGION_LINEAR ? MEM_CACHED : region === REGION_UNCACHED ? MEM_UNCACHED : MEM_WC;
        out.mmio = false;
        return;
      case REGION_VMALLOC:
      case REGION_STACK:
      case REGION_IOREMAP: {
        const pfn = this.pageTables.get(region)!.get(Math.floor(off / PAGE_SIZE));
        if (pfn === undefined) pageFault(va, isWrite);
        out.phys = pfn * PAGE_SIZE + (off % PAGE_SIZE);
        out.type = MEM_CACHED;
        out.mmio = region === REGION_IOREMAP;
        return;
      }
      default:
        pageFault(va, isWrite);
    }
  }

  /** Reserve `pages` of virtual space in a page-mapped region and map them to `pfns`. */
  mapPages(region: number, pfns: readonly number[]): number {
    const start = this.next.get(region)!;
    const table = this.pageTables.get(region)!;
    const vpn0 = start / PAGE_SIZE;
    pfns.forEach((pfn, i) => table.set(vpn0 + i, pfn));
    // one unmapped guard page after every area, so overruns fault
    this.next.set(region, start + (pfns.length + 1) * PAGE_SIZE);
    return region * REGION_SIZE + start;
  }

  /** Remove the mapping of `pages` pages at `va`. */
  unmapPages(va: number, pages: number): void {
    const region = AddressSpace.region(va);
    const table = this.pageTables.get(region);
    if (!table) return;
    const vpn0 = (va - region * REGION_SIZE) / PAGE_SIZE;
    for (let i = 0; i < pages; i++) table.delete(vpn0 + i);
  }

  /** Physical frame behind a page-mapped address (for vmalloc_to_page and friends), or -1. */
  pfnOf(va: number): number {
    const region = AddressSpace.region(va);
    const table = this.pageTables.get(region);
    if (!table) return -1;
    return table.get(Math.floor((va - region * REGION_SIZE) / PAGE_SIZE)) ?? -1;
  }
}

function pageFault(va: number, isWrite: boolean): never {
  throw new KernelOops(`BUG: unable to handle page fault for address: 0x${va.toString(16)} (${isWrite ? "write" : "read"} access in kernel mode)`, va);
}

/** Linear-map address of a physical address. */
export function phys_to_virt_raw(phys: number): number {
  return PAGE_OFFSET + phys;
}
