/**
 * DMA allocations (§3.1): dma_alloc_coherent and friends, the managed dmam_* variants, and
 * dma_alloc_noncoherent.
 *
 * Coherent memory comes from the page allocator below the coherent mask, as 2^order pages
 * (so it is aligned to the smallest page order >= size), zeroed. For a device that snoops,
 * the CPU address is the ordinary cacheable linear map. For a non-coherent device the pages
 * are cleaned+invalidated once (arch_dma_prep_coherent) and the CPU gets the uncached alias
 * (the write-combining one with DMA_ATTR_WRITE_COMBINE): CPU stores then reach RAM at once and
 * loads read RAM, so CPU and device see the same bytes with no sync calls, only barriers.
 * Noncoherent allocations are cacheable linear-map pages that need dma_sync_single_for_* to
 * change hands, exactly like a streaming mapping (they start owned by the CPU).
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import type { device, devres_node } from "../include/device.ts";
import { PAGE_SIZE, type dma_addr_t, type gfp_t, type vaddr_t } from "../include/types.ts";
import { PAGE_OFFSET, REGION_SIZE, REGION_UNCACHED, REGION_WC } from "../mm/layout.ts";
import { orderFor } from "../mm/slab.ts";
import { memset } from "../mm/access.ts";
import { DMA_ATTR_WRITE_COMBINE, DMA_BIDIRECTIONAL, dma_check_direction, type dma_addr_ref, type dma_data_direction } from "./defs.ts";
import { arch_dma_prep_coherent } from "./noncoherent.ts";
import { phys_to_dma } from "./direct.ts";
import { debug_dma_add, debug_dma_free, type dma_debug_type } from "./debug.ts";
import { dma_state } from "./state.ts";
import { devres_add } from "../base/devres.ts";
import { DMA_MAPPING_ERROR } from "./defs.ts";
import { iommu_dma_domain, iommu_dma_map_alloc, iommu_dma_unmap_alloc } from "./iommu-dma.ts";

const NULL = 0;

/** 2^order pages for @dev below its coherent mask, on its NUMA node if possible; -1 if none. */
function alloc_pages_for(k: Kernel, dev: device, size: number): number {
  if (!Number.isSafeInteger(size) || size <= 0) return -1;
  // Behind a translating IOMMU any page will do: the IOVA is what must fit the mask.
  const limit = iommu_dma_domain(dev) !== null ? Infinity : dev.coherent_dma_mask + 1;
  return k.pages.alloc(orderFor(size), dev.numa_node, limit);
}

/** The CPU address for coherent pages: uncached (or WC) alias unless the device snoops. */
function coherent_cpu_addr(dev: device, phys: number, attrs: number): vaddr_t {
  if (dev.dma_coherent) return PAGE_OFFSET + phys;
  return (attrs & DMA_ATTR_WRITE_COMBINE ? REGION_WC : REGION_UNCACHED) * REGION_SIZE + phys;
}

/**
 * dma_alloc_attrs - allocate memory the CPU and @dev can share without syncs
 * @dev: device
 * @size: bytes (rounded up to whole pages, a power of two of them)
 * @dma_handle: out: the bus address for the device
 * @gfp: GFP_KERNEL or GFP_ATOMIC (zone flags are ignored: the coherent mask decides)
 * @attrs: DMA_ATTR_* (DMA_ATTR_WRITE_COMBINE: write-combining CPU alias on non-coherent devices)
 * Context: process; GFP_ATOMIC also from interrupt context.
 * Returns: the CPU address of zeroed memory, or NULL (0) if none is left below the mask.
 */
export function dma_alloc_attrs(dev: device, size: number, dma_handle: dma_addr_ref, gfp: gfp_t, attrs = 0): vaddr_t {
  void gfp;
  const k = current_kernel();
  const phys = alloc_pages_for(k, dev, size);
  if (phys < 0) return NULL;
  if (!dev.dma_coherent) arch_dma_prep_coherent(phys, PAGE_SIZE << orderFor(size), k);
  const va = coherent_cpu_addr(dev, phys, attrs);
  memset(va, 0, size);
  const dom = iommu_dma_domain(dev);
  const handle = dom !== null ? iommu_dma_map_alloc(k, dev, dom, phys, size, DMA_BIDIRECTIONAL) : phys_to_dma(dev, phys);
  if (handle === DMA_MAPPING_ERROR) {
    k.pages.free(phys);
    return NULL;
  }
  dma_handle.value = handle;
  const st = dma_state(k).stats;
  st.coherent_allocs++;
  st.coherent_bytes += size;
  debug_dma_add(k, { dev, type: "coherent", dev_addr: handle, phys, cpu_addr: va, size, direction: DMA_BIDIRECTIONAL, attrs, domain: "COHERENT" }, "dma_alloc_coherent");
  return va;
}

/** dma_alloc_coherent - dma_alloc_attrs with no attributes. */
export function dma_alloc_coherent(dev: device, size: number, dma_handle: dma_addr_ref, gfp: gfp_t): vaddr_t {
  return dma_alloc_attrs(dev, size, dma_handle, gfp, 0);
}

