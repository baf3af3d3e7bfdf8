/**
 * dma-debug (§7), the checks of kernel/dma/debug.c on our bookkeeping table.
 *
 * Every live mapping and allocation is an entry (debug-table.ts) with its owner, its domain
 * (CPU or DEVICE, §1.2) and a history of the calls that touched it. The map, sync, unmap and
 * free paths call in here; each misuse becomes one finding of a stable kind, printed like
 * Linux prints it ("DMA-API: <driver> <device>: device driver ...") at KERN_ERR, followed by
 * the call that created the entry. Every error becomes a finding; which ones are also printed
 * follows the §7.3 knobs (debug-knobs.ts: Linux's default prints the first error only).
 * The domain kept per entry is what the coherence sanitizer builds on; a partial sync hands
 * over only its range (debug-owner.ts: the CPU's ranges of a split mapping).
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { KERN_ERR, KERN_INFO, KERN_WARNING, dmesgStamp } from "../core/printk.ts";
import type { FindingKind, FindingHistoryEntry } from "../core/findings.ts";
import type { device } from "../include/device.ts";
import type { vaddr_t } from "../include/types.ts";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE, dma_dir_name, dma_fmt_addr, type dma_data_direction } from "./defs.ts";
import { DmaDebugEntry, dma_debug_entry_note, type dma_debug_entry, type dma_debug_type, type dma_domain } from "./debug-entry.ts";
import { dma_state, type DmaState } from "./state.ts";
import { on_driver_unbind } from "../base/driver.ts";
import { dma_debug_count_entries, dma_debug_count_error, dma_debug_disabled } from "./debug-knobs.ts";
import { dma_debug_cacheline_insert } from "./debug-cacheline.ts";
import { dma_debug_in_kernel_image, dma_debug_on_stack } from "./debug-areas.ts";
import { dma_history_copy, note_free, note_sync, note_unmap } from "./debug-history.ts";
import { dma_debug_hand_over, dma_debug_owner_text } from "./debug-owner.ts";

export type { dma_debug_entry, dma_debug_type, dma_domain };

const FIX: Partial<Record<FindingKind, string>> = {
  "unmap-not-mapped": "Unmap or free only a handle returned by a successful map or allocation, once, on the device that made it.",
  "unmap-wrong-size": "Unmap with the same size that was mapped.",
  "unmap-wrong-type": "Undo a mapping with its own function: dma_unmap_single for dma_map_single, dma_unmap_page for dma_map_page, dma_free_coherent for dma_alloc_coherent.",
  "unmap-wrong-direction": "Unmap with the same direction that was mapped.",
  "mapping-error-not-checked": "Check every handle with dma_mapping_error() right after mapping, before giving it to the device.",
  "sync-not-mapped": "Sync only addresses inside a live mapping of the same device.",
  "sync-out-of-range": "Keep the synced range (address + size) inside the mapping.",
  "sync-wrong-direction": "Sync with the direction the buffer was mapped with.",
  "free-coherent-mismatch": "Free with exactly the size, CPU address and DMA handle that dma_alloc_coherent() gave.",
  "mapping-leak": "Unmap every streaming mapping and free every DMA allocation before remove() returns, or use the dmam_* managed helpers.",
  "map-stack-memory": "Never DMA to or from the stack; use kmalloc() or page-allocator memory.",
  "map-invalid-memory": "Map only linear-map memory (kmalloc, page allocator); map vmalloc buffers page by page with dma_map_page or through an sg table.",
  "unmap-wrong-nents": "Pass dma_unmap_sg() and dma_sync_sg_*() the nents you passed to dma_map_sg() (sgt->orig_nents), not the returned count or any other number.",
  "cacheline-overlap": "Give every DMA_FROM_DEVICE/BIDIRECTIONAL buffer cache lines of its own (align and size it to dma_get_cache_alignment()), and never map a buffer that is still mapped.",
  "dma-mask-exceeded": "Allocate the buffer where the device can reach it (dma_alloc_coherent, or memory below the mask), or raise the mask with dma_set_mask() if the hardware allows.",
};

/** The driver to blame: the entry's owner, else the bound driver, else the running code. */
function driver_of(k: Kernel, dev: device, e: dma_debug_entry | null): string {
  return e?.owner || dev.driver?.name || k.exec.owner || dev.bus;
}

