/**
 * Scatter-gather mappings through an IOMMU (dma-iommu.c: iommu_dma_map_sg, __finalise_sg,
 * iommu_dma_unmap_sg, iommu_dma_sync_sg_*), spec §8.3 and §9.3.
 *
 * Theory of operation
 * - One IOVA allocation holds the whole list. Each entry gets the granule-aligned span around
 *   its bytes, laid out back to back (padded so no span crosses the device's segment boundary)
 *   and mapped with iommu_map; the DMA view is then built by merging: an entry joins the
 *   previous DMA segment when it starts on a granule, the previous one ended on one, the
 *   join is not at a segment boundary and the result stays within max_segment_size. So a list
 *   of page-aligned pages usually comes back as one segment. Entries past the returned count
 *   are poisoned (SG_DMA_POISON, length 0), as on the direct path.
 * - The CPU pieces of merged segments are staged for the sanitizer (sanitizer/cpu-pieces.ts)
 *   before dma-debug records the segments, so ownership checks cover exactly the mapped bytes.
 * - Lists that may need bouncing (untrusted device; small kmalloc buffers of a non-coherent
 *   device) are mapped entry by entry through iommu_dma_map_phys instead, never merged
 *   (iommu_dma_map_sg_swiotlb); such a list is remembered by its first entry until unmapped.
 * - Unmap: invalidate each entry by physical address, then unmap and free (or queue) the one
 *   IOVA allocation; sync: cache maintenance per CPU entry by physical address.
 */

import type { Kernel } from "../core/kernel.ts";
import type { device } from "../include/device.ts";
import { EINVAL, EIO, ENOMEM } from "../include/errno.ts";
import { PAGE_SIZE, type dma_addr_t } from "../include/types.ts";
import { sg_next, type scatterlist } from "../lib/scatterlist.ts";
import { iommu_map, iommu_unmap, type iommu_domain } from "../iommu/iommu.ts";
import { IOVA_GRANULE } from "../iommu/iova.ts";
import { DMA_ATTR_SKIP_CPU_SYNC, DMA_MAPPING_ERROR, DMA_TO_DEVICE, dma_dir_name, type dma_data_direction } from "./defs.ts";
import { arch_sync_dma_for_cpu, arch_sync_dma_for_device } from "./noncoherent.ts";
import { dma_kmalloc_needs_bounce } from "./direct.ts";
import { dma_debug_report } from "./debug.ts";
import { debug_dma_map_sg, debug_dma_sync_sg } from "./debug-sg.ts";
import { dma_state } from "./state.ts";
import { TRACE_PID_CPU } from "../platform/platform.ts";
import { dma_get_max_seg_size, dma_get_seg_boundary } from "./mask.ts";
import { SG_DMA_POISON } from "./mapping-sg.ts";
import { san_stage_cpu_pieces, san_unstage_cpu_pieces, type san_cpu_piece } from "./sanitizer/cpu-pieces.ts";
import { swiotlb_state } from "./swiotlb.ts";
import {
  dma_info_to_prot,
  iommu_dma_alloc_iova,
  iommu_dma_cookie_of,
  iommu_dma_map_phys,
  iommu_dma_sync_single_for_cpu,
  iommu_dma_sync_single_for_device,
  iommu_dma_unmap_phys,
  __iommu_dma_unmap,
} from "./iommu-dma.ts";

/** Lists mapped entry by entry (may be bounced), by their first entry. */
const perEntry = new WeakSet<scatterlist>();

// Scratch for the layout of one list (reused: mapping a list allocates no per-entry objects).
let sPhys = new Float64Array(64);
let sLen = new Float64Array(64);
let sOff = new Float64Array(64);
let sSpan = new Float64Array(64);

function scratch(n: number): void {
  if (sPhys.length >= n) return;
  const size = Math.max(n, sPhys.length * 2);
  sPhys = new Float64Array(size);
  sLen = new Float64Array(size);
  sOff = new Float64Array(size);
  sSpan = new Float64Array(size);
}

const iova_align = (n: number): number => Math.ceil(n / IOVA_GRANULE) * IOVA_GRANULE;

