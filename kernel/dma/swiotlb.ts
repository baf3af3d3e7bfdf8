/**
 * swiotlb: software bounce buffering (kernel/dma/swiotlb.c, spec §6).
 *
 * A pool of 2 KiB slots carved from low RAM at boot. When a device cannot reach a buffer (its
 * DMA mask), must not see the original (force-bounce mode), or the buffer is a small kmalloc
 * object sharing cache lines (non-coherent devices), the direct path (direct.ts) maps a bounce
 * slot instead and the CPU copies between the original and the slot exactly when §6.3 says:
 *
 *   event             TO_DEVICE          FROM_DEVICE        BIDIRECTIONAL
 *   map               original -> slot   original -> slot   original -> slot
 *   sync_for_device   original -> slot   -                  original -> slot
 *   sync_for_cpu      -                  slot -> original   slot -> original
 *   unmap             -                  slot -> original   slot -> original  (not with SKIP_CPU_SYNC)
 *
 * The map-time copy happens for every direction and even with DMA_ATTR_SKIP_CPU_SYNC, as in
 * Linux 6.x: the slot must start out holding the original's bytes, or a device that writes only
 * part of a FROM_DEVICE buffer would hand back another mapping's stale data.
 *
 * Copies are CPU memcpys through the linear map (kernel/mm/access.ts), so they go through the
 * cache model and cost CPU time like any memcpy. They run inside dma_sanitizer_internal(), so
 * the coherence sanitizer does not take the DMA layer's own copies of a device-owned buffer for
 * the driver's (its effect checks still apply), and `swiotlb_bouncing()` is true meanwhile. Cache maintenance for a non-coherent device is applied to the slot (the
 * bounce buffer is what the device streams from and to), by direct.ts.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { KERN_ERR, KERN_INFO, KERN_WARNING } from "../core/printk.ts";
import type { device } from "../include/device.ts";
import type { dma_addr_t } from "../include/types.ts";
import { memcpy } from "../mm/access.ts";
import { PAGE_OFFSET } from "../mm/layout.ts";
import { orderFor } from "../mm/slab.ts";
import { on_driver_unbind } from "../base/driver.ts";
import { dev_prefix } from "../base/dev_printk.ts";
import {
  DMA_ATTR_NO_WARN,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  SIZE_MAX,
  dma_dir_name,
  dma_fmt_addr,
  type dma_data_direction,
} from "./defs.ts";
import { dma_state, dma_warn_once } from "./state.ts";
import { dma_debug_report } from "./debug.ts";
import { arch_sync_dma_for_device } from "./noncoherent.ts";
import { dma_sanitizer_internal } from "./sanitizer/index.ts";
import { dma_direct_addressing_limited } from "./mask.ts";
import { RateLimit } from "./swiotlb-ratelimit.ts";
import { INVALID_PHYS_ADDR, IO_TLB_SEGSIZE, IO_TLB_SEGMENT_BYTES, IO_TLB_SIZE, IoTlbPool, low_bits, nr_slots } from "./swiotlb-pool.ts";

export { IO_TLB_SHIFT, IO_TLB_SIZE, IO_TLB_SEGSIZE, IO_TLB_DEFAULT_SIZE } from "./swiotlb-pool.ts";

/** The pool is placed below this address when RAM there allows (ZONE_DMA32's top). */
const LOW_LIMIT = 2 ** 32;

type bounce_event = "map" | "sync_for_device" | "sync_for_cpu" | "unmap";

export class SwiotlbState {
  pool: IoTlbPool | null = null;
  /** swiotlb=force: every device bounces. */
  force = false;
  initialised = false;
  /** True while the DMA layer copies between an original and its bounce slot. */
  bouncing = false;
  /** Device that owns the allocation starting at each head slot (for unbind accounting). */
  readonly owners = new Map<number, device>();
  /** dev_warn_ratelimited state of swiotlb_tbl_map_single's warnings. */
  readonly limit = new RateLimit();
  unbindHooked = false;
}

const new_state = (): SwiotlbState => new SwiotlbState();

