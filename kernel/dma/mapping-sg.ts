/**
 * Scatter-gather mappings (§4.3): dma_map_sg / dma_unmap_sg / dma_sync_sg_* and the sg_table
 * forms, as kernel/dma/mapping.c and direct.c give them.
 *
 * The direct path maps each entry on its own through dma_direct_map_phys (cache maintenance,
 * and bouncing where that applies, per segment) and, like Linux's dma_direct_map_sg, never
 * merges entries: the returned count always equals nents. Merging is what an IOMMU does
 * (§8.3). If a segment cannot be mapped, the ones already mapped are unmapped again (without
 * cache maintenance, as Linux does) and the call fails: 0 from dma_map_sg, a negative errno
 * from dma_map_sgtable. The DMA view of entries the driver passed but that did not get a
 * segment is poisoned (dma_address SG_DMA_POISON, dma_length 0) so a driver that walks the
 * wrong count programs its device with an address that decodes nothing, visibly.
 * Unmap and sync take the nents passed to map (sgt->orig_nents), never the returned count.
 * All calls may be made from interrupt context.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { BUG } from "../core/oops.ts";
import { TRACE_PID_CPU } from "../platform/platform.ts";
import type { device } from "../include/device.ts";
import { EINVAL, EIO } from "../include/errno.ts";
import { PAGE_SIZE, type dma_addr_t } from "../include/types.ts";
import { sg_first, sg_next, type scatterlist, type sg_list } from "../lib/scatterlist.ts";
import type { sg_table } from "../lib/sg-table.ts";
import { DMA_ATTR_SKIP_CPU_SYNC, DMA_MAPPING_ERROR, dma_check_direction, dma_dir_name, type dma_data_direction } from "./defs.ts";
import {
  dma_capable,
  dma_direct_map_phys,
  dma_direct_map_plain,
  dma_direct_maps_plainly,
  dma_direct_sync_single_for_cpu,
  dma_direct_sync_single_for_device,
  dma_direct_unmap_phys,
  dma_direct_unmap_sync,
  dma_to_phys,
} from "./direct.ts";
import { swiotlb_state } from "./swiotlb.ts";
import { dma_debug_report } from "./debug.ts";
import { debug_dma_map_sg, debug_dma_sync_sg, debug_dma_unmap_sg } from "./debug-sg.ts";
import { dma_state } from "./state.ts";
import { iommu_dma_domain } from "./iommu-dma.ts";
import { iommu_dma_map_sg_call, iommu_dma_sync_sg_call, iommu_dma_unmap_sg_call } from "./iommu-dma-sg.ts";

/**
 * SG_DMA_POISON - what the DMA view of an entry without a mapped segment holds. It is below
 * 2^48 (a plausible bus address) but decodes neither RAM nor MMIO on any machine we model.
 */
export const SG_DMA_POISON = 0xdead_0000_0000 as dma_addr_t;

function trace_sg(k: Kernel, name: string, dev: device, nents: number, dir: number): void {
  const t = k.platform.trace;
  if (!t.enabled) return;
  t.instant(t.track(TRACE_PID_CPU, `CPU ${k.exec.cpu}`), "dma", name, k.exec.now(), { dev: dev.name, nents, dir: dma_dir_name(dir) });
}

/** The entry after the @i-th of a walk of @n entries, or null when the walk is done. */
function walk_next(sg: scatterlist, i: number, n: number, op: string): scatterlist | null {
  if (i + 1 >= n) return null;
  const next = sg_next(sg);
  // Linux dereferences the NULL sg_next returns after the END entry: an oops, made explicit.
  if (!next) BUG(`${op}: nents ${n} is longer than the list (END after ${i + 1} entries)`);
  return next;
}

function poison(sg: scatterlist): void {
  sg.dma_address = SG_DMA_POISON;
  sg.dma_length = 0;
}

/** The physical address of one CPU entry, or -1 after reporting why it cannot be mapped. */
function entry_phys(k: Kernel, dev: device, sg: scatterlist, i: number, dir: dma_data_direction): number {
  const phys = sg.page ? sg.page.pfn * PAGE_SIZE + sg.offset : -1;
  if (phys >= 0 && k.platform.isRam(phys, Math.max(sg.length, 1))) return phys;
  const what = sg.page ? `non-RAM address ${phys.toString(16)}` : "no page (refused by sg_set_buf, or never set)";
  dma_debug_report(k, "map-invalid-memory", dev, null, `device driver maps an sg entry with ${what} [entry=${i}] [len=${sg.length}]`, {
    entry: i,
    size: sg.length,
    direction: dma_dir_name(dir),
  });
  return -1;
}

/** dma_direct_unmap_sg: give @n mapped segments back to the CPU. */
function unmap_segments(k: Kernel, dev: device, sgl: scatterlist, n: number, dir: dma_data_direction, attrs: number): void {
  for (let i = 0, sg: scatterlist | null = sgl; sg && i < n; i++) {
    dma_direct_unmap_phys(k, dev, sg.dma_address, sg.dma_length, dir, attrs);
    sg = i + 1 < n ? sg_next(sg) : null;
  }
}

