/**
 * I/O page tables in simulated RAM (drivers/iommu/io-pgtable*.c for the 4-level format of
 * hw/iommu/SPEC.md section 4.1): the kernel builds them with ordinary CPU stores, the IOMMU
 * walks them with its own bus-master reads.
 *
 * Theory of operation
 * - Table pages come straight from the kernel page allocator (`k.pages`), not kmalloc: they
 *   belong to the kernel's IOMMU code, not to the driver that happens to be running, so they
 *   never show up in a driver's leak accounting. Every page a table uses is tracked and freed
 *   with the table; `IommuPgtableCounters.pages` lets tests check nothing leaks.
 * - Every entry is written through the kernel's memory accessors (linear map, cache model).
 *   When the IOMMU's walk does not snoop CPU caches (`coherentWalk` false: a non-coherent
 *   arm64 machine), each written entry is cleaned to RAM before it can be used, as
 *   io-pgtable-arm does for non-coherent walkers (a new table is zeroed and cleaned before
 *   it is linked in; a leaf is cleaned right after it is written).
 * - Intermediate entries carry R and W: the hardware ANDs permissions over the walk, so the
 *   leaf alone decides. Empty intermediate tables are kept until the table is freed (as
 *   io-pgtable-arm does), which keeps unmap cheap and never races a walk.
 * - A 2 MiB leaf lives at level 2 (PS). Unmapping inside a 2 MiB leaf at an offset that is not
 *   2 MiB aligned unmaps nothing (VT-d behaviour is to drop the whole large page only when
 *   asked at its start).
 */

import type { Kernel } from "../core/kernel.ts";
import { kread64, kwrite64, memset } from "../mm/access.ts";
import { PAGE_OFFSET } from "../mm/layout.ts";
import { EEXIST, ENOMEM } from "../include/errno.ts";

export const IOPT_PAGE_SIZE = 4096;
export const IOPT_LARGE_SIZE = 2 * 1024 * 1024;
export const IOPT_IOVA_BITS = 48;
const ENTRIES = 512;

// Entry bits (SPEC.md 4.1); the driver keeps its own copy of the hardware's numbers.
export const IOPTE_P = 0x1;
export const IOPTE_R = 0x2;
export const IOPTE_W = 0x4;
export const IOPTE_PS = 0x80;
const ADDR_LIMIT = 2 ** 52;

/** Page-table pages in use across every table of a kernel (leak checks). */
export interface IommuPgtableCounters {
  pages: number;
  /** Test hook: fail the next page-table page allocations (count), as under memory pressure. */
  failAllocs: number;
}

function pteAddr(pte: number): number {
  return (Math.floor(pte / IOPT_PAGE_SIZE) * IOPT_PAGE_SIZE) % ADDR_LIMIT;
}

/** Bytes one entry maps at each level (index = level): a table, not `2 ** n` (a Math.pow call). */
const LEVEL_SPAN = [0, 1, 2, 3, 4].map((level) => 2 ** (12 + 9 * (level - 1)));

function index(iova: number, level: number): number {
  // `& (ENTRIES - 1)`, not `%`: the quotient is a double, and a double modulo is a slow library
  // call in V8; ToInt32 keeps the low 9 bits exact for any integer below 2^53.
  return Math.floor(iova / LEVEL_SPAN[level]!) & (ENTRIES - 1);
}

/** One 4-level I/O page table. */
export class IoPgtable {
  private readonly tables = new Set<number>();

  private constructor(
    private readonly k: Kernel,
    private readonly coherentWalk: boolean,
    private readonly counters: IommuPgtableCounters,
    readonly root: number,
  ) {
    this.tables.add(root);
  }

  /**
   * alloc - a new, empty table (its root page zeroed and visible to the walker)
   * Returns: the table, or null when no page is available.
   */
  static alloc(k: Kernel, coherentWalk: boolean, counters: IommuPgtableCounters): IoPgtable | null {
    const root = allocTablePage(k, coherentWalk, counters);
    return root < 0 ? null : new IoPgtable(k, coherentWalk, counters, root);
  }

  /** Physical pages used by this table (root included). */
  get pageCount(): number {
    return this.tables.size;
  }

  private read(phys: number): number {
    return kread64(PAGE_OFFSET + phys);
  }

  private write(phys: number, v: number): void {
    kwrite64(PAGE_OFFSET + phys, v);
    if (!this.coherentWalk) this.k.platform.cacheClean(this.k.exec.cpu, phys, 8);
  }