/** The @n entries from @first (a walk bounded by the END mark). */
function entry(sg: scatterlist | null, i: number, n: number): scatterlist | null {
  return sg !== null && i + 1 < n ? sg_next(sg) : null;
}

function poison_from(sg: scatterlist | null, i: number, n: number): void {
  for (; sg !== null && i < n; sg = entry(sg, i, n), i++) {
    sg.dma_address = SG_DMA_POISON;
    sg.dma_length = 0;
  }
}

/** Physical address of every entry into the scratch arrays; -EINVAL (reported) if one is not RAM. */
function collect(k: Kernel, dev: device, first: scatterlist, nents: number, dir: dma_data_direction): number {
  scratch(nents);
  let i = 0;
  for (let sg: scatterlist | null = first; sg !== null && i < nents; sg = entry(sg, i, nents), i++) {
    const phys = sg.page ? sg.page.pfn * PAGE_SIZE + sg.offset : -1;
    if (phys < 0 || !k.platform.isRam(phys, Math.max(sg.length, 1))) {
      dma_debug_report(k, "map-invalid-memory", dev, null, `device driver maps an sg entry with ${sg.page ? `non-RAM address ${phys.toString(16)}` : "no page"} [entry=${i}] [len=${sg.length}]`, {
        entry: i,
        size: sg.length,
        direction: dma_dir_name(dir),
      });
      return -EINVAL;
    }
    sPhys[i] = phys;
    sLen[i] = sg.length;
  }
  return i;
}

/** iommu_dma_map_sg_swiotlb: each entry its own mapping (bounced where needed), never merged. */
function map_sg_per_entry(k: Kernel, dev: device, domain: iommu_domain, first: scatterlist, n: number, dir: dma_data_direction, attrs: number): number {
  let i = 0;
  let sg: scatterlist | null = first;
  for (; sg !== null && i < n; sg = entry(sg, i, n), i++) {
    const addr = iommu_dma_map_phys(k, dev, domain, sPhys[i], sLen[i], dir, attrs);
    if (addr === DMA_MAPPING_ERROR) break;
    sg.dma_address = addr;
    sg.dma_length = sLen[i];
  }
  if (i === n) {
    perEntry.add(first);
    return n;
  }
  for (let j = 0, s: scatterlist | null = first; s !== null && j < i; s = entry(s, j, i), j++) {
    iommu_dma_unmap_phys(k, dev, domain, s.dma_address, s.dma_length, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
  }
  poison_from(first, 0, n);
  return -EIO;
}

/**
 * iommu_dma_map_sg - map @nents entries from @first for @dev through @domain
 * Context: any.
 * Returns: the number of DMA segments (often 1), or -EINVAL (an entry is not RAM), -ENOMEM
 * (no IOVA space) or -EIO (the IOMMU refused, or the bounce pool is full).
 */
export function iommu_dma_map_sg(k: Kernel, dev: device, domain: iommu_domain, first: scatterlist, nents: number, dir: dma_data_direction, attrs: number): number {
  san_unstage_cpu_pieces();
  const n = collect(k, dev, first, nents, dir);
  if (n < 0) {
    poison_from(first, 0, nents);
    return n;
  }
  perEntry.delete(first);
  let bounce = false;
  if (swiotlb_state(k).pool !== null) {
    const untrusted = dev.iommu?.untrusted === true;
    for (let i = 0; i < n && !bounce; i++) bounce = untrusted || dma_kmalloc_needs_bounce(dev, sLen[i], dir, k);
  }
  if (bounce) return map_sg_per_entry(k, dev, domain, first, n, dir, attrs);

  if (!dev.dma_coherent && !(attrs & DMA_ATTR_SKIP_CPU_SYNC)) for (let i = 0; i < n; i++) arch_sync_dma_for_device(sPhys[i], sLen[i], dir, k);
  // Layout: each entry's granule span, padded so none crosses the segment boundary.
  const mask = dma_get_seg_boundary(dev);
  const span = mask >= Number.MAX_SAFE_INTEGER ? 0 : mask + 1;
  let iova_len = 0;
  for (let i = 0; i < n; i++) {
    sOff[i] = sPhys[i] % IOVA_GRANULE;
    sSpan[i] = iova_align(sLen[i] + sOff[i]);
    const pad = span ? (span - (iova_len % span)) % span : 0;
    if (i > 0 && pad && pad < sSpan[i] - 1) {
      sSpan[i - 1] += pad;
      iova_len += pad;
    }
    iova_len += sSpan[i];
  }
  const iova = iommu_dma_alloc_iova(k, dev, domain, Math.max(iova_len, IOVA_GRANULE), dev.dma_mask);
  if (!iova) {
    poison_from(first, 0, nents);
    return -ENOMEM;
  }
  const prot = dma_info_to_prot(dir, dev.dma_coherent);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const len = iova_align(sLen[i] + sOff[i]);
    if (len > 0 && iommu_map(domain, iova + pos, sPhys[i] - sOff[i], len, prot) !== 0) {
      if (i > 0) iommu_unmap(domain, iova, pos);
      iommu_dma_cookie_of(k, domain).iovad.free_iova(iova / IOVA_GRANULE);
      poison_from(first, 0, nents);
      return -EIO;
    }
    pos += sSpan[i];
  }
  return finalise(dev, first, n, nents, iova);
}

