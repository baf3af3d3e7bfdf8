/**
 * The DMA API through an IOMMU (drivers/iommu/dma-iommu.c, spec §9.3, §9.4): when a device's
 * default domain translates (IOMMU_DOMAIN_DMA or IOMMU_DOMAIN_DMA_FQ), streaming mappings and
 * coherent allocations are reached through I/O virtual addresses instead of physical ones.
 *
 * Theory of operation
 * - Each translating domain gets a cookie (domain.iova_cookie): an IOVA allocator (iova.ts)
 *   with IOVA 0 and the MSI window reserved (the machine's 4 KiB doorbell; on x86 the whole
 *   0xFEE00000-0xFEEFFFFF range, as Linux reserves it), and for DMA_FQ domains a flush queue.
 * - map: allocate an IOVA range for the page-aligned span below min(mask, aperture end) (PCI
 *   devices first try below 4 GiB), iommu_map it with the direction's permissions (TO_DEVICE
 *   read, FROM_DEVICE write, BIDIRECTIONAL both, + IOMMU_CACHE for a snooping device), and
 *   return IOVA + the buffer's offset in its page. Cache maintenance is the direct path's
 *   (§5.2), by physical address.
 * - Untrusted devices (and the small kmalloc buffers of non-coherent devices, as the direct
 *   path bounces them) get buffers that do not fill whole granules bounced through a swiotlb
 *   slot run aligned to and padded to whole granules, the padding zeroed, so the IOVA pages
 *   expose nothing but the buffer (iommu_dma_map_swiotlb).
 * - unmap: invalidate by physical address (non-coherent), iommu_unmap_fast, then either sync
 *   the IOTLB at once (strict: DMA domains, untrusted devices) and free the IOVA, or queue the
 *   IOVA in the flush queue (lazy), which frees it only after its flush. A bounced mapping's
 *   slot is copied back and freed after the device lost access to it.
 * - dma-debug entries carry dev_addr = IOVA and phys = the CPU's physical address, exactly as on
 *   the direct path, so every dma-debug check and the sanitizer's ownership checks hold.
 * The branches in mapping.ts, mapping-sg.ts and coherent.ts call in here when
 * iommu_dma_domain(dev) is not null; scatterlists are in iommu-dma-sg.ts.
 */

import type { Kernel } from "../core/kernel.ts";
import type { device } from "../include/device.ts";
import { PAGE_SIZE, type dma_addr_t } from "../include/types.ts";
import { PAGE_OFFSET } from "../mm/layout.ts";
import { memcpy, memset } from "../mm/access.ts";
import {
  IOMMU_CACHE,
  IOMMU_DOMAIN_DMA_FQ,
  IOMMU_READ,
  IOMMU_WRITE,
  dev_is_untrusted,
  iommu_flush_iotlb_all,
  iommu_get_dma_domain,
  iommu_iotlb_gather_init,
  iommu_iotlb_sync,
  iommu_iova_to_phys,
  iommu_is_dma_domain,
  iommu_map,
  iommu_unmap_fast,
  type iommu_domain,
  type iommu_dma_cookie_ref,
} from "../iommu/iommu.ts";
import { IOVA_GRANULE, IovaDomain } from "../iommu/iova.ts";
import { FlushQueue } from "../iommu/flush-queue.ts";
import { DMA_ATTR_MMIO, DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE, type dma_data_direction } from "./defs.ts";
import { arch_sync_dma_for_cpu, arch_sync_dma_for_device } from "./noncoherent.ts";
import { dma_kmalloc_needs_bounce } from "./direct.ts";
import { dma_state } from "./state.ts";
import { dma_sanitizer_internal } from "./sanitizer/index.ts";
import { san_unstage_cpu_pieces } from "./sanitizer/cpu-pieces.ts";
import { dma_get_min_align_mask, is_swiotlb_buffer, swiotlb_state, swiotlb_sync_single_for_cpu, swiotlb_sync_single_for_device, swiotlb_tbl_unmap_single } from "./swiotlb.ts";
import { IO_TLB_SIZE, low_bits } from "./swiotlb-pool.ts";

const GRANULE_MASK = IOVA_GRANULE - 1;
const TWO_32 = 2 ** 32;
/** The x86 interrupt address range Linux reserves in every DMA domain (IOAPIC_RANGE). */
const X86_MSI_RANGE = { start: 0xfee00000, end: 0xfeefffff };

