/**
 * The IOMMU page-table walk (SPEC.md section 4.1): four levels of 512 8-byte entries in RAM,
 * read with the IOMMU's own bus-master reads. It reports what it found into a reused result
 * object (a walk happens on every IOTLB miss, so it allocates nothing) and leaves permission
 * checks, fault recording and caching to the caller.
 */

import * as regs from "./iommu-regs.ts";

// Copied into module constants once: V8 loads and checks an imported binding on every use and
// never folds it, while a module constant folds into the code (this runs for every DMA page).
const {
  IOMMU_LARGE_SHIFT,
  IOMMU_LEVELS,
  IOMMU_PAGE_SHIFT,
  IOMMU_PAGE_SIZE,
  IOMMU_PTE_ADDR_LIMIT,
  IOMMU_PTE_P,
  IOMMU_PTE_PS,
  IOMMU_PTE_R,
  IOMMU_PTE_W,
} = regs;

/** Reads one little-endian 8-byte entry; null when the address is not RAM. */
export type PteReader = (addr: number) => number | null;

export const WALK_OK = 0;
export const WALK_NOT_PRESENT = 1;
export const WALK_BAD_POINTER = 2;
export const WALK_RESERVED = 3;

/** What a walk found. Fields after `status` are meaningful for the statuses named beside them. */
export class WalkResult {
  status = WALK_OK;
  /** OK: the leaf's page base, its size shift (12 or 21) and the ANDed permissions. */
  phys = 0;
  shift = 12;
  canRead = false;
  canWrite = false;
  /** OK with shift 12: the level-1 table and the permissions of the levels above it (for the paging-structure cache). */
  l1Table = -1;
  upperRead = false;
  upperWrite = false;
  /** BAD_POINTER / RESERVED: the level, the table address or the offending entry. */
  level = 0;
  addr = 0;
  entry = 0;
}

const ENTRY_MASK = 0x1ff;
/** Bytes one entry maps at each level (index = level): a table, not `2 ** shift` (a Math.pow call per level per walk). */
const LEVEL_SPAN = [0, 1, 2, 3, 4].map((level) => 2 ** (IOMMU_PAGE_SHIFT + 9 * (level - 1)));

/**
 * walkPageTable - translate `iova` through the table at `table`, starting at `level` (4 for a
 * full walk from the root; 1 to resume from a cached level-1 table with the permissions of the
 * levels above it).
 * Context: any (hardware model); `read` performs and counts the memory reads.
 * Returns: `out`, filled.
 */
export function walkPageTable(read: PteReader, table: number, iova: number, out: WalkResult, level = IOMMU_LEVELS, canRead = true, canWrite = true): WalkResult {
  out.l1Table = -1;
  for (; level >= 1; level--) {
    const index = Math.floor(iova / LEVEL_SPAN[level]!) & ENTRY_MASK;
    const addr = table + index * 8;
    if (level === 1) {
      out.l1Table = table;
      out.upperRead = canRead;
      out.upperWrite = canWrite;
    }
    const pte = read(addr);
    if (pte === null) return fail(out, WALK_BAD_POINTER, level, table, 0);
    // The low bits of a Number above 2^32 are lost to bitwise ops: take the low word first.
    const lo = (pte - Math.floor(pte / 0x100000000) * 0x100000000) >>> 0;
    if (!(lo & IOMMU_PTE_P)) return fail(out, WALK_NOT_PRESENT, level, addr, pte);
    canRead &&= (lo & IOMMU_PTE_R) !== 0;
    canWrite &&= (lo & IOMMU_PTE_W) !== 0;
    const next = pteAddr(pte);
    if (lo & IOMMU_PTE_PS) {
      if (level === 2) return ok(out, next - (next % 2 ** IOMMU_LARGE_SHIFT), IOMMU_LARGE_SHIFT, canRead, canWrite);
      if (level > 2) return fail(out, WALK_RESERVED, level, addr, pte);
      // Level 1 leaves are pages already: PS there is ignored (SPEC.md 4.1).
    }
    if (level === 1) return ok(out, next, IOMMU_PAGE_SHIFT, canRead, canWrite);
    table = next;
  }
  return fail(out, WALK_NOT_PRESENT, 0, table, 0);
}

function ok(out: WalkResult, phys: number, shift: number, canRead: boolean, canWrite: boolean): WalkResult {
  out.status = WALK_OK;
  out.phys = phys;
  out.shift = shift;
  out.canRead = canRead;
  out.canWrite = canWrite;
  return out;
}

function fail(out: WalkResult, status: number, level: number, addr: number, entry: number): WalkResult {
  out.status = status;
  out.level = level;
  out.addr = addr;
  out.entry = entry;
  return out;
}

/** ADDR field (bits 51:12) of an entry held as a Number (exact below 2^53). */
export function pteAddr(pte: number): number {
  // (no `%`: on doubles it is a slow library call in V8; these divisions are exact)
  const addr = pte - Math.floor(pte / IOMMU_PTE_ADDR_LIMIT) * IOMMU_PTE_ADDR_LIMIT;
  return Math.floor(addr / IOMMU_PAGE_SIZE) * IOMMU_PAGE_SIZE;
}