function entry_details(e: dma_debug_entry): Record<string, string | number | boolean> {
  return {
    dev_addr: dma_fmt_addr(e.dev_addr),
    phys: dma_fmt_addr(e.phys),
    size: e.size,
    direction: dma_dir_name(e.direction),
    type: e.type,
    domain: e.domain,
    ...(e.cpu_owned ? { cpu_owned: dma_debug_owner_text(e) } : {}),
    map_err_checked: e.map_err_checked,
  };
}

/**
 * dma_debug_report - add a DMA finding and print it as dma-debug does.
 * @kind: stable finding kind
 * @text: Linux-style text after "DMA-API: <driver> <device>: "
 * @e: the entry involved, if any (its history explains the finding)
 * @details: extra fields (they override the entry's)
 * @fix: the one-sentence fix, when the kind's usual one does not fit
 * Nothing happens while dma-debug is disabled; printing follows the knobs (debug-knobs.ts).
 */
export function dma_debug_report(
  k: Kernel,
  kind: FindingKind,
  dev: device,
  e: dma_debug_entry | null,
  text: string,
  details: Record<string, string | number | boolean> = {},
  history: readonly FindingHistoryEntry[] = e ? e.history : [],
  fix?: string,
): void {
  if (dma_debug_disabled(k)) return;
  const drv = driver_of(k, dev, e);
  const line = `${drv} ${dev.name}: ${text}`;
  if (dma_debug_count_error(k, drv)) {
    k.printk.log(KERN_ERR, line, "DMA-API: ");
    const first = history[0];
    if (first) k.printk.log(KERN_ERR, `Mapped at: ${dmesgStamp(first.timeNs)}${first.op} ${first.detail}`, "DMA-API: ");
  }
  k.findings.add({
    kind,
    severity: "error",
    timeNs: k.exec.now(),
    driver: drv,
    device: dev.name,
    message: `DMA-API: ${line}`,
    fix: fix ?? FIX[kind] ?? "Use the DMA API as documented.",
    details: { ...(e ? entry_details(e) : {}), ...details },
    history: dma_history_copy(history),
  });
}

/** Append a call to an entry's history. */
export function dma_debug_note(k: Kernel, e: dma_debug_entry, op: string, detail: string): void {
  dma_debug_entry_note(e, { timeNs: k.exec.now(), op, detail });
}

/** What a caller of debug_dma_add knows of a new entry (the rest dma-debug fills in). */
export type dma_debug_new_entry = Readonly<
  Pick<dma_debug_entry, "dev" | "type" | "dev_addr" | "phys" | "cpu_addr" | "size" | "direction" | "attrs" | "domain" | "sg_call_ents" | "sg_mapped_ents">
>;

/**
 * Linux's dma-debug listens for BUS_NOTIFY_UNBOUND_DRIVER; ours registers with the driver core
 * the first time anything is mapped or allocated (a leak needs a live entry, so this is never
 * too late). The core runs the hook after remove() and the devres releases.
 */
function dma_debug_hook_unbind(k: Kernel): void {
  const st = dma_state(k);
  if (st.unbindHooked) return;
  st.unbindHooked = true;
  on_driver_unbind((dev) => void dma_debug_device_unbind(dev));
}

/**
 * debug_dma_map_page / debug_dma_alloc_coherent: record a new live entry.
 * @op: the call; an sg segment (@seg >= 0) is noted as "op[seg/sg_call_ents]"
 * Hot path (every map, every sg segment): one entry, one history array and one note, whose
 * text is formatted only if someone reads it (debug-history.ts).
 */
