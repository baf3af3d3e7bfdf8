/**
 * The page allocator: physically contiguous runs of 2^order pages from each NUMA node.
 *
 * One bitmap per RAM range (one bit per page, so 64 GiB costs 2 MiB of host memory), first fit
 * from the lowest address, naturally aligned as the buddy allocator aligns blocks. Allocating
 * from the bottom keeps small machines' buffers at low addresses, where devices with narrow
 * DMA masks can reach them. A limit address lets callers ask for memory below a DMA mask.
 * The first pages of node 0 are reserved for the kernel image, so no buffer sits at address 0.
 */

import { PAGE_SIZE } from "../include/types.ts";

export const KERNEL_RESERVED_BYTES = 1 << 20;

interface Zone {
  readonly base: number;
  readonly pages: number;
  readonly node: number;
  readonly bits: Uint32Array;
  hint: number; // first page index worth searching from
  free: number;
}

export class PageAllocator {
  private readonly zones: Zone[] = [];
  /** Live allocations: first pfn -> page count. */
  private readonly live = new Map<number, number>();

  constructor(ram: readonly { base: number; size: number; node: number }[]) {
    for (const r of ram) {
      const pages = Math.floor(r.size / PAGE_SIZE);
      const z: Zone = { base: r.base, pages, node: r.node, bits: new Uint32Array(Math.ceil(pages / 32)), hint: 0, free: pages };
      this.zones.push(z);
    }
    const first = this.zones.find((z) => z.node === 0) ?? this.zones[0];
    if (first) this.markRange(first, 0, Math.min(first.pages, KERNEL_RESERVED_BYTES / PAGE_SIZE), true);
  }

  get nodes(): number {
    return new Set(this.zones.map((z) => z.node)).size;
  }

  /**
   * Allocate 2^order contiguous pages on `node` (or any node if that one is full), wholly
   * below `limit` (exclusive physical address). Returns the physical address or -1.
   */
  alloc(order: number, node = 0, limit = Infinity): number {
    const want = 1 << order;
    const order1 = [...this.zones.filter((z) => z.node === node), ...this.zones.filter((z) => z.node !== node)];
    for (const z of order1) {
      if (z.free < want || z.base >= limit) continue;
      const idx = this.findRun(z, want, limit);
      if (idx < 0) continue;
      this.markRange(z, idx, want, true);
      const phys = z.base + idx * PAGE_SIZE;
      this.live.set(phys / PAGE_SIZE, want);
      return phys;
    }
    return -1;
  }

  /** Free a block returned by `alloc`. Returns false for an address that is not a live block. */
  free(phys: number): boolean {
    const pfn = phys / PAGE_SIZE;
    const n = this.live.get(pfn);
    if (n === undefined) return false;
    this.live.delete(pfn);
    const z = this.zoneOf(phys)!;
    this.markRange(z, (phys - z.base) / PAGE_SIZE, n, false);
    return true;
  }

  /** Pages in a live block starting at `phys`, or 0. */
  blockPages(phys: number): number {
    return this.live.get(phys / PAGE_SIZE) ?? 0;
  }

  nodeOf(phys: number): number {
    return this.zoneOf(phys)?.node ?? -1;
  }

  get liveBlocks(): number {
    return this.live.size;
  }

  freePages(node?: number): number {
    return this.zones.filter((z) => node === undefined || z.node === node).reduce((s, z) => s + z.free, 0);
  }

  private zoneOf(phys: number): Zone | undefined {
    return this.zones.find((z) => phys >= z.base && phys < z.base + z.pages * PAGE_SIZE);
  }

  private findRun(z: Zone, want: number, limit: number): number {
    const maxIdx = Math.min(z.pages, Math.floor((limit - z.base) / PAGE_SIZE));
    // natural alignment in physical frame numbers
    const basePfn = z.base / PAGE_SIZE;
    let i = Math.ceil((basePfn + z.hint) / want) * want - basePfn;
    while (i + want <= maxIdx) {
      const busy = this.firstBusy(z, i, want);
      if (busy < 0) return i;
      i = Math.ceil((basePfn + busy + 1) / want) * want - basePfn;
    }
    return -1;
  }

  /** Index of the first allocated page in [i, i+n), or -1. */
  private firstBusy(z: Zone, i: number, n: number): number {
    for (let p = i; p < i + n; p++) {
      if ((p & 31) === 0 && p + 32 <= i + n && z.bits[p >>> 5] === 0) {
        p += 31;
        continue;
      }
      if (z.bits[p >>> 5] & (1 << (p & 31))) return p;
    }
    return -1;
  }

  private markRange(z: Zone, i: number, n: number, used: boolean): void {
    for (let p = i; p < i + n; p++) {
      if (used) z.bits[p >>> 5] |= 1 << (p & 31);
      else z.bits[p >>> 5] &= ~(1 << (p & 31));
    }
    z.free += used ? -n : n;
    if (used && i === z.hint) z.hint = i + n;
    if (!used && i < z.hint) z.hint = i;
  }
}