/** struct iommu_dma_cookie: what dma-iommu keeps per translating domain. */
export class iommu_dma_cookie implements iommu_dma_cookie_ref {
  readonly iovad: IovaDomain;
  /** The flush queue of a DMA_FQ domain (null: strict). */
  readonly fq: FlushQueue | null;
  /** Devices whose below-4-GiB attempt failed once (pci_32bit_workaround cleared). */
  readonly no32 = new WeakSet<device>();
  /** Counters (reports, tests). */
  readonly stats = { maps: 0, unmaps: 0, bounced: 0, strict_syncs: 0, queued: 0, iova_failures: 0, map_failures: 0 };

  constructor(k: Kernel, readonly domain: iommu_domain) {
    this.iovad = new IovaDomain(IOVA_GRANULE, Math.floor(domain.geometry.aperture_start / IOVA_GRANULE));
    const msi = k.platform.desc.interrupts.msiBase;
    const pfn = (a: number): number => Math.floor(a / IOVA_GRANULE);
    this.iovad.reserve_iova(pfn(msi), pfn(msi));
    if (k.arch === "x86") this.iovad.reserve_iova(pfn(X86_MSI_RANGE.start), pfn(X86_MSI_RANGE.end));
    const iovad = this.iovad;
    this.fq =
      domain.type === IOMMU_DOMAIN_DMA_FQ
        ? new FlushQueue({
            flush_all: () => iommu_flush_iotlb_all(domain),
            free: (pfn) => void iovad.free_iova(pfn),
          })
        : null;
  }

  /**
   * iommu_put_dma_cookie (iommu_dma_free_fq): the domain is being freed, its IOTLB entries
   * already invalidated: stop the flush queue's timer and drop what it held, without a flush.
   */
  put(): void {
    this.fq?.destroy();
  }
}

/**
 * iommu_dma_domain - the translating DMA domain @dev's DMA API goes through, or null (no IOMMU,
 * IOMMU off, identity/passthrough or blocked default domain: the direct path applies).
 * Context: any.
 */
export function iommu_dma_domain(dev: device): iommu_domain | null {
  if (dev.iommu === null) return null;
  const d = iommu_get_dma_domain(dev);
  return d !== null && iommu_is_dma_domain(d) ? d : null;
}

/** iommu_get_dma_cookie - the domain's cookie, made on first use. */
export function iommu_dma_cookie_of(k: Kernel, domain: iommu_domain): iommu_dma_cookie {
  let c = domain.iova_cookie as iommu_dma_cookie | null;
  if (!(c instanceof iommu_dma_cookie)) domain.iova_cookie = c = new iommu_dma_cookie(k, domain);
  return c;
}

/** dma_info_to_prot: the IOMMU permissions a direction needs. */
export function dma_info_to_prot(dir: dma_data_direction, coherent: boolean): number {
  const prot = coherent ? IOMMU_CACHE : 0;
  switch (dir) {
    case DMA_BIDIRECTIONAL:
      return prot | IOMMU_READ | IOMMU_WRITE;
    case DMA_TO_DEVICE:
      return prot | IOMMU_READ;
    case DMA_FROM_DEVICE:
      return prot | IOMMU_WRITE;
    default:
      return 0;
  }
}

const iova_align = (n: number): number => Math.ceil(n / IOVA_GRANULE) * IOVA_GRANULE;
const iova_offset = (n: number): number => n % IOVA_GRANULE;

/**
 * iommu_dma_alloc_iova - @size bytes (whole granules) of IOVA space for @dev below @dma_limit
 * and the aperture end; PCI devices try below 4 GiB first until that has failed once.
 * Returns: the IOVA, or 0 when none is left.
 */
export function iommu_dma_alloc_iova(k: Kernel, dev: device, domain: iommu_domain, size: number, dma_limit: number): number {
  const c = iommu_dma_cookie_of(k, domain);
  const pages = Math.ceil(size / IOVA_GRANULE);
  const limit = Math.min(dma_limit, domain.geometry.aperture_end);
  if (limit > TWO_32 - 1 && dev.bus === "pci" && !c.no32.has(dev)) {
    const pfn = c.iovad.alloc_iova_fast(pages, Math.floor((TWO_32 - 1) / IOVA_GRANULE));
    if (pfn >= 0) return pfn * IOVA_GRANULE;
    c.no32.add(dev);
  }
  const pfn = c.iovad.alloc_iova_fast(pages, Math.floor(limit / IOVA_GRANULE));
  if (pfn < 0) {
    c.stats.iova_failures++;
    return 0;
  }
  return pfn * IOVA_GRANULE;
}

/**
 * __iommu_dma_map - map [phys, phys+size) at a fresh IOVA with @prot.
 * Returns: IOVA + phys's offset in its granule, or DMA_MAPPING_ERROR.
 */