/** __finalise_sg: build the merged DMA view; stage the CPU pieces of merged segments. */
function finalise(dev: device, first: scatterlist, n: number, nents: number, iova: number): number {
  const seg = dma_get_seg_boundary(dev);
  const segSpan = seg >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : seg + 1;
  const max_len = dma_get_max_seg_size(dev);
  let cur: scatterlist = first;
  let cur_len = 0;
  let count = 0;
  let dma_addr = iova;
  let pieces: san_cpu_piece[] | null = null;
  let segFirst = 0;
  for (let i = 0; i < n; i++) {
    const s_off = sOff[i];
    const s_len = sLen[i];
    if (cur_len && !s_off && dma_addr % segSpan !== 0 && max_len - cur_len >= s_len) {
      pieces ??= [{ off: 0, phys: sPhys[segFirst], size: cur_len }];
      pieces.push({ off: cur_len, phys: sPhys[i], size: s_len });
      cur_len += s_len;
    } else {
      if (pieces !== null) san_stage_cpu_pieces(dev, cur.dma_address, pieces);
      pieces = null;
      if (i > 0) cur = sg_next(cur)!;
      cur_len = s_len;
      count++;
      cur.dma_address = (dma_addr + s_off) as dma_addr_t;
      segFirst = i;
    }
    cur.dma_length = cur_len;
    dma_addr += sSpan[i];
    if (s_len + s_off < sSpan[i]) cur_len = 0;
  }
  if (pieces !== null) san_stage_cpu_pieces(dev, cur.dma_address, pieces);
  poison_from(count < nents ? sg_next(cur) : null, count, nents);
  return count;
}

/**
 * iommu_dma_unmap_sg - end a list mapping (@nents as passed to map): invalidate every entry by
 * physical address (unless DMA_ATTR_SKIP_CPU_SYNC), then unmap and free the IOVA allocation.
 * Context: any. Returns: the entries walked (for the statistics).
 */
export function iommu_dma_unmap_sg(k: Kernel, dev: device, domain: iommu_domain, first: scatterlist, nents: number, dir: dma_data_direction, attrs: number): number {
  if (perEntry.has(first)) {
    perEntry.delete(first);
    let i = 0;
    for (let sg: scatterlist | null = first; sg !== null && i < nents; sg = entry(sg, i, nents), i++) {
      if (sg.dma_length !== 0) iommu_dma_unmap_phys(k, dev, domain, sg.dma_address, sg.dma_length, dir, attrs);
    }
    return i;
  }
  let i = 0;
  for (let sg: scatterlist | null = first; sg !== null && i < nents; sg = entry(sg, i, nents), i++) {
    if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && !dev.dma_coherent && dir !== DMA_TO_DEVICE && sg.page && sg.length > 0) {
      arch_sync_dma_for_cpu(sg.page.pfn * PAGE_SIZE + sg.offset, sg.length, dir, k);
    }
  }
  // One IOVA allocation holds every segment: each segment's lookup finds the same one, and
  // __iommu_dma_unmap ignores an address it has already unmapped.
  let j = 0;
  for (let sg: scatterlist | null = first; sg !== null && j < nents; sg = entry(sg, j, nents), j++) {
    if (sg.dma_length === 0 || sg.dma_address === SG_DMA_POISON) break;
    __iommu_dma_unmap(k, dev, domain, sg.dma_address, sg.dma_length);
  }
  return i;
}