/** Common free: WARN in atomic context, match the allocation, give the pages back. */
function free_common(dev: device, size: number, cpu_addr: vaddr_t, dma_handle: dma_addr_t, type: dma_debug_type, dir: dma_data_direction, op: string): void {
  const k = current_kernel();
  // WARN_ON(irqs_disabled()): freeing may unmap a remapped alias, which can sleep.
  if (k.exec.context === "hardirq") k.warn(`${op} called with interrupts disabled`, `${dev.name}: `);
  if (!cpu_addr) return;
  const e = debug_dma_free(k, dev, dma_handle, { type, size, direction: dir, cpu_addr }, op);
  if (!e) return;
  const dom = iommu_dma_domain(dev);
  if (dom !== null) iommu_dma_unmap_alloc(k, dev, dom, e.dev_addr, size);
  k.pages.free(e.phys);
  dma_state(k).stats.coherent_frees++;
}

/**
 * dma_free_attrs - free memory from dma_alloc_attrs. @size, @cpu_addr and @dma_handle must be
 * exactly what the allocation used and returned; if not, a free-coherent-mismatch (or
 * unmap-not-mapped) finding and a WARN, and nothing is freed. NULL @cpu_addr does nothing.
 * Context: process, interrupts enabled (WARNs from hardirq).
 */
export function dma_free_attrs(dev: device, size: number, cpu_addr: vaddr_t, dma_handle: dma_addr_t, attrs = 0): void {
  void attrs;
  free_common(dev, size, cpu_addr, dma_handle, "coherent", DMA_BIDIRECTIONAL, "dma_free_coherent");
}

/** dma_free_coherent - dma_free_attrs with no attributes. */
export function dma_free_coherent(dev: device, size: number, cpu_addr: vaddr_t, dma_handle: dma_addr_t): void {
  dma_free_attrs(dev, size, cpu_addr, dma_handle, 0);
}

// ------------------------------------------------------------------ managed (devres)

interface dmam_data {
  readonly size: number;
  readonly vaddr: vaddr_t;
  readonly handle: dma_addr_t;
}
const dmamNodes = new WeakMap<devres_node, dmam_data>();

/**
 * dmam_alloc_attrs - dma_alloc_attrs, freed automatically when the driver detaches (the
 * devres entry "dmam_release" runs dma_free_attrs in reverse acquisition order).
 * Context: process. Returns: as dma_alloc_attrs.
 */
export function dmam_alloc_attrs(dev: device, size: number, dma_handle: dma_addr_ref, gfp: gfp_t, attrs = 0): vaddr_t {
  const vaddr = dma_alloc_attrs(dev, size, dma_handle, gfp, attrs);
  if (!vaddr) return NULL;
  const handle = dma_handle.value;
  const node: devres_node = { name: "dmam_release", release: () => dma_free_attrs(dev, size, vaddr, handle, attrs) };
  dmamNodes.set(node, { size, vaddr, handle });
  devres_add(dev, node);
  return vaddr;
}

/** dmam_alloc_coherent - managed dma_alloc_coherent. */
export function dmam_alloc_coherent(dev: device, size: number, dma_handle: dma_addr_ref, gfp: gfp_t): vaddr_t {
  return dmam_alloc_attrs(dev, size, dma_handle, gfp, 0);
}

/**
 * dmam_free_coherent - free managed coherent memory early. WARNs if @vaddr/@dma_handle/@size
 * do not name a dmam allocation of @dev (then frees nothing through devres).
 * Context: process.
 */
export function dmam_free_coherent(dev: device, size: number, vaddr: vaddr_t, dma_handle: dma_addr_t): void {
  const i = dev.devres.findIndex((n) => {
    const d = dmamNodes.get(n);
    return d !== undefined && d.vaddr === vaddr && d.handle === dma_handle && d.size === size;
  });
  if (i < 0) {
    current_kernel().warn(`dmam_free_coherent: no managed DMA allocation at 0x${vaddr.toString(16)}`, `${dev.name}: `);
    return;
  }
  dev.devres.splice(i, 1);
  dma_free_coherent(dev, size, vaddr, dma_handle);
}

// ------------------------------------------------------------------ noncoherent

/**
 * dma_alloc_noncoherent - allocate cacheable, device-addressable memory whose ownership is
 * passed with dma_sync_single_for_device / dma_sync_single_for_cpu (using @dir).
 * Context: process. Returns: a zeroed linear-map address owned by the CPU, or NULL.
 */
export function dma_alloc_noncoherent(dev: device, size: number, dma_handle: dma_addr_ref, dir: dma_data_direction, gfp: gfp_t): vaddr_t {
  void gfp;
  dma_check_direction(dir, "dma_alloc_noncoherent");
  const k = current_kernel();
  const phys = alloc_pages_for(k, dev, size);
  if (phys < 0) return NULL;
  const va = PAGE_OFFSET + phys;
  memset(va, 0, size);
  const dom = iommu_dma_domain(dev);
  const handle = dom !== null ? iommu_dma_map_alloc(k, dev, dom, phys, size, dir) : phys_to_dma(dev, phys);
  if (handle === DMA_MAPPING_ERROR) {
    k.pages.free(phys);
    return NULL;
  }
  dma_handle.value = handle;
  const st = dma_state(k).stats;
  st.coherent_allocs++;
  st.coherent_bytes += size;
  debug_dma_add(k, { dev, type: "noncoherent", dev_addr: handle, phys, cpu_addr: va, size, direction: dir, attrs: 0, domain: "CPU" }, "dma_alloc_noncoherent");
  return va;
}

/** dma_free_noncoherent - free dma_alloc_noncoherent memory (all arguments must match). */
export function dma_free_noncoherent(dev: device, size: number, vaddr: vaddr_t, dma_handle: dma_addr_t, dir: dma_data_direction): void {
  dma_check_direction(dir, "dma_free_noncoherent");
  free_common(dev, size, vaddr, dma_handle, "noncoherent", dir, "dma_free_noncoherent");
}