export function __iommu_dma_map(k: Kernel, dev: device, domain: iommu_domain, phys: number, size: number, prot: number, dma_limit: number): dma_addr_t {
  const c = iommu_dma_cookie_of(k, domain);
  const off = iova_offset(phys);
  const len = iova_align(size + off);
  const iova = iommu_dma_alloc_iova(k, dev, domain, Math.max(len, IOVA_GRANULE), dma_limit);
  if (!iova) return DMA_MAPPING_ERROR;
  if (iommu_map(domain, iova, phys - off, Math.max(len, IOVA_GRANULE), prot) !== 0) {
    c.iovad.free_iova(iova / IOVA_GRANULE);
    c.stats.map_failures++;
    return DMA_MAPPING_ERROR;
  }
  c.stats.maps++;
  return (iova + off) as dma_addr_t;
}

/**
 * __iommu_dma_unmap - unmap the IOVA range holding [@addr, @addr+@size) and make it free:
 * strict (DMA domain, untrusted device) syncs the IOTLB before freeing; lazy queues it. The
 * whole IOVA allocation holding @addr goes, whatever @size says (dma-debug reports a wrong
 * size; the page tables and the allocator stay consistent).
 */
export function __iommu_dma_unmap(k: Kernel, dev: device, domain: iommu_domain, addr: number, size: number): void {
  const c = iommu_dma_cookie_of(k, domain);
  const r = c.iovad.find_iova(Math.floor(addr / IOVA_GRANULE));
  if (r === null || r.reserved) return; // not an IOVA of ours: dma-debug names the mistake
  void size;
  const start = r.pfn_lo * IOVA_GRANULE;
  const len = (r.pfn_hi - r.pfn_lo + 1) * IOVA_GRANULE;
  const gather = iommu_iotlb_gather_init();
  // Nothing mapped: already unmapped (a lazy range still queued, a later segment of a merged
  // list, or a double unmap dma-debug reports). Never queue or free twice.
  if (iommu_unmap_fast(domain, start, len, gather) === 0) return;
  c.stats.unmaps++;
  if (c.fq !== null && !dev_is_untrusted(dev)) {
    c.stats.queued++;
    c.fq.queue_iova(r.pfn_lo, r.pfn_hi - r.pfn_lo + 1, gather, k);
    return;
  }
  iommu_iotlb_sync(domain, gather);
  c.stats.strict_syncs++;
  c.iovad.free_iova(r.pfn_lo);
}

/** dev_use_swiotlb: may @dev's mappings of this size and direction need a bounce? */
function dev_use_swiotlb(k: Kernel, dev: device, size: number, dir: dma_data_direction): boolean {
  return swiotlb_state(k).pool !== null && (dev_is_untrusted(dev) || dma_kmalloc_needs_bounce(dev, size, dir, k));
}

/**
 * iommu_dma_map_swiotlb - bounce [phys, phys+size) into a slot run aligned to a granule and
 * padded to whole granules, zeroing the padding so the device sees nothing else through the
 * IOVA pages. The copy is the swiotlb map copy (every direction, §6.3).
 * Returns: the slot's physical address, or -1 (pool full or absent).
 */
function iommu_dma_map_swiotlb(k: Kernel, dev: device, phys: number, size: number): number {
  const st = swiotlb_state(k);
  const pool = st.pool;
  if (!pool) return -1;
  const min_align = dma_get_min_align_mask(dev);
  const offset = low_bits(phys, min_align & (GRANULE_MASK | (IO_TLB_SIZE - 1)));
  const aligned = iova_align(size + offset);
  const index = pool.find({ orig_addr: phys, alloc_size: aligned, alloc_align_mask: GRANULE_MASK, min_align_mask: min_align, boundary_mask: dev.dma_parms.segment_boundary_mask, offset });
  const s = dma_state(k).stats;
  if (index < 0) {
    s.swiotlb_map_failures++;
    return -1;
  }
  st.owners.set(index, dev);
  s.swiotlb_slots_used = pool.used;
  s.swiotlb_slots_hiwater = pool.hiwater;
  const slot = pool.slot_addr(index);
  const tlb = slot + offset;
  st.bouncing = true;
  try {
    dma_sanitizer_internal(() => {
      memcpy(PAGE_OFFSET + tlb, PAGE_OFFSET + phys, size);
      // Untrusted devices must not see leftover kernel data around the buffer.
      if (offset) memset(PAGE_OFFSET + slot, 0, offset);
      if (slot + aligned > tlb + size) memset(PAGE_OFFSET + tlb + size, 0, slot + aligned - tlb - size);
    }, k);
  } finally {
    st.bouncing = false;
  }
  s.swiotlb_bytes_to_bounce += size;
  s.swiotlb_bytes_map += size;
  s.swiotlb_maps++;
  return tlb;
}