  /**
   * canMapLarge - may a 2 MiB leaf be attempted at `iova`? False when a level-1 table already
   * hangs under its level-2 slot (the caller then maps 4 KiB pages into that table).
   */
  canMapLarge(iova: number): boolean {
    let t = this.root;
    for (let level = 4; level > 2; level--) {
      const pte = this.read(t + 8 * index(iova, level));
      if (!(pte & IOPTE_P)) return true;
      t = pteAddr(pte);
    }
    const pte = this.read(t + 8 * index(iova, 2));
    return !(pte & IOPTE_P) || (pte & IOPTE_PS) !== 0;
  }

  /**
   * map - map one page of `pgsize` (4 KiB or 2 MiB) at `iova` to `paddr` with `perm`
   * (IOPTE_R | IOPTE_W bits).
   * Returns: 0, -EEXIST when something is mapped there already, -ENOMEM when a table page
   * could not be allocated (tables allocated on the way stay, empty: harmless).
   */
  map(iova: number, paddr: number, pgsize: number, perm: number): number {
    const leafLevel = pgsize === IOPT_LARGE_SIZE ? 2 : 1;
    let t = this.root;
    for (let level = 4; level > leafLevel; level--) {
      const slot = t + 8 * index(iova, level);
      const pte = this.read(slot);
      if (pte & IOPTE_P) {
        if (level === 2 && pte & IOPTE_PS) return -EEXIST;
        t = pteAddr(pte);
        continue;
      }
      const next = allocTablePage(this.k, this.coherentWalk, this.counters);
      if (next < 0) return -ENOMEM;
      this.tables.add(next);
      // The new table is zeroed and cleaned before the entry pointing to it is written.
      this.write(slot, next + IOPTE_P + IOPTE_R + IOPTE_W);
      t = next;
    }
    const slot = t + 8 * index(iova, leafLevel);
    const old = this.read(slot);
    if (old & IOPTE_P) return -EEXIST;
    this.write(slot, paddr + IOPTE_P + (perm & (IOPTE_R | IOPTE_W)) + (leafLevel === 2 ? IOPTE_PS : 0));
    return 0;
  }

  /**
   * unmap - clear the leaf that maps `iova`
   * Returns: the bytes it mapped (4 KiB or 2 MiB), or 0 when nothing is mapped at `iova`
   * or `iova` falls inside a 2 MiB leaf without being its start.
   */
  unmap(iova: number): number {
    let t = this.root;
    for (let level = 4; level >= 1; level--) {
      const slot = t + 8 * index(iova, level);
      const pte = this.read(slot);
      if (!(pte & IOPTE_P)) return 0;
      if (level === 1 || (level === 2 && pte & IOPTE_PS)) {
        const size = level === 1 ? IOPT_PAGE_SIZE : IOPT_LARGE_SIZE;
        if (iova % size !== 0) return 0;
        this.write(slot, 0);
        return size;
      }
      t = pteAddr(pte);
    }
    return 0;
  }

  /**
   * lookup - the leaf translating `iova`: physical address of that byte and its permissions
   * Returns: null when unmapped.
   */
  lookup(iova: number): { phys: number; perm: number; size: number } | null {
    let t = this.root;
    for (let level = 4; level >= 1; level--) {
      const pte = this.read(t + 8 * index(iova, level));
      if (!(pte & IOPTE_P)) return null;
      if (level === 1 || (level === 2 && pte & IOPTE_PS)) {
        const size = level === 1 ? IOPT_PAGE_SIZE : IOPT_LARGE_SIZE;
        const base = level === 1 ? pteAddr(pte) : Math.floor(pteAddr(pte) / IOPT_LARGE_SIZE) * IOPT_LARGE_SIZE;
        return { phys: base + (iova % size), perm: pte & (IOPTE_R | IOPTE_W), size };
      }
      t = pteAddr(pte);
    }
    return null;
  }

  /** free - give every page of the table back (the table must no longer be in use). */
  free(): void {
    for (const p of this.tables) {
      this.k.pages.free(p);
      this.counters.pages--;
    }
    this.tables.clear();
  }
}

/** A zeroed table page, made visible to a non-snooping walker; -1 when none is available. */
function allocTablePage(k: Kernel, coherentWalk: boolean, counters: IommuPgtableCounters): number {
  if (counters.failAllocs > 0) {
    counters.failAllocs--;
    return -1;
  }
  const phys = k.pages.alloc(0, 0);
  if (phys < 0) return -1;
  counters.pages++;
  memset(PAGE_OFFSET + phys, 0, IOPT_PAGE_SIZE);
  if (!coherentWalk) k.platform.cacheClean(k.exec.cpu, phys, IOPT_PAGE_SIZE);
  return phys;
}