export function debug_dma_add(k: Kernel, n: dma_debug_new_entry, op: string, seg = -1): DmaDebugEntry {
  const st = dma_state(k);
  const owner = k.exec.owner || n.dev.driver?.name || "";
  const e = new DmaDebugEntry(n.dev, n.type, n.dev_addr, n.phys, n.cpu_addr, n.size, n.direction, n.attrs, n.domain, n.sg_call_ents, n.sg_mapped_ents, owner, k.exec.now(), op, seg);
  debug_dma_insert(k, st, e, !dma_debug_disabled(k));
  return e;
}

/**
 * debug_dma_insert - the rest of debug_dma_add, for a caller that made the entry itself (the
 * sg path makes one per segment with what it asked once per call).
 * @checks: dma-debug is on (!dma_debug_disabled(k))
 */
export function debug_dma_insert(k: Kernel, st: DmaState, e: DmaDebugEntry, checks: boolean): void {
  if (!st.unbindHooked) dma_debug_hook_unbind(k);
  st.table.add(e);
  if (checks) {
    check_illegal_area(k, e);
    check_cacheline(k, e);
  }
  dma_debug_count_entries(k, st.table.total);
}

/**
 * check_for_illegal_area / check_for_stack for single and page mappings: the kernel image is
 * never a DMA buffer, nor is a kernel stack page. (dma_map_single reports a stack address
 * itself, from the address; dma_map_page has only the page.) sg segments: debug-sg.ts.
 */
function check_illegal_area(k: Kernel, e: dma_debug_entry): void {
  if (e.type !== "single" && e.type !== "page") return;
  const d = (): Record<string, string | number> => ({ phys: dma_fmt_addr(e.phys), size: e.size, direction: dma_dir_name(e.direction) });
  if (dma_debug_in_kernel_image(k, e.phys, e.size)) {
    dma_debug_report(k, "map-invalid-memory", e.dev, e, `device driver maps memory from kernel text or rodata [addr=0x${e.cpu_addr.toString(16)}] [len=${e.size}]`, d());
  }
  if (e.type === "page" && dma_debug_on_stack(k, e.phys, e.size)) {
    dma_debug_report(k, "map-stack-memory", e.dev, e, `device driver maps memory from stack [addr=0x${e.cpu_addr.toString(16)}]`, d());
  }
}

/** add_dma_entry's EEXIST: a second device-writable entry starting in an active cache line. */
function check_cacheline(k: Kernel, e: dma_debug_entry): void {
  const o = dma_debug_cacheline_insert(k, e);
  if (!o) return;
  const text = `cacheline tracking EEXIST, overlapping mappings aren't supported [cacheline=${dma_fmt_addr(o.line * o.lineSize)}] [device address=${dma_fmt_addr(e.dev_addr)}] [other mapping=${dma_fmt_addr(o.other.dev_addr)}+${o.other.size}]`;
  const history = [...o.other.history, ...e.history].sort((a, b) => a.timeNs - b.timeNs);
  dma_debug_report(k, "cacheline-overlap", e.dev, e, text, {
    cacheline: dma_fmt_addr(o.line * o.lineSize),
    cacheline_size: o.lineSize,
    overlapping: o.count,
    other_dev_addr: dma_fmt_addr(o.other.dev_addr),
    other_size: o.other.size,
    other_direction: dma_dir_name(o.other.direction),
    other_type: o.other.type,
  }, history);
}

/**
 * debug_dma_mapping_error: the driver checked @addr. Marks the first matching entry not yet
 * checked (the same address may be mapped twice without an IOMMU).
 */
export function debug_dma_mapping_error(k: Kernel, dev: device, addr: number): void {
  const table = dma_state(k).table;
  for (let i = 0, e = table.nthAt(dev, addr, 0); e !== null; e = table.nthAt(dev, addr, ++i)) {
    if (e.map_err_checked) continue;
    e.map_err_checked = true;
    dma_debug_note(k, e, "dma_mapping_error", "checked");
    return;
  }
}