/**
 * iommu_dma_map_phys - the streaming map of [phys, phys+size) through @dev's DMA domain
 * (dma_map_single, dma_map_page): bounce if needed, clean for a non-coherent device, map.
 * Context: any.
 * Returns: the IOVA the device must use, or DMA_MAPPING_ERROR.
 */
export function iommu_dma_map_phys(k: Kernel, dev: device, domain: iommu_domain, phys: number, size: number, dir: dma_data_direction, attrs: number): dma_addr_t {
  san_unstage_cpu_pieces();
  const c = iommu_dma_cookie_of(k, domain);
  const prot = dma_info_to_prot(dir, dev.dma_coherent);
  let p = phys;
  let bounced = false;
  if (!(attrs & DMA_ATTR_MMIO) && (iova_offset(phys) !== 0 || iova_offset(size) !== 0) && dev_use_swiotlb(k, dev, size, dir)) {
    p = iommu_dma_map_swiotlb(k, dev, phys, size);
    if (p < 0) return DMA_MAPPING_ERROR;
    bounced = true;
    c.stats.bounced++;
  }
  if (!dev.dma_coherent && !(attrs & (DMA_ATTR_SKIP_CPU_SYNC | DMA_ATTR_MMIO))) arch_sync_dma_for_device(p, size, dir, k);
  const addr = __iommu_dma_map(k, dev, domain, p, size, prot, dev.dma_mask);
  if (addr === DMA_MAPPING_ERROR && bounced) swiotlb_tbl_unmap_single(k, dev, p, size, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
  return addr;
}

/**
 * iommu_dma_unmap_phys - end a streaming mapping at IOVA @addr: invalidate (non-coherent),
 * unmap and free or queue the IOVA, then copy a bounce slot back and free it.
 * A handle that translates to nothing is ignored here (dma-debug reports it).
 * Context: any.
 */
export function iommu_dma_unmap_phys(k: Kernel, dev: device, domain: iommu_domain, addr: number, size: number, dir: dma_data_direction, attrs: number): void {
  const phys = iommu_iova_to_phys(domain, addr);
  if (!phys) return;
  if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && !dev.dma_coherent && dir !== DMA_TO_DEVICE && size > 0 && k.platform.isRam(phys, size)) arch_sync_dma_for_cpu(phys, size, dir, k);
  __iommu_dma_unmap(k, dev, domain, addr, size);
  if (is_swiotlb_buffer(k, phys)) swiotlb_tbl_unmap_single(k, dev, phys, size, dir, attrs);
}

/**
 * iommu_dma_sync_single_for_cpu - invalidate by the physical address behind @addr, then copy a
 * bounce slot back to the original. Context: any.
 */
export function iommu_dma_sync_single_for_cpu(k: Kernel, dev: device, domain: iommu_domain, addr: number, size: number, dir: dma_data_direction): void {
  const phys = iommu_iova_to_phys(domain, addr);
  if (!phys) return;
  if (!dev.dma_coherent && size > 0 && k.platform.isRam(phys, size)) arch_sync_dma_for_cpu(phys, size, dir, k);
  if (is_swiotlb_buffer(k, phys)) swiotlb_sync_single_for_cpu(k, dev, phys, size, dir);
}

/**
 * iommu_dma_sync_single_for_device - copy the original into a bounce slot, then clean by the
 * physical address behind @addr. Context: any.
 */
export function iommu_dma_sync_single_for_device(k: Kernel, dev: device, domain: iommu_domain, addr: number, size: number, dir: dma_data_direction): void {
  const phys = iommu_iova_to_phys(domain, addr);
  if (!phys) return;
  if (is_swiotlb_buffer(k, phys)) swiotlb_sync_single_for_device(k, dev, phys, size, dir);
  if (!dev.dma_coherent && size > 0 && k.platform.isRam(phys, size)) arch_sync_dma_for_device(phys, size, dir, k);
}

/**
 * iommu_dma_map_alloc - map freshly allocated pages [phys, phys+size) for a coherent or
 * noncoherent allocation, below the coherent mask.
 * Returns: the IOVA, or DMA_MAPPING_ERROR.
 */
export function iommu_dma_map_alloc(k: Kernel, dev: device, domain: iommu_domain, phys: number, size: number, dir: dma_data_direction): dma_addr_t {
  san_unstage_cpu_pieces();
  return __iommu_dma_map(k, dev, domain, phys, Math.max(size, PAGE_SIZE), dma_info_to_prot(dir, dev.dma_coherent), dev.coherent_dma_mask);
}

/** iommu_dma_unmap_alloc - unmap a coherent or noncoherent allocation's IOVA (strict or queued). */
export function iommu_dma_unmap_alloc(k: Kernel, dev: device, domain: iommu_domain, addr: number, size: number): void {
  __iommu_dma_unmap(k, dev, domain, addr, size);
}
