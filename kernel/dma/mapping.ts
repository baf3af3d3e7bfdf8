/**
 * Streaming DMA mappings (§4.1, §4.2, §4.4): dma_map_single / dma_map_page, unmap, sync and
 * dma_mapping_error, as kernel/dma/mapping.c and include/linux/dma-mapping.h give them.
 *
 * Each call validates what Linux validates (a bad direction is a BUG), resolves the CPU
 * address to a physical one (linear map only; vmalloc is refused; stack memory is mapped but
 * reported), lets the direct path do the work (direct.ts) and tells dma-debug (debug.ts).
 * All of them may be called from interrupt context.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { BUG } from "../core/oops.ts";
import { TRACE_PID_CPU } from "../platform/platform.ts";
import type { device, page } from "../include/device.ts";
import { ENOMEM } from "../include/errno.ts";
import { PAGE_SIZE, type dma_addr_t, type vaddr_t } from "../include/types.ts";
import { AddressSpace, PAGE_OFFSET } from "../mm/layout.ts";
import { DMA_MAPPING_ERROR, dma_check_direction, dma_dir_name, type dma_data_direction } from "./defs.ts";
import { dma_direct_map_phys, dma_direct_sync_single_for_cpu, dma_direct_sync_single_for_device, dma_direct_unmap_phys } from "./direct.ts";
import { debug_dma_add, debug_dma_mapping_error, debug_dma_sync, debug_dma_unmap, dma_debug_report, type dma_debug_type } from "./debug.ts";
import { dma_state, dma_warn_once } from "./state.ts";
import { iommu_dma_domain, iommu_dma_map_phys, iommu_dma_sync_single_for_cpu, iommu_dma_sync_single_for_device, iommu_dma_unmap_phys } from "./iommu-dma.ts";

function trace_dma(k: Kernel, name: string, dev: device, addr: number, size: number, dir: number): void {
  const t = k.platform.trace;
  if (!t.enabled) return;
  t.instant(t.track(TRACE_PID_CPU, `CPU ${k.exec.cpu}`), "dma", name, k.exec.now(), { dev: dev.name, addr, size, dir: dma_dir_name(dir) });
}

function check_size(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 0) BUG(`${what} with invalid size ${size}`);
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Physical address behind a page-mapped (stack) range if its frames are contiguous, else -1. */
function paged_phys(k: Kernel, va: vaddr_t, size: number): number {
  const first = k.aspace.pfnOf(va);
  if (first < 0) return -1;
  const pages = Math.ceil(((va % PAGE_SIZE) + Math.max(size, 1)) / PAGE_SIZE);
  for (let i = 1; i < pages; i++) if (k.aspace.pfnOf(va + i * PAGE_SIZE) !== first + i) return -1;
  return first * PAGE_SIZE + (va % PAGE_SIZE);
}

function report_invalid(k: Kernel, dev: device, va: vaddr_t, size: number, dir: number): void {
  dma_debug_report(k, "map-invalid-memory", dev, null, `device driver maps memory from invalid area [addr=${hex(va)}] [len=${size}]`, {
    cpu_addr: hex(va),
    size,
    direction: dma_dir_name(dir),
  });
}

/**
 * The physical address dma_map_single may use for @va, or -1 after reporting why not.
 * Linear map: fine. vmalloc: refused with Linux's WARN. Stack: mapped (contiguous frames)
 * but reported, as dma-debug reports it. Anything else (aliases, ioremap, junk): refused.
 */
function single_phys(k: Kernel, dev: device, va: vaddr_t, size: number, dir: number): number {
  switch (AddressSpace.kind(va)) {
    case "linear": {
      const phys = va - PAGE_OFFSET;
      if (k.platform.isRam(phys, Math.max(size, 1))) return phys;
      break;
    }
    case "vmalloc": {
      dma_warn_once(k, dev, "dma_map_single:vmalloc", "rejecting DMA map of vmalloc memory");
      const d = { cpu_addr: hex(va), size, direction: dma_dir_name(dir) };
      dma_debug_report(k, "map-invalid-memory", dev, null, `rejecting DMA map of vmalloc memory [addr=${hex(va)}] [len=${size}]`, d);
      return -1;
    }
    case "stack": {
      const phys = paged_phys(k, va, size);
      if (phys < 0) break;
      const d = { cpu_addr: hex(va), size, direction: dma_dir_name(dir) };
      dma_debug_report(k, "map-stack-memory", dev, null, `device driver maps memory from stack [probable addr=${hex(va)}]`, d);
      return phys;
    }
    default:
      break;
  }
  report_invalid(k, dev, va, size, dir);
  return -1;
}