/** What map_segments mapped: the bytes of all segments (for the stats and dma-debug). */
let mapped_bytes = 0;

/**
 * dma_direct_map_sg: map every entry, or none. On success `mapped_bytes` holds the bytes of
 * all segments (summed on the way, so the list is walked once).
 * Returns: nents, or -EINVAL (an entry is not RAM) / -EIO (the direct path refused a segment).
 */
function map_segments(k: Kernel, dev: device, sgl: scatterlist, nents: number, dir: dma_data_direction, attrs: number, op: string): number {
  let i = 0;
  let err = 0;
  let bytes = 0;
  // The route's buffer-independent questions (force-bounce, attributes, kmalloc bouncing) have
  // one answer for the whole list: ask them once, then only whether each segment is reachable.
  const plain = dma_direct_maps_plainly(dev, dir, attrs, k);
  for (let sg: scatterlist | null = sgl; sg; sg = walk_next(sg, i, nents, op), i++) {
    const phys = entry_phys(k, dev, sg, i, dir);
    if (phys < 0) {
      err = -EINVAL;
      break;
    }
    const len = sg.length;
    const addr = plain && dma_capable(dev, phys, len) ? dma_direct_map_plain(k, dev, phys, len, dir, attrs) : dma_direct_map_phys(k, dev, phys, len, dir, attrs);
    if (addr === DMA_MAPPING_ERROR) {
      err = -EIO;
      break;
    }
    sg.dma_address = addr;
    sg.dma_length = len;
    bytes += len;
  }
  if (!err) {
    mapped_bytes = bytes;
    return nents;
  }
  unmap_segments(k, dev, sgl, i, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
  for (let j = 0, sg: scatterlist | null = sgl; sg && j < nents; j++) {
    poison(sg);
    sg = j + 1 < nents ? sg_next(sg) : null;
  }
  return err;
}

/** __dma_map_sg_attrs: map, then record in dma-debug. Returns: the count or -errno. */
function map_sg(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction, attrs: number, op: string): number {
  const k = current_kernel();
  dma_check_direction(dir, op);
  if (!Number.isSafeInteger(nents) || nents <= 0) {
    k.warn(`${op}: nents ${nents}`, `${dev.name}: `);
    return -EINVAL;
  }
  const first = sg_first(sgl);
  // Behind a translating IOMMU: one IOVA range for the list, segments merged (iommu-dma-sg.ts).
  const dom = iommu_dma_domain(dev);
  if (dom !== null) return iommu_dma_map_sg_call(k, dev, dom, first, nents, dir, attrs, op);
  const st = dma_state(k).stats;
  const ents = map_segments(k, dev, first, nents, dir, attrs, op);
  trace_sg(k, op, dev, nents, dir);
  if (ents < 0) {
    st.map_errors++;
    return ents;
  }
  const bytes = mapped_bytes;
  st.maps += ents;
  st.bytes_mapped += bytes;
  debug_dma_map_sg(k, dev, first, nents, ents, dir, attrs, op, bytes, true);
  return ents;
}

/**
 * dma_map_sg_attrs - map the buffers of an sg list for streaming DMA
 * @dev: device that will access them
 * @sgl: the list (its first entry, or the array)
 * @nents: entries to map (all of them: sgt->orig_nents for a table)
 * @dir: DMA_TO_DEVICE, DMA_FROM_DEVICE or DMA_BIDIRECTIONAL (anything else is a BUG)
 * @attrs: DMA_ATTR_* (DMA_ATTR_SKIP_CPU_SYNC: no cache maintenance)
 * Context: any.
 * Returns: the number of DMA segments (1..@nents; @nents on the direct path, which never
 * merges), whose sg_dma_address/sg_dma_len the driver programs its device with; 0 on failure.
 * Keep @nents: unmap and sync need it, not the returned count.
 */
export function dma_map_sg_attrs(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction, attrs = 0): number {
  const ents = map_sg(dev, sgl, nents, dir, attrs, "dma_map_sg");
  return ents < 0 ? 0 : ents;
}

/** dma_map_sg - dma_map_sg_attrs with no attributes. */
export function dma_map_sg(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction): number {
  return dma_map_sg_attrs(dev, sgl, nents, dir, 0);
}

/**
 * dma_unmap_sg_attrs - end a dma_map_sg mapping
 * @nents: the nents passed to dma_map_sg (NOT the count it returned)
 * @dir, @attrs: as mapped (DMA_ATTR_SKIP_CPU_SYNC skips the invalidate)
 * Context: any.
 */
export function dma_unmap_sg_attrs(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction, attrs = 0): void {
  const k = current_kernel();
  dma_check_direction(dir, "dma_unmap_sg");
  const first = sg_first(sgl);
  debug_dma_unmap_sg(k, dev, first, nents, dir, "dma_unmap_sg");
  const dom = iommu_dma_domain(dev);
  if (dom !== null) return iommu_dma_unmap_sg_call(k, dev, dom, first, nents, dir, attrs);
  let n = 0;
  // Only a bounce slot needs more than cache maintenance: test for the pool once per call.
  const pool = swiotlb_state(k).pool;
  for (let sg: scatterlist | null = first; sg; sg = walk_next(sg, n, nents, "dma_unmap_sg"), n++) {
    if (pool === null || !pool.contains(dma_to_phys(dev, sg.dma_address))) dma_direct_unmap_sync(k, dev, sg.dma_address, sg.dma_length, dir, attrs);
    else dma_direct_unmap_phys(k, dev, sg.dma_address, sg.dma_length, dir, attrs);
  }
  dma_state(k).stats.unmaps += n;
  trace_sg(k, "dma_unmap_sg", dev, nents, dir);
}

/** dma_unmap_sg - dma_unmap_sg_attrs with no attributes. */
export function dma_unmap_sg(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction): void {
  dma_unmap_sg_attrs(dev, sgl, nents, dir, 0);
}

function sync_sg(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction, to_cpu: boolean, op: string): void {
  const k = current_kernel();
  dma_check_direction(dir, op);
  const first = sg_first(sgl);
  const dom = iommu_dma_domain(dev);
  if (dom !== null) return iommu_dma_sync_sg_call(k, dev, dom, first, nents, dir, to_cpu, op);
  let i = 0;
  for (let sg: scatterlist | null = first; sg; sg = walk_next(sg, i, nents, op), i++) {
    if (to_cpu) dma_direct_sync_single_for_cpu(k, dev, sg.dma_address, sg.dma_length, dir);
    else dma_direct_sync_single_for_device(k, dev, sg.dma_address, sg.dma_length, dir);
  }
  trace_sg(k, op, dev, nents, dir);
  debug_dma_sync_sg(k, dev, first, nents, dir, to_cpu, op);
  const st = dma_state(k).stats;
  if (to_cpu) st.syncs_for_cpu++;
  else st.syncs_for_device++;
}

/**
 * dma_sync_sg_for_cpu - give a mapped sg list back to the CPU without unmapping it, before
 * the CPU reads what the device wrote. @nents: as passed to dma_map_sg. Context: any.
 */
export function dma_sync_sg_for_cpu(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction): void {
  sync_sg(dev, sgl, nents, dir, true, "dma_sync_sg_for_cpu");
}

/**
 * dma_sync_sg_for_device - hand a mapped sg list back to the device after the CPU wrote to it.
 * @nents: as passed to dma_map_sg. Context: any.
 */
export function dma_sync_sg_for_device(dev: device, sgl: sg_list, nents: number, dir: dma_data_direction): void {
  sync_sg(dev, sgl, nents, dir, false, "dma_sync_sg_for_device");
}

/**
 * dma_map_sgtable - map all of @sgt (its orig_nents entries) and store the segment count in
 * sgt.nents
 * Context: any.
 * Returns: 0; -EINVAL (an entry is not mappable memory, or the table is empty) or -EIO (the
 * device cannot reach a buffer). sgt.nents is left alone on failure.
 */
export function dma_map_sgtable(dev: device, sgt: sg_table, dir: dma_data_direction, attrs = 0): number {
  if (!sgt.sgl) {
    dma_check_direction(dir, "dma_map_sgtable");
    return -EINVAL;
  }
  const ents = map_sg(dev, sgt.sgl, sgt.orig_nents, dir, attrs, "dma_map_sgtable");
  if (ents < 0) return ents;
  sgt.nents = ents;
  return 0;
}

/** dma_unmap_sgtable - end a dma_map_sgtable mapping (uses orig_nents). Context: any. */
export function dma_unmap_sgtable(dev: device, sgt: sg_table, dir: dma_data_direction, attrs = 0): void {
  if (sgt.sgl) dma_unmap_sg_attrs(dev, sgt.sgl, sgt.orig_nents, dir, attrs);
}

/** dma_sync_sgtable_for_cpu - dma_sync_sg_for_cpu over orig_nents. Context: any. */
export function dma_sync_sgtable_for_cpu(dev: device, sgt: sg_table, dir: dma_data_direction): void {
  if (sgt.sgl) dma_sync_sg_for_cpu(dev, sgt.sgl, sgt.orig_nents, dir);
}

/** dma_sync_sgtable_for_device - dma_sync_sg_for_device over orig_nents. Context: any. */
export function dma_sync_sgtable_for_device(dev: device, sgt: sg_table, dir: dma_data_direction): void {
  if (sgt.sgl) dma_sync_sg_for_device(dev, sgt.sgl, sgt.orig_nents, dir);
}

