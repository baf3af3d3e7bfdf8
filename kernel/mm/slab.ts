/**
 * kmalloc: small allocations carved from pages in power-of-two-ish size classes.
 *
 * Objects are aligned to their size class and never below the arch's ARCH_KMALLOC_MINALIGN
 * (8 on x86, 128 on arm64, where it keeps DMA buffers off shared cache lines). Requests above
 * the largest class go straight to the page allocator. Metadata (which object is live, who
 * allocated it) lives on the host side; the bytes live in simulated RAM. Every live object
 * records its owner (the driver running when it was allocated) so leaks can be reported at
 * unbind.
 */

import { PAGE_SIZE } from "../include/types.ts";
import type { PageAllocator } from "./page-alloc.ts";

const CLASSES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
const SLAB_ORDER = 1; // 8 KiB slabs

export interface KmallocObject {
  readonly phys: number;
  readonly size: number; // requested
  readonly slotSize: number; // class size, or whole pages
  readonly owner: string;
  readonly timeNs: number;
  readonly fromPages: boolean; // a large allocation straight from the page allocator
}

interface SizeClass {
  readonly size: number;
  readonly free: number[]; // physical addresses, popped from the end
}

export class Slab {
  private readonly classes: SizeClass[];
  readonly live = new Map<number, KmallocObject>();

  constructor(
    private readonly pages: PageAllocator,
    readonly minAlign: number,
  ) {
    const sizes = [...new Set(CLASSES.filter((c) => c >= minAlign).map((c) => Math.ceil(c / minAlign) * minAlign))];
    this.classes = sizes.map((size) => ({ size, free: [] }));
  }

  /** Allocate `size` bytes; returns a physical address or -1. */
  alloc(size: number, owner: string, timeNs: number, limit = Infinity): number {
    if (size <= 0) return -1;
    const cls = this.classes.find((c) => c.size >= size);
    let phys: number;
    let slotSize: number;
    const fromPages = !cls || limit !== Infinity;
    if (fromPages) {
      const order = orderFor(size);
      phys = this.pages.alloc(order, 0, limit);
      slotSize = PAGE_SIZE << order;
    } else {
      if (cls.free.length === 0 && !this.grow(cls)) return -1;
      phys = cls.free.pop()!;
      slotSize = cls.size;
    }
    if (phys < 0) return -1;
    this.live.set(phys, { phys, size, slotSize, owner, timeNs, fromPages });
    return phys;
  }

  /** Free an object; returns it, or null if `phys` is not a live object (double or bad free). */
  free(phys: number): KmallocObject | null {
    const obj = this.live.get(phys);
    if (!obj) return null;
    this.live.delete(phys);
    if (obj.fromPages) this.pages.free(phys);
    else this.classes.find((c) => c.size === obj.slotSize)!.free.push(phys);
    return obj;
  }

  /** The live object containing `phys`, if any. */
  objectAt(phys: number): KmallocObject | null {
    const exact = this.live.get(phys);
    if (exact) return exact;
    for (const o of this.live.values()) if (phys >= o.phys && phys < o.phys + o.slotSize) return o;
    return null;
  }

  liveBy(owner: string): KmallocObject[] {
    return [...this.live.values()].filter((o) => o.owner === owner);
  }

  private grow(cls: SizeClass): boolean {
    const base = this.pages.alloc(SLAB_ORDER, 0);
    if (base < 0) return false;
    const bytes = PAGE_SIZE << SLAB_ORDER;
    // push in reverse so the lowest address is handed out first
    for (let off = bytes - cls.size; off >= 0; off -= cls.size) {
      if (off + cls.size <= bytes) cls.free.push(base + off);
    }
    return true;
  }
}

export function orderFor(size: number): number {
  let order = 0;
  while (PAGE_SIZE << order < size) order++;
  return order;
}