/** The common tail of every streaming map: direct path, stats, dma-debug entry, trace. */
function map_phys(k: Kernel, dev: device, phys: number, va: vaddr_t, size: number, dir: dma_data_direction, attrs: number, type: dma_debug_type, op: string): dma_addr_t {
  const st = dma_state(k).stats;
  // Behind a translating IOMMU the device reaches the buffer through an IOVA (iommu-dma.ts).
  const dom = iommu_dma_domain(dev);
  const addr = dom !== null ? iommu_dma_map_phys(k, dev, dom, phys, size, dir, attrs) : dma_direct_map_phys(k, dev, phys, size, dir, attrs);
  trace_dma(k, op, dev, addr, size, dir);
  if (addr === DMA_MAPPING_ERROR) {
    st.map_errors++;
    return addr;
  }
  st.maps++;
  st.bytes_mapped += size;
  debug_dma_add(k, { dev, type, dev_addr: addr, phys, cpu_addr: va, size, direction: dir, attrs, domain: "DEVICE" }, op);
  return addr;
}

/**
 * dma_map_single_attrs - map a linear-map buffer for streaming DMA
 * @dev: device that will access the buffer
 * @cpu_addr: kernel virtual address (kmalloc or page allocator memory)
 * @size: bytes
 * @dir: DMA_TO_DEVICE, DMA_FROM_DEVICE or DMA_BIDIRECTIONAL (anything else is a BUG)
 * @attrs: DMA_ATTR_* flags (DMA_ATTR_SKIP_CPU_SYNC skips cache maintenance)
 * Context: any (process, softirq, hardirq).
 * Returns: the bus address, or DMA_MAPPING_ERROR (test it with dma_mapping_error()): vmalloc
 * or other non-linear memory, or a buffer beyond the device's DMA mask.
 */
export function dma_map_single_attrs(dev: device, cpu_addr: vaddr_t, size: number, dir: dma_data_direction, attrs = 0): dma_addr_t {
  const k = current_kernel();
  dma_check_direction(dir, "dma_map_single");
  check_size(size, "dma_map_single");
  const phys = single_phys(k, dev, cpu_addr, size, dir);
  if (phys < 0) {
    dma_state(k).stats.map_errors++;
    return DMA_MAPPING_ERROR;
  }
  return map_phys(k, dev, phys, cpu_addr, size, dir, attrs, "single", "dma_map_single");
}

/** dma_map_single - dma_map_single_attrs with no attributes. */
export function dma_map_single(dev: device, cpu_addr: vaddr_t, size: number, dir: dma_data_direction): dma_addr_t {
  return dma_map_single_attrs(dev, cpu_addr, size, dir, 0);
}

/**
 * dma_map_page_attrs - map @size bytes at @offset in @page (and the pages after it)
 * Context: any.
 * Returns: the bus address or DMA_MAPPING_ERROR (not RAM, or beyond the DMA mask).
 */
export function dma_map_page_attrs(dev: device, pg: page, offset: number, size: number, dir: dma_data_direction, attrs = 0): dma_addr_t {
  const k = current_kernel();
  dma_check_direction(dir, "dma_map_page");
  check_size(size, "dma_map_page");
  const phys = pg.pfn * PAGE_SIZE + offset;
  if (!(offset >= 0) || !k.platform.isRam(phys, Math.max(size, 1))) {
    report_invalid(k, dev, PAGE_OFFSET + phys, size, dir);
    dma_state(k).stats.map_errors++;
    return DMA_MAPPING_ERROR;
  }
  return map_phys(k, dev, phys, PAGE_OFFSET + phys, size, dir, attrs, "page", "dma_map_page");
}

/** dma_map_page - dma_map_page_attrs with no attributes. */
export function dma_map_page(dev: device, pg: page, offset: number, size: number, dir: dma_data_direction): dma_addr_t {
  return dma_map_page_attrs(dev, pg, offset, size, dir, 0);
}

function unmap(dev: device, addr: dma_addr_t, size: number, dir: dma_data_direction, attrs: number, type: dma_debug_type, op: string): void {
  const k = current_kernel();
  dma_check_direction(dir, op);
  const dom = iommu_dma_domain(dev);
  if (dom !== null) iommu_dma_unmap_phys(k, dev, dom, addr, size, dir, attrs);
  else dma_direct_unmap_phys(k, dev, addr, size, dir, attrs);
  trace_dma(k, op, dev, addr, size, dir);
  debug_dma_unmap(k, dev, addr, { type, size, direction: dir }, op);
  dma_state(k).stats.unmaps++;
}