/**
 * iommu_dma_sync_sg - dma_sync_sg_for_cpu / _for_device through @domain: per CPU entry by
 * physical address (or per bounced mapping). Context: any.
 */
export function iommu_dma_sync_sg(k: Kernel, dev: device, domain: iommu_domain, first: scatterlist, nents: number, dir: dma_data_direction, to_cpu: boolean): void {
  const bounced = perEntry.has(first);
  let i = 0;
  for (let sg: scatterlist | null = first; sg !== null && i < nents; sg = entry(sg, i, nents), i++) {
    if (bounced) {
      if (to_cpu) iommu_dma_sync_single_for_cpu(k, dev, domain, sg.dma_address, sg.dma_length, dir);
      else iommu_dma_sync_single_for_device(k, dev, domain, sg.dma_address, sg.dma_length, dir);
      continue;
    }
    if (dev.dma_coherent || !sg.page || sg.length <= 0) continue;
    const phys = sg.page.pfn * PAGE_SIZE + sg.offset;
    if (to_cpu) arch_sync_dma_for_cpu(phys, sg.length, dir, k);
    else arch_sync_dma_for_device(phys, sg.length, dir, k);
  }
}

function trace_sg(k: Kernel, name: string, dev: device, nents: number, dir: number): void {
  const t = k.platform.trace;
  if (!t.enabled) return;
  t.instant(t.track(TRACE_PID_CPU, `CPU ${k.exec.cpu}`), "dma", name, k.exec.now(), { dev: dev.name, nents, dir: dma_dir_name(dir), iommu: true });
}

/**
 * iommu_dma_map_sg_call - the IOMMU branch of dma_map_sg / dma_map_sgtable (mapping-sg.ts):
 * map, count, record with dma-debug (the CPU pieces of merged segments staged for the sanitizer).
 * Returns: the segment count, or -errno.
 */
export function iommu_dma_map_sg_call(k: Kernel, dev: device, domain: iommu_domain, first: scatterlist, nents: number, dir: dma_data_direction, attrs: number, op: string): number {
  const st = dma_state(k).stats;
  const ents = iommu_dma_map_sg(k, dev, domain, first, nents, dir, attrs);
  trace_sg(k, op, dev, nents, dir);
  if (ents < 0) {
    san_unstage_cpu_pieces();
    st.map_errors++;
    return ents;
  }
  let bytes = 0;
  for (let i = 0, sg: scatterlist | null = first; sg !== null && i < ents; sg = entry(sg, i, ents), i++) bytes += sg.dma_length;
  st.maps += ents;
  st.bytes_mapped += bytes;
  debug_dma_map_sg(k, dev, first, nents, ents, dir, attrs, op, bytes);
  san_unstage_cpu_pieces();
  return ents;
}

/** iommu_dma_unmap_sg_call - the IOMMU branch of dma_unmap_sg (after dma-debug's checks). */
export function iommu_dma_unmap_sg_call(k: Kernel, dev: device, domain: iommu_domain, first: scatterlist, nents: number, dir: dma_data_direction, attrs: number): void {
  dma_state(k).stats.unmaps += iommu_dma_unmap_sg(k, dev, domain, first, nents, dir, attrs);
  trace_sg(k, "dma_unmap_sg", dev, nents, dir);
}

/** iommu_dma_sync_sg_call - the IOMMU branch of dma_sync_sg_for_cpu / _for_device. */
export function iommu_dma_sync_sg_call(k: Kernel, dev: device, domain: iommu_domain, first: scatterlist, nents: number, dir: dma_data_direction, to_cpu: boolean, op: string): void {
  iommu_dma_sync_sg(k, dev, domain, first, nents, dir, to_cpu);
  trace_sg(k, op, dev, nents, dir);
  debug_dma_sync_sg(k, dev, first, nents, dir, to_cpu, op);
  const st = dma_state(k).stats;
  if (to_cpu) st.syncs_for_cpu++;
  else st.syncs_for_device++;
}