/** The swiotlb state of @k (created on first use: no pool until swiotlb_init runs). */
export function swiotlb_state(k: Kernel): SwiotlbState {
  return k.state("swiotlb", new_state);
}

/** "0x0000000004000000", the %pa form. */
const pa = (n: number): string => dma_fmt_addr(n);

/**
 * swiotlb_init - carve the default bounce pool out of RAM, as mem_init does at boot
 * @k: the kernel being booted
 * The size and force mode come from the machine description (`swiotlb: {size, force}`); the
 * size is rounded up to whole 256 KiB segments and 0 means no pool. The pool is placed below
 * 4 GiB, or on the lowest RAM if there is none below 4 GiB. Calling it again does nothing.
 * Context: boot.
 * Returns: the pool, or null without one.
 */
export function swiotlb_init(k: Kernel): IoTlbPool | null {
  const st = swiotlb_state(k);
  if (st.initialised) return st.pool;
  st.initialised = true;
  const cfg = k.platform.desc.swiotlb ?? { size: 64 << 20, force: false };
  st.force = cfg.force;
  const stats = dma_state(k).stats;
  if (cfg.size <= 0) {
    k.printk.log(KERN_INFO, "no bounce buffer pool (machine swiotlb.size is 0)", "software IO TLB: ");
    return null;
  }
  const nslabs = Math.ceil(nr_slots(cfg.size) / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE;
  const bytes = nslabs * IO_TLB_SIZE;
  const order = orderFor(bytes);
  let start = k.pages.alloc(order, 0, LOW_LIMIT);
  if (start < 0) {
    const lowest = [...k.platform.ram()].sort((a, b) => a.base - b.base)[0];
    if (lowest) start = k.pages.alloc(order, lowest.node);
  }
  if (start < 0) {
    k.printk.log(KERN_WARNING, `cannot allocate a ${Math.floor(bytes / 1024)} KiB bounce buffer pool`, "software IO TLB: ");
    return null;
  }
  st.pool = new IoTlbPool(start, nslabs);
  stats.swiotlb_slots_total = nslabs;
  k.printk.log(KERN_INFO, `mapped [mem ${pa(start)}-${pa(start + bytes)}] (${Math.floor(bytes / 2 ** 20)}MB)`, "software IO TLB: ");
  if (st.force) k.printk.log(KERN_INFO, "force bounce mode: every streaming mapping is bounced", "software IO TLB: ");
  return st.pool;
}

/** is_swiotlb_active - does @dev have a bounce pool to use? */
export function is_swiotlb_active(dev: device, k: Kernel = current_kernel()): boolean {
  void dev;
  return swiotlb_state(k).pool !== null;
}

/**
 * is_swiotlb_force_bounce - must every streaming mapping of @dev bounce? True in force mode
 * (machine `swiotlb.force`) or for a device the platform marked (`dev.dma_io_tlb_force`).
 * Context: any.
 */
export function is_swiotlb_force_bounce(dev: device, k: Kernel = current_kernel()): boolean {
  return dev.dma_io_tlb_force || swiotlb_state(k).force;
}

/** is_swiotlb_buffer - is @phys inside the bounce pool? */
export function is_swiotlb_buffer(k: Kernel, phys: number): boolean {
  const p = swiotlb_state(k).pool;
  return p !== null && p.contains(phys);
}

/** swiotlb_bouncing - is the DMA layer copying to or from a bounce slot right now? */
export function swiotlb_bouncing(k: Kernel = current_kernel()): boolean {
  return swiotlb_state(k).bouncing;
}

/**
 * dma_set_min_align_mask - low address bits that a bounce buffer of @dev must share with the
 * original (e.g. NVMe's 4 KiB controller page: 0xfff). Below 2^31.
 * Context: process (probe).
 */
export function dma_set_min_align_mask(dev: device, min_align_mask: number): void {
  if (!(Number.isInteger(min_align_mask) && min_align_mask >= 0 && min_align_mask < 2 ** 31)) {
    throw new RangeError(`dma_set_min_align_mask: bad mask ${min_align_mask}`);
  }
  dev.dma_parms.min_align_mask = min_align_mask;
}

/** dma_get_min_align_mask - the device's min_align_mask (0: none). */
export function dma_get_min_align_mask(dev: device): number {
  return dev.dma_parms.min_align_mask ?? 0;
}

/**
 * swiotlb_max_mapping_size - the largest mapping one bounce allocation can hold: 256 KiB,
 * less the slots a min_align_mask may skip.
 */
export function swiotlb_max_mapping_size(dev: device): number {
  const m = dma_get_min_align_mask(dev);
  const min_align = m ? Math.ceil(m / IO_TLB_SIZE) * IO_TLB_SIZE : 0;
  return IO_TLB_SEGMENT_BYTES - min_align;
}

/**
 * dma_direct_max_mapping_size - what dma_max_mapping_size() reports on the direct path:
 * swiotlb_max_mapping_size when @dev may bounce (a pool exists and the device cannot reach all
 * RAM, or bounces by force), otherwise SIZE_MAX.
 */
export function dma_direct_max_mapping_size(dev: device, k: Kernel = current_kernel()): number {
  if (is_swiotlb_active(dev, k) && (dma_direct_addressing_limited(dev) || is_swiotlb_force_bounce(dev, k))) return swiotlb_max_mapping_size(dev);
  return SIZE_MAX;
}

/** dev_warn_ratelimited for swiotlb_tbl_map_single's warnings. */
function warn_ratelimited(k: Kernel, dev: device, text: string): void {
  const say = (missed: number) => k.printk.log(KERN_WARNING, `swiotlb_tbl_map_single: ${missed} callbacks suppressed`);
  if (swiotlb_state(k).limit.ok(k.exec.now(), say)) k.printk.log(KERN_WARNING, text, dev_prefix(dev));
}

/**
 * The copy itself (swiotlb_bounce): @size bytes at bounce address @tlb, to the slot
 * (`to_slot`) or back to the original. A partial sync may start anywhere in the mapping: the
 * slot holding @tlb knows which original bytes it shadows and how many remain.
 */
function swiotlb_bounce(k: Kernel, dev: device, pool: IoTlbPool, tlb: number, size: number, to_slot: boolean, event: bounce_event): void {
  const index = pool.slot_of(tlb);
  let orig = pool.orig_addr[index];
  if (orig === INVALID_PHYS_ADDR) return;
  const lead = low_bits(orig, dma_get_min_align_mask(dev) & (IO_TLB_SIZE - 1));
  const tlb_offset = (tlb - pool.slot_addr(index)) - lead;
  if (tlb_offset < 0 && pool.head[index]) {
    // Before the first byte of the mapping (possible only with a min_align_mask).
    dma_warn_once(k, dev, "swiotlb_bounce:before", `Access before mapping start detected. orig offset ${lead}, requested offset ${tlb - pool.slot_addr(index)}.`);
    return;
  }
  orig += tlb_offset;
  const alloc_size = pool.alloc_size[index] - tlb_offset;
  if (size > alloc_size) {
    dma_warn_once(k, dev, "swiotlb_bounce:overflow", `Buffer overflow detected. Allocation size: ${alloc_size}. Mapping size: ${size}.`);
    size = alloc_size;
  }
  if (size <= 0) return;
  const st = swiotlb_state(k);
  const src = PAGE_OFFSET + (to_slot ? orig : tlb);
  const dst = PAGE_OFFSET + (to_slot ? tlb : orig);
  st.bouncing = true;
  try {
    // The copy touches a buffer the device owns on purpose: no ownership findings for it.
    dma_sanitizer_internal(() => memcpy(dst, src, size), k);
  } finally {
    st.bouncing = false;
  }
  const s = dma_state(k).stats;
  if (to_slot) s.swiotlb_bytes_to_bounce += size;
  else s.swiotlb_bytes_from_bounce += size;
  if (event === "map") s.swiotlb_bytes_map += size;
  else if (event === "sync_for_device") s.swiotlb_bytes_sync_for_device += size;
  else if (event === "sync_for_cpu") s.swiotlb_bytes_sync_for_cpu += size;
  else s.swiotlb_bytes_unmap += size;
}

function update_usage(k: Kernel, pool: IoTlbPool): void {
  const s = dma_state(k).stats;
  s.swiotlb_slots_used = pool.used;
  s.swiotlb_slots_hiwater = pool.hiwater;
}

/**
 * swiotlb_tbl_map_single - allocate a bounce slot run for [orig, orig+size) and fill it from
 * the original. Warns (rate-limited) when the pool is full, unless DMA_ATTR_NO_WARN, and when
 * there is no pool at all.
 * Context: any.
 * Returns: the bounce address (physical), or -1.
 */
export function swiotlb_tbl_map_single(k: Kernel, dev: device, orig: number, size: number, dir: dma_data_direction, attrs: number): number {
  void dir; // every direction copies at map time (see the file comment)
  const st = swiotlb_state(k);
  const pool = st.pool;
  if (!pool) {
    warn_ratelimited(k, dev, "Can not allocate SWIOTLB buffer earlier and can't now provide you with the DMA bounce buffer");
    return -1;
  }
  const min_align = dma_get_min_align_mask(dev);
  const offset = low_bits(orig, min_align & (IO_TLB_SIZE - 1));
  const alloc_size = size + offset;
  const index = pool.find({ orig_addr: orig, alloc_size, alloc_align_mask: 0, min_align_mask: min_align, boundary_mask: dev.dma_parms.segment_boundary_mask, offset });
  if (index < 0) {
    if (!(attrs & DMA_ATTR_NO_WARN)) {
      warn_ratelimited(k, dev, `swiotlb buffer is full (sz: ${alloc_size} bytes), total ${pool.nslabs} (slots), used ${pool.used} (slots)`);
    }
    return -1;
  }
  st.owners.set(index, dev);
  update_usage(k, pool);
  hook_unbind(k);
  const tlb = pool.slot_addr(index) + offset;
  swiotlb_bounce(k, dev, pool, tlb, size, true, "map");
  return tlb;
}

/**
 * swiotlb_map - bounce a mapping of [phys, phys+size) for @dev: allocate and fill a slot run,
 * check the device can reach it, and clean it for a non-coherent device.
 * Context: any.
 * Returns: the bus address of the slot, or DMA_MAPPING_ERROR.
 */
export function swiotlb_map(k: Kernel, dev: device, phys: number, size: number, dir: dma_data_direction, attrs: number): dma_addr_t {
  const s = dma_state(k).stats;
  const tlb = swiotlb_tbl_map_single(k, dev, phys, size, dir, attrs);
  if (tlb < 0) {
    s.swiotlb_map_failures++;
    return DMA_MAPPING_ERROR;
  }
  const last = size > 0 ? tlb + size - 1 : tlb;
  if (last > dev.dma_mask) {
    swiotlb_tbl_unmap_single(k, dev, tlb, size, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
    const text = `swiotlb addr ${dma_fmt_addr(tlb)}+${size} overflow (mask ${dev.dma_mask.toString(16)}, bus limit 0).`;
    dma_warn_once(k, dev, "swiotlb_map:overflow", text);
    dma_debug_report(k, "dma-mask-exceeded", dev, null, text, {
      dev_addr: dma_fmt_addr(tlb),
      phys: dma_fmt_addr(phys),
      size,
      direction: dma_dir_name(dir),
      mask: `0x${dev.dma_mask.toString(16)}`,
      swiotlb: true,
    });
    s.swiotlb_map_failures++;
    return DMA_MAPPING_ERROR;
  }
  if (!dev.dma_coherent && !(attrs & DMA_ATTR_SKIP_CPU_SYNC)) arch_sync_dma_for_device(tlb, size, dir, k);
  s.swiotlb_maps++;
  return tlb as dma_addr_t;
}

/**
 * swiotlb_tbl_unmap_single - copy a FROM_DEVICE / BIDIRECTIONAL mapping back (unless
 * DMA_ATTR_SKIP_CPU_SYNC) and free its slots. The pool frees what it allocated, whatever
 * size the caller passes; an address that starts no live allocation frees nothing.
 * Context: any.
 */
export function swiotlb_tbl_unmap_single(k: Kernel, dev: device, tlb: number, size: number, dir: dma_data_direction, attrs: number): void {
  const st = swiotlb_state(k);
  const pool = st.pool;
  if (!pool || !pool.contains(tlb)) return;
  if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL)) {
    swiotlb_bounce(k, dev, pool, tlb, size, false, "unmap");
  }
  const first = pool.slot_of(tlb - low_bits(tlb, dma_get_min_align_mask(dev) & (IO_TLB_SIZE - 1)));
  if (pool.release(first) > 0) {
    st.owners.delete(first);
    update_usage(k, pool);
  }
}