/**
 * dma_unmap_single_attrs - end a dma_map_single mapping; @addr, @size and @dir must be the
 * map's. On a non-coherent device FROM_DEVICE / BIDIRECTIONAL lines are invalidated so the CPU
 * reads what the device wrote. Context: any.
 */
export function dma_unmap_single_attrs(dev: device, addr: dma_addr_t, size: number, dir: dma_data_direction, attrs = 0): void {
  unmap(dev, addr, size, dir, attrs, "single", "dma_unmap_single");
}

/** dma_unmap_single - dma_unmap_single_attrs with no attributes. */
export function dma_unmap_single(dev: device, addr: dma_addr_t, size: number, dir: dma_data_direction): void {
  unmap(dev, addr, size, dir, 0, "single", "dma_unmap_single");
}

/** dma_unmap_page_attrs - end a dma_map_page mapping (same rules as dma_unmap_single). */
export function dma_unmap_page_attrs(dev: device, addr: dma_addr_t, size: number, dir: dma_data_direction, attrs = 0): void {
  unmap(dev, addr, size, dir, attrs, "page", "dma_unmap_page");
}

/** dma_unmap_page - dma_unmap_page_attrs with no attributes. */
export function dma_unmap_page(dev: device, addr: dma_addr_t, size: number, dir: dma_data_direction): void {
  unmap(dev, addr, size, dir, 0, "page", "dma_unmap_page");
}

function sync(dev: device, addr: number, size: number, dir: dma_data_direction, to_cpu: boolean, op: string): void {
  const k = current_kernel();
  dma_check_direction(dir, op);
  const dom = iommu_dma_domain(dev);
  if (dom !== null) {
    if (to_cpu) iommu_dma_sync_single_for_cpu(k, dev, dom, addr, size, dir);
    else iommu_dma_sync_single_for_device(k, dev, dom, addr, size, dir);
  } else if (to_cpu) dma_direct_sync_single_for_cpu(k, dev, addr, size, dir);
  else dma_direct_sync_single_for_device(k, dev, addr, size, dir);
  trace_dma(k, op, dev, addr, size, dir);
  debug_dma_sync(k, dev, addr, size, dir, to_cpu, op);
  const st = dma_state(k).stats;
  if (to_cpu) st.syncs_for_cpu++;
  else st.syncs_for_device++;
}

/**
 * dma_sync_single_for_cpu - give (part of) a mapping back to the CPU without unmapping it,
 * before the CPU reads what the device wrote. [@addr, @addr+@size) must lie in the mapping.
 * Context: any.
 */
export function dma_sync_single_for_cpu(dev: device, addr: dma_addr_t, size: number, dir: dma_data_direction): void {
  sync(dev, addr, size, dir, true, "dma_sync_single_for_cpu");
}

/**
 * dma_sync_single_for_device - hand (part of) a mapping back to the device after the CPU
 * wrote to it (or just looked, for FROM_DEVICE buffers being recycled). Context: any.
 */
export function dma_sync_single_for_device(dev: device, addr: dma_addr_t, size: number, dir: dma_data_direction): void {
  sync(dev, addr, size, dir, false, "dma_sync_single_for_device");
}

/** dma_sync_single_range_for_cpu - dma_sync_single_for_cpu of @size bytes at @addr + @offset. */
export function dma_sync_single_range_for_cpu(dev: device, addr: dma_addr_t, offset: number, size: number, dir: dma_data_direction): void {
  sync(dev, addr + offset, size, dir, true, "dma_sync_single_range_for_cpu");
}

/** dma_sync_single_range_for_device - dma_sync_single_for_device of @size bytes at @addr + @offset. */
export function dma_sync_single_range_for_device(dev: device, addr: dma_addr_t, offset: number, size: number, dir: dma_data_direction): void {
  sync(dev, addr + offset, size, dir, false, "dma_sync_single_range_for_device");
}

/**
 * dma_mapping_error - did a map fail? Every map must be checked before its handle is used;
 * dma-debug reports the ones that were not at unmap or sync time.
 * Context: any.
 * Returns: -ENOMEM if @addr is DMA_MAPPING_ERROR, else 0.
 */
export function dma_mapping_error(dev: device, addr: dma_addr_t): number {
  const k = current_kernel();
  debug_dma_mapping_error(k, dev, addr);
  return addr === DMA_MAPPING_ERROR ? -ENOMEM : 0;
}
