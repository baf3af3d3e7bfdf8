/**
 * The IOMMU page-table walk (SPEC.md section 4.1): four levels of 512 8-byte entries in RAM,
 * read with the IOMMU's own bus-master reads. Pure: it reports what it found and leaves
 * permission checks, fault recording and caching to the caller.
 */

import * as R from "./iommu-regs.ts";

/** Reads one little-endian 8-byte entry; null when the address is not RAM. */
export type PteReader = (addr: number) => number | null;

export type WalkResult =
  | { ok: true; phys: number; shift: number; canRead: boolean; canWrite: boolean }
  | { ok: false; kind: "not-present" }
  | { ok: false; kind: "bad-pointer"; level: number; addr: number }
  | { ok: false; kind: "reserved"; level: number; entry: number };

const ENTRY_MASK = 0x1ff;

/**
 * walkPageTable - translate `iova` through the table rooted at `root`.
 * Context: any (hardware model); `read` performs and counts the memory reads.
 * Returns: the leaf's page base, size shift and effective (ANDed) permissions, or why it failed.
 */
export function walkPageTable(read: PteReader, root: number, iova: number): WalkResult {
  let table = root;
  let canRead = true;
  let canWrite = true;
  for (let level = R.IOMMU_LEVELS; level >= 1; level--) {
    const shift = R.IOMMU_PAGE_SHIFT + 9 * (level - 1);
    const index = Math.floor(iova / 2 ** shift) & ENTRY_MASK;
    const addr = table + index * 8;
    const pte = read(addr);
    if (pte === null) return { ok: false, kind: "bad-pointer", level, addr: table };
    // The low bits of a Number above 2^32 are lost to bitwise ops: take the low word first.
    const lo = pte % 0x100000000 >>> 0;
    if (!(lo & R.IOMMU_PTE_P)) return { ok: false, kind: "not-present" };
    canRead &&= (lo & R.IOMMU_PTE_R) !== 0;
    canWrite &&= (lo & R.IOMMU_PTE_W) !== 0;
    const next = pteAddr(pte);
    if (lo & R.IOMMU_PTE_PS) {
      if (level === 2) {
        const large = next - (next % 2 ** R.IOMMU_LARGE_SHIFT);
        return { ok: true, phys: large, shift: R.IOMMU_LARGE_SHIFT, canRead, canWrite };
      }
      if (level > 2) return { ok: false, kind: "reserved", level, entry: pte };
      // Level 1 leaves are pages already: PS there is ignored (SPEC.md 4.1).
    }
    if (level === 1) return { ok: true, phys: next, shift: R.IOMMU_PAGE_SHIFT, canRead, canWrite };
    table = next;
  }
  return { ok: false, kind: "not-present" };
}

/** ADDR field (bits 51:12) of an entry held as a Number (exact below 2^53). */
export function pteAddr(pte: number): number {
  const addr = pte % R.IOMMU_PTE_ADDR_LIMIT;
  return addr - (addr % R.IOMMU_PAGE_SIZE);
}