/** check_unmap's "failed to check map error": reported once per entry. */
export function check_map_err(k: Kernel, e: dma_debug_entry): void {
  if (e.map_err_checked || e.map_err_reported) return;
  e.map_err_reported = true;
  dma_debug_report(k, "mapping-error-not-checked", e.dev, e, `device driver failed to check map error [device address=${dma_fmt_addr(e.dev_addr)}] [size=${e.size} bytes] [mapped as ${e.type}]`);
}

/** What an unmap or free call passed (the `ref` of check_unmap). */
export interface dma_debug_unmap_ref {
  readonly type: dma_debug_type;
  readonly size: number;
  readonly direction: dma_data_direction;
  /** For frees: the CPU address passed. */
  readonly cpu_addr?: vaddr_t;
}

/** check_unmap's "has not allocated" / "invalid DMA memory address" report. */
export function report_not_found(k: Kernel, dev: device, addr: number, ref: dma_debug_unmap_ref, op: string): void {
  const prev = dma_state(k).table.lastRemoved(dev, addr);
  const history = prev ? prev.history : [];
  const text =
    addr === DMA_MAPPING_ERROR
      ? `device driver tries to free an invalid DMA memory address`
      : `device driver tries to free DMA memory it has not allocated [device address=${dma_fmt_addr(addr)}] [size=${ref.size} bytes]`;
  const d = { dev_addr: dma_fmt_addr(addr), size: ref.size, direction: dma_dir_name(ref.direction), call: op, double_unmap: prev !== null };
  dma_debug_report(k, "unmap-not-mapped", dev, null, text, d, history);
}

/**
 * check_unmap for streaming unmaps: report every way the call differs from the map, then drop
 * the entry (as Linux does, even when something differed).
 */
export function debug_dma_unmap(k: Kernel, dev: device, addr: number, ref: dma_debug_unmap_ref, op: string): void {
  const table = dma_state(k).table;
  const e = table.findExact(dev, addr, ref);
  if (!e) {
    report_not_found(k, dev, addr, ref, op);
    return;
  }
  dma_debug_entry_note(e, note_unmap(k.exec.now(), op, ref.size, ref.direction));
  if (e.size !== ref.size || e.type !== ref.type || e.direction !== ref.direction) report_unmap_mismatch(k, dev, e, addr, ref);
  check_map_err(k, e);
  dma_debug_hand_over(e, 0, e.size, true);
  table.remove(e);
}

/** check_unmap's reports: every way the unmap differs from the map. */
function report_unmap_mismatch(k: Kernel, dev: device, e: dma_debug_entry, addr: number, ref: dma_debug_unmap_ref): void {
  const at = `[device address=${dma_fmt_addr(addr)}]`;
  if (e.size !== ref.size) {
    dma_debug_report(k, "unmap-wrong-size", dev, e, `device driver frees DMA memory with different size ${at} [map size=${e.size} bytes] [unmap size=${ref.size} bytes]`, { unmap_size: ref.size });
  }
  if (e.type !== ref.type) {
    dma_debug_report(k, "unmap-wrong-type", dev, e, `device driver frees DMA memory with wrong function ${at} [size=${e.size} bytes] [mapped as ${e.type}] [unmapped as ${ref.type}]`, { unmap_type: ref.type });
  }
  if (e.direction !== ref.direction) {
    dma_debug_report(k, "unmap-wrong-direction", dev, e, `device driver frees DMA memory with different direction ${at} [size=${e.size} bytes] [mapped with ${dma_dir_name(e.direction)}] [unmapped with ${dma_dir_name(ref.direction)}]`, { unmap_direction: dma_dir_name(ref.direction) });
  }
}

/**
 * check_unmap for dma_free_coherent / dma_free_noncoherent. Unlike a streaming unmap, a free
 * that does not match its allocation exactly frees nothing (the WARN says so): handing the
 * wrong size or address to the page allocator would corrupt it. The entry stays live, so the
 * memory is reported again as a leak at unbind.
 * Returns: the entry to free, or null.
 */
