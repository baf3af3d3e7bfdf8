/**
 * Mapping in IOMMU domains (drivers/iommu/iommu.c, §9.2): iommu_map / iommu_map_sg with
 * rollback on partial failure, iommu_unmap_fast with a gather the caller syncs (or queues, for
 * lazy DMA_FQ domains), iommu_unmap that syncs before it returns, and iova_to_phys from the
 * page tables (not from what the IOTLB may still hold). Re-exported by iommu.ts.
 */

import { current_kernel } from "../core/current.ts";
import { KERN_ERR } from "../core/printk.ts";
import { EFAULT, EINVAL, ENODEV } from "../include/errno.ts";
import type { gfp_t, phys_addr_t } from "../include/types.ts";
import { scatterlist, sg_next, sg_phys } from "../lib/scatterlist.ts";
import { IOPT_IOVA_BITS, IOPT_LARGE_SIZE, IOPT_PAGE_SIZE, IOPTE_R, IOPTE_W } from "./io-pgtable.ts";
import { iommu_stale_note_unmap } from "./stale-check.ts";
import {
  IOMMU_DOMAIN_IDENTITY, IOMMU_READ, IOMMU_WRITE, iommu_state, is_paging, type iommu_domain, type iommu_iotlb_gather,
} from "./iommu.ts";

const hex = (n: number): string => n.toString(16);
const pa = (n: number): string => `0x${n.toString(16).padStart(16, "0")}`;

function prot_to_perm(prot: number): number {
  return (prot & IOMMU_READ ? IOPTE_R : 0) | (prot & IOMMU_WRITE ? IOPTE_W : 0);
}

/**
 * iommu_map - map [@iova, @iova + @size) to [@paddr, ...) in @domain with @prot
 * Context: any (@gfp says whether page-table allocation may sleep; it never does here).
 * Uses 2 MiB leaves where iova, paddr and the remaining size allow.
 * Returns: 0; -EINVAL for a non-paging domain or an unaligned iova/paddr/size (logged);
 * -EFAULT beyond the 48-bit address width; -EEXIST when part of the range is mapped; -ENOMEM.
 * On failure nothing this call mapped stays mapped.
 */
export function iommu_map(domain: iommu_domain, iova: number, paddr: phys_addr_t | number, size: number, prot: number, _gfp: gfp_t = 0): number {
  const k = current_kernel();
  if (!is_paging(domain) || domain._freed) return -EINVAL;
  if (domain.pgsize_bitmap === 0) return -ENODEV;
  const min = IOPT_PAGE_SIZE;
  if (iova % min || paddr % min || size % min || iova < 0 || paddr < 0 || size < 0) {
    k.printk.log(KERN_ERR, `unaligned: iova 0x${hex(iova)} pa ${pa(paddr)} size 0x${hex(size)} min_pagesz 0x${hex(min)}`, "iommu: ");
    return -EINVAL;
  }
  if (iova + size > 2 ** IOPT_IOVA_BITS) {
    k.printk.log(KERN_ERR, `iommu width (${IOPT_IOVA_BITS}) is not sufficient for the mapped address (0x${hex(iova + size - 1)})`, "DMAR: ");
    return -EFAULT;
  }
  const pgtbl = domain._pgtbl!;
  const perm = prot_to_perm(prot);
  let mapped = 0;
  let ret = 0;
  while (mapped < size) {
    const cur = iova + mapped;
    const phys = paddr + mapped;
    const large = cur % IOPT_LARGE_SIZE === 0 && phys % IOPT_LARGE_SIZE === 0 && size - mapped >= IOPT_LARGE_SIZE && pgtbl.canMapLarge(cur);
    const pgsize = large ? IOPT_LARGE_SIZE : IOPT_PAGE_SIZE;
    ret = pgtbl.map(cur, phys, pgsize, perm);
    if (ret) break;
    mapped += pgsize;
  }
  // Roll back what this call mapped: the caller sees all or nothing.
  if (ret && mapped) iommu_unmap(domain, iova, mapped);
  return ret;
}

/**
 * iommu_map_sg - map the entries of a scatterlist back to back from @iova
 * Physically contiguous neighbours are mapped as one run; every run must be page aligned.
 * Returns: the bytes mapped, or -errno (nothing stays mapped).
 */