/**
 * swiotlb_sync_single_for_device - the CPU wrote the original: copy it to the slot for
 * TO_DEVICE and BIDIRECTIONAL (a FROM_DEVICE slot is only ever written by the device).
 * Context: any.
 */
export function swiotlb_sync_single_for_device(k: Kernel, dev: device, tlb: number, size: number, dir: dma_data_direction): void {
  const pool = swiotlb_state(k).pool;
  if (!pool || !pool.contains(tlb)) return;
  if (dir === DMA_TO_DEVICE || dir === DMA_BIDIRECTIONAL) swiotlb_bounce(k, dev, pool, tlb, size, true, "sync_for_device");
}

/**
 * swiotlb_sync_single_for_cpu - the device wrote the slot: copy it back to the original for
 * FROM_DEVICE and BIDIRECTIONAL.
 * Context: any.
 */
export function swiotlb_sync_single_for_cpu(k: Kernel, dev: device, tlb: number, size: number, dir: dma_data_direction, event: "sync_for_cpu" | "unmap" = "sync_for_cpu"): void {
  const pool = swiotlb_state(k).pool;
  if (!pool || !pool.contains(tlb)) return;
  if (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL) swiotlb_bounce(k, dev, pool, tlb, size, false, event);
}

/** Slots and allocations @dev still holds in the pool. */
export function swiotlb_held_by(k: Kernel, dev: device): { mappings: number; slots: number } {
  const st = swiotlb_state(k);
  let mappings = 0;
  let slots = 0;
  if (!st.pool) return { mappings, slots };
  for (const [first, owner] of st.owners) {
    if (owner !== dev) continue;
    mappings++;
    slots += st.pool.slots_of(first);
  }
  return { mappings, slots };
}