export function debug_dma_free(k: Kernel, dev: device, addr: number, ref: dma_debug_unmap_ref, op: string): dma_debug_entry | null {
  const table = dma_state(k).table;
  const e = table.findExact(dev, addr, ref);
  const at = `[device address=${dma_fmt_addr(addr)}]`;
  let bad = true;
  if (!e) {
    const byCpu = table.live(dev).find((x) => x.type === ref.type && x.cpu_addr === ref.cpu_addr);
    if (byCpu) {
      const text = `device driver frees DMA memory with different device address ${at} [size=${ref.size} bytes] [allocated device address=${dma_fmt_addr(byCpu.dev_addr)}]`;
      dma_debug_report(k, "free-coherent-mismatch", dev, byCpu, text, { free_dev_addr: dma_fmt_addr(addr) });
    } else {
      report_not_found(k, dev, addr, ref, op);
    }
  } else if (e.type !== ref.type) {
    dma_debug_report(k, "unmap-wrong-type", dev, e, `device driver frees DMA memory with wrong function ${at} [size=${e.size} bytes] [mapped as ${e.type}] [unmapped as ${ref.type}]`, { unmap_type: ref.type });
  } else if (e.size !== ref.size || e.cpu_addr !== ref.cpu_addr || e.direction !== ref.direction) {
    const parts = [`device driver frees DMA memory with different ${e.size !== ref.size ? "size" : e.cpu_addr !== ref.cpu_addr ? "CPU address" : "direction"} ${at}`];
    parts.push(`[alloc size=${e.size} bytes] [free size=${ref.size} bytes]`);
    parts.push(`[cpu alloc address=0x${e.cpu_addr.toString(16)}] [cpu free address=0x${(ref.cpu_addr ?? 0).toString(16)}]`);
    dma_debug_report(k, "free-coherent-mismatch", dev, e, parts.join(" "), { free_size: ref.size, free_cpu_addr: `0x${(ref.cpu_addr ?? 0).toString(16)}` });
  } else {
    bad = false;
  }
  if (bad) {
    k.warnings++;
    k.printk.log(KERN_WARNING, `WARNING: ${op}: not freeing DMA memory that does not match its allocation`, `${dev.name}: `);
    return null;
  }
  dma_debug_entry_note(e!, note_free(k.exec.now(), op, ref.size));
  table.remove(e!);
  return e;
}

/**
 * check_sync: a sync of [addr, addr+size) must lie inside one live mapping of @dev and use its
 * direction. The entry's domain follows the sync either way.
 */
export function debug_dma_sync(k: Kernel, dev: device, addr: number, size: number, dir: dma_data_direction, to_cpu: boolean, op: string): void {
  const e = dma_state(k).table.findContaining(dev, addr, size, dir);
  if (!e) {
    const d = { dev_addr: dma_fmt_addr(addr), size, direction: dma_dir_name(dir), call: op };
    dma_debug_report(k, "sync-not-mapped", dev, null, `device driver tries to sync DMA memory it has not allocated [device address=${dma_fmt_addr(addr)}] [size=${size} bytes]`, d);
    return;
  }
  dma_debug_entry_note(e, note_sync(k.exec.now(), op, addr, size, dir));
  const end = addr - e.dev_addr + size;
  if (end > e.size) {
    const at = `[device address=${dma_fmt_addr(addr)}]`;
    dma_debug_report(k, "sync-out-of-range", dev, e, `device driver syncs DMA memory outside allocated range ${at} [allocation size=${e.size} bytes] [sync offset+size=${end}]`, { sync_addr: dma_fmt_addr(addr), sync_size: size });
  }
  check_sync_direction(k, e, addr, size, dir, to_cpu);
  check_map_err(k, e);
  dma_debug_hand_over(e, addr - e.dev_addr, addr - e.dev_addr + size, to_cpu);
}