export function iommu_map_sg(domain: iommu_domain, iova: number, sg: scatterlist | readonly scatterlist[], nents: number, prot: number, gfp: gfp_t = 0): number {
  let s: scatterlist | null = sg instanceof scatterlist ? sg : (sg[0] ?? null);
  let mapped = 0;
  let start = 0;
  let len = 0;
  const flush = (): number => {
    if (!len) return 0;
    const r = iommu_map(domain, iova + mapped, start, len, prot, gfp);
    if (r) return r;
    mapped += len;
    len = 0;
    return 0;
  };
  for (let i = 0; i < nents && s; i++, s = sg_next(s)) {
    if (s.length === 0) continue;
    const phys = sg_phys(s);
    if (len && start + len === phys) {
      len += s.length;
      continue;
    }
    const r = flush();
    if (r) return rollback(domain, iova, mapped, r);
    start = phys;
    len = s.length;
  }
  const r = flush();
  if (r) return rollback(domain, iova, mapped, r);
  return mapped;
}

function rollback(domain: iommu_domain, iova: number, mapped: number, err: number): number {
  if (mapped) iommu_unmap(domain, iova, mapped);
  return err;
}

/** iommu_iotlb_gather_init - an empty gather. */
export function iommu_iotlb_gather_init(gather?: iommu_iotlb_gather): iommu_iotlb_gather {
  const g = gather ?? { start: 0, end: 0, pgsize: 0 };
  g.start = Number.MAX_SAFE_INTEGER;
  g.end = 0;
  g.pgsize = 0;
  return g;
}

function gather_add(g: iommu_iotlb_gather, iova: number, size: number): void {
  g.start = Math.min(g.start, iova);
  g.end = Math.max(g.end, iova + size - 1);
  g.pgsize = Math.max(g.pgsize, size);
}

/**
 * iommu_unmap_fast - clear the PTEs of [@iova, @iova + @size) without invalidating
 * Until iommu_iotlb_sync(@domain, @gather) the IOTLB may still translate the range.
 * Returns: bytes unmapped (stops at the first hole; 0 when misaligned or nothing is mapped).
 */
export function iommu_unmap_fast(domain: iommu_domain, iova: number, size: number, gather: iommu_iotlb_gather): number {
  const k = current_kernel();
  if (!is_paging(domain) || domain._freed) return 0;
  if (iova % IOPT_PAGE_SIZE || size % IOPT_PAGE_SIZE || iova < 0) {
    k.printk.log(KERN_ERR, `unaligned: iova 0x${hex(iova)} size 0x${hex(size)} min_pagesz 0x${hex(IOPT_PAGE_SIZE)}`, "iommu: ");
    return 0;
  }
  const pgtbl = domain._pgtbl!;
  let unmapped = 0;
  while (unmapped < size) {
    const n = pgtbl.unmap(iova + unmapped);
    if (n === 0) break;
    gather_add(gather, iova + unmapped, n);
    unmapped += n;
  }
  // The stale-translation checker remembers when (and by which call) the IOVA went away.
  if (unmapped) iommu_stale_note_unmap(domain, iova, unmapped, "iommu_unmap_fast", k);
  return unmapped;
}

/**
 * iommu_unmap - unmap [@iova, @iova + @size) and invalidate the IOTLB before returning
 * Returns: bytes unmapped (stops at the first hole; 0 when misaligned or nothing is there).
 * When it returns, the device can no longer reach the pages (strict).
 */
export function iommu_unmap(domain: iommu_domain, iova: number, size: number): number {
  const g = iommu_iotlb_gather_init();
  const n = iommu_unmap_fast(domain, iova, size, g);
  iommu_iotlb_sync(domain, g);
  return n;
}

/** iommu_iotlb_sync - invalidate what @gather collected, wait for it, and empty it. */
export function iommu_iotlb_sync(domain: iommu_domain, gather: iommu_iotlb_gather): void {
  const st = iommu_state(current_kernel());
  if (gather.end !== 0 && st.hw) st.hw.flush_range(domain.did, gather.start, gather.end - gather.start + 1);
  iommu_iotlb_gather_init(gather);
}

/** iommu_flush_iotlb_all - synchronous invalidation of everything cached (global). */
export function iommu_flush_iotlb_all(_domain: iommu_domain): void {
  iommu_state(current_kernel()).hw?.flush_all();
}

/**
 * iommu_iova_to_phys - what @iova translates to in @domain (what the page tables say, not
 * what the IOTLB may still hold)
 * Returns: the physical address, 0 when unmapped or blocked; @iova for identity domains.
 */
export function iommu_iova_to_phys(domain: iommu_domain, iova: number): phys_addr_t {
  if (domain.type === IOMMU_DOMAIN_IDENTITY) return iova as phys_addr_t;
  if (!is_paging(domain) || domain._freed || iova < 0 || iova >= 2 ** IOPT_IOVA_BITS) return 0 as phys_addr_t;
  return (domain._pgtbl!.lookup(iova)?.phys ?? 0) as phys_addr_t;
}