/**
 * At unbind, name the bounce slots the driver left mapped: they stay allocated (as in Linux,
 * where a leaked mapping's slots are lost until reboot), next to dma-debug's mapping-leak
 * findings for the same mappings.
 */
function hook_unbind(k: Kernel): void {
  const st = swiotlb_state(k);
  if (st.unbindHooked) return;
  st.unbindHooked = true;
  on_driver_unbind((dev, driver_name) => {
    const held = swiotlb_held_by(k, dev);
    if (held.mappings === 0) return;
    const text = `${held.mappings} bounce buffer${held.mappings === 1 ? "" : "s"} still mapped at unbind: ${held.slots} slot${held.slots === 1 ? "" : "s"} (${held.slots * IO_TLB_SIZE} bytes) of the swiotlb pool leaked`;
    k.printk.log(KERN_ERR, text, `${driver_name || dev.bus} ${dev.name}: `);
  });
}

/** A snapshot of the pool for tests and reports (debugfs io_tlb_nslabs / used / hiwater). */
export function swiotlb_info(k: Kernel = current_kernel()): { start: number; end: number; nslabs: number; used: number; hiwater: number; force: boolean } | null {
  const st = swiotlb_state(k);
  const p = st.pool;
  return p ? { start: p.start, end: p.end, nslabs: p.nslabs, used: p.used, hiwater: p.hiwater, force: st.force } : null;
}