function check_sync_direction(k: Kernel, e: dma_debug_entry, addr: number, size: number, dir: dma_data_direction, to_cpu: boolean): void {
  if (e.direction === DMA_BIDIRECTIONAL) return;
  const bad = dir !== e.direction || (to_cpu && e.direction === DMA_TO_DEVICE && dir !== DMA_TO_DEVICE) || (!to_cpu && e.direction === DMA_FROM_DEVICE && dir !== DMA_FROM_DEVICE);
  if (!bad) return; // the usual case: no text to build
  const at = `[device address=${dma_fmt_addr(addr)}] [size=${size} bytes]`;
  const d = { sync_direction: dma_dir_name(dir) };
  if (dir !== e.direction) {
    dma_debug_report(k, "sync-wrong-direction", e.dev, e, `device driver syncs DMA memory with different direction ${at} [mapped with ${dma_dir_name(e.direction)}] [synced with ${dma_dir_name(dir)}]`, d);
  }
  if (to_cpu && e.direction === DMA_TO_DEVICE && dir !== DMA_TO_DEVICE) {
    dma_debug_report(k, "sync-wrong-direction", e.dev, e, `device driver syncs device read-only DMA memory for cpu ${at} [mapped with ${dma_dir_name(e.direction)}] [synced with ${dma_dir_name(dir)}]`, d);
  }
  if (!to_cpu && e.direction === DMA_FROM_DEVICE && dir !== DMA_FROM_DEVICE) {
    dma_debug_report(k, "sync-wrong-direction", e.dev, e, `device driver syncs device write-only DMA memory to device ${at} [mapped with ${dma_dir_name(e.direction)}] [synced with ${dma_dir_name(dir)}]`, d);
  }
}

/**
 * dma_debug_device_unbind - the driver of @dev is gone: report every mapping and allocation it
 * left behind (one `mapping-leak` finding each). Runs from the driver core's unbind hook, after
 * remove() and the device's devres releases, as Linux's bus notifier does; calling it again
 * (or directly) is harmless. Entries stay in the table (the memory really is leaked) but are
 * reported only once.
 * Context: process.
 * Returns: the number of leaks newly reported.
 */
export function dma_debug_device_unbind(dev: device): number {
  const k = current_kernel();
  const leaked = dma_state(k).table.live(dev).filter((e) => !e.leak_reported);
  for (const e of leaked) {
    e.leak_reported = true;
    const text = `device driver has pending DMA allocations while released from device [count=${leaked.length}] [device address=${dma_fmt_addr(e.dev_addr)}] [size=${e.size} bytes] [mapped with ${dma_dir_name(e.direction)}] [mapped as ${e.type}]`;
    dma_debug_report(k, "mapping-leak", dev, e, text, { count: leaked.length });
  }
  return leaked.length;
}

/**
 * dma_debug_live - the live mappings and allocations of @dev, or of every device.
 * Context: any. Returns: the entries (do not modify them).
 */
export function dma_debug_live(dev?: device): readonly dma_debug_entry[] {
  return dma_state(current_kernel()).table.live(dev);
}

/** debug_dma_dump_mappings - print the live entries of @dev (or all) as the debugfs dump does. */
export function debug_dma_dump_mappings(dev?: device): void {
  const k = current_kernel();
  dma_state(k).table.live(dev).forEach((e, idx) => {
    const check = e.map_err_checked ? "checked" : "not checked";
    const text = `${e.type} idx ${idx} P=0x${e.phys.toString(16)} D=0x${e.dev_addr.toString(16)} L=0x${e.size.toString(16)} ${dma_dir_name(e.direction)} ${e.domain}${e.cpu_owned ? `[${dma_debug_owner_text(e)}]` : ""} ${check}`;
    k.printk.log(KERN_INFO, `${driver_of(k, e.dev, e)} ${e.dev.name}: ${text}`, "DMA-API: ");
  });
}
