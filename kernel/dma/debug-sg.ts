/**
 * dma-debug for scatter-gather mappings (§7.1, §7.2; debug.c debug_dma_map_sg,
 * debug_dma_unmap_sg, debug_dma_sync_sg_*).
 *
 * As in Linux, each mapped segment is its own entry of type "sg" that remembers the nents the
 * driver passed (sg_call_ents) and the count dma_map_sg returned (sg_mapped_ents). Unmap and
 * sync walk the list the driver passes, look each segment up by its DMA address and compare.
 * One difference on purpose: Linux prints a line per bad segment (then goes quiet after the
 * first error); here one misused call gives at most one finding of each kind, whose details say
 * how many segments were affected, so "one mistake, one finding" holds for sg calls too.
 * Another: Linux's sync of a list that is not mapped at all checks nothing (its walk stops at
 * the first segment's mapped count, 0); here it is `sync-not-mapped`.
 *
 * With dma-debug off and nobody listening to the table, a call is recorded whole
 * (debug-sg-whole.ts).
 */

import type { Kernel } from "../core/kernel.ts";
import type { FindingKind } from "../core/findings.ts";
import type { device } from "../include/device.ts";
import { PAGE_SIZE, type vaddr_t } from "../include/types.ts";
import { PAGE_OFFSET } from "../mm/layout.ts";
import { kernel_image_base } from "./debug-areas.ts";
import { kstack_pages } from "../lib/kstack.ts";
import { KERNEL_RESERVED_BYTES } from "../mm/page-alloc.ts";
import { sg_next, type scatterlist } from "../lib/scatterlist.ts";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_dir_name, dma_fmt_addr, type dma_data_direction } from "./defs.ts";
import { DmaDebugEntry, dma_debug_entry_note } from "./debug-entry.ts";
import { DmaDebugRun } from "./debug-run.ts";
import { dma_debug_hand_over } from "./debug-owner.ts";
import { check_map_err, debug_dma_insert, dma_debug_report, report_not_found, type dma_debug_entry } from "./debug.ts";
import { note_sg_sync, note_sg_unmap, type DmaHistoryNote } from "./debug-history.ts";
import { sg_whole_add, sg_whole_records, sg_whole_sync, sg_whole_unmap } from "./debug-sg-whole.ts";
import { dma_debug_count_entries_range, dma_debug_disabled } from "./debug-knobs.ts";
import { dma_get_max_seg_size, dma_get_seg_boundary } from "./mask.ts";
import { dma_state } from "./state.ts";

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Reports at most one finding of each kind for one API call. */
class CallReporter {
  /** Keys reported so far; made on the first report (a correct call allocates no set). */
  private seen: Set<string> | null = null;
  constructor(
    readonly k: Kernel,
    readonly dev: device,
  ) {}

  /** Report unless a finding with this key was already reported for this call. */
  once(key: FindingKind | string, report: () => void): void {
    this.seen ??= new Set<string>();
    if (this.seen.has(key)) return;
    this.seen.add(key);
    report();
  }
}

/** The walk of the first @n entries of a list, without allocating an iterator. */
function nth_or_null(sg: scatterlist | null, i: number, n: number): scatterlist | null {
  return sg && i + 1 < n ? sg_next(sg) : null;
}

const SEG_FIX = {
  long: "Build sg lists whose entries respect dma_get_max_seg_size() (sg_alloc_table_from_pages_segment with that limit), or have the driver call dma_set_max_seg_size() with what the hardware really takes.",
  boundary: "Split sg entries so none crosses the device's segment boundary (dma_get_seg_boundary()), or set the boundary the hardware really has with dma_set_seg_boundary().",
};

/**
 * check_sg_segment (CONFIG_DMA_API_DEBUG_SG): limits the device declared (@max:
 * dma_get_max_seg_size, @boundary: dma_get_seg_boundary, asked once per call).
 */
function check_sg_segment(r: CallReporter, sg: scatterlist, max: number, boundary: number): void {
  if (sg.length > max) {
    r.once("seg-long", () =>
      dma_debug_report(r.k, "warn", r.dev, null, `mapping sg segment longer than device claims to support [len=${sg.length}] [max=${max}]`, { len: sg.length, max }, [], SEG_FIX.long),
    );
  }
  if (boundary >= Number.MAX_SAFE_INTEGER || sg.dma_length === 0) return;
  const start = sg.dma_address;
  const end = start + sg.dma_length - 1;
  const span = boundary + 1;
  if (Math.floor(start / span) !== Math.floor(end / span)) {
    r.once("seg-boundary", () =>
      dma_debug_report(r.k, "warn", r.dev, null, `mapping sg segment across boundary [start=${dma_fmt_addr(start)}] [end=${dma_fmt_addr(end)}] [boundary=${dma_fmt_addr(boundary)}]`, { start: dma_fmt_addr(start), end: dma_fmt_addr(end), boundary: dma_fmt_addr(boundary) }, [], SEG_FIX.boundary),
    );
  }
}

/** dma_debug_on_stack with the stack-page set already fetched (once per call). */
function on_stack_pages(stack: ReadonlySet<number>, phys: number, len: number): boolean {
  const first = Math.floor(phys / PAGE_SIZE);
  const last = Math.floor((phys + Math.max(len, 1) - 1) / PAGE_SIZE);
  for (let pfn = first; pfn <= last; pfn++) if (stack.has(pfn)) return true;
  return false;
}

/**
 * check_for_stack and check_for_illegal_area on one CPU entry. @image: the kernel image's
 * first byte (kernel_image_base), asked once per call rather than once per entry.
 */
function check_cpu_entry(r: CallReporter, sg: scatterlist, dir: dma_data_direction, image: number, stack: ReadonlySet<number> | undefined): void {
  if (!sg.page) return;
  const phys = sg.page.pfn * PAGE_SIZE + sg.offset;
  const on_stack = stack !== undefined && stack.size !== 0 && on_stack_pages(stack, phys, sg.length);
  // dma_debug_in_kernel_image with the base already known
  const in_image = phys < image + KERNEL_RESERVED_BYTES && phys + Math.max(sg.length, 1) > image;
  if (!on_stack && !in_image) return; // the usual case: no text to build
  const d = { phys: dma_fmt_addr(phys), size: sg.length, direction: dma_dir_name(dir) };
  if (on_stack) {
    r.once("map-stack-memory", () => dma_debug_report(r.k, "map-stack-memory", r.dev, null, `device driver maps memory from stack [addr=${hex(PAGE_OFFSET + phys)}] [sg entry]`, d));
  }
  if (in_image) {
    r.once("map-invalid-memory", () => dma_debug_report(r.k, "map-invalid-memory", r.dev, null, `device driver maps memory from kernel text or rodata [addr=${hex(PAGE_OFFSET + phys)}] [len=${sg.length}]`, d));
  }
}

/**
 * debug_dma_map_sg - record a successful dma_map_sg: CPU-side checks on all @nents entries,
 * then one entry per mapped segment (with the device's segment limits checked). With
 * dma-debug off and no listener, one entry for the whole call.
 * @bytes: the sum of the mapped segments' lengths
 * @direct: mapped by the direct path (no IOMMU pieces staged for the sanitizer): a
 * DMA_TO_DEVICE call's entries may then go to the table as one run (DmaDebugTable.addRun),
 * which nothing checked at insert time can tell from one insert per segment (neither the
 * cache-line tracker, which ignores DMA_TO_DEVICE, nor the illegal-area check, done above).
 * Context: any.
 */
export function debug_dma_map_sg(k: Kernel, dev: device, sgl: scatterlist, nents: number, mapped: number, dir: dma_data_direction, attrs: number, op: string, bytes: number, direct = false): void {
  if (sg_whole_records(k)) {
    sg_whole_add(k, dev, sgl, nents, mapped, dir, attrs, op, bytes);
    return;
  }
  const st = dma_state(k);
  if (direct && dir === DMA_TO_DEVICE && st.unbindHooked && mapped === nents && st.sgRuns) {
    map_sg_run(k, dev, sgl, nents, dir, attrs, op);
    return;
  }
  const r = new CallReporter(k, dev);
  if (!dma_debug_disabled(k)) {
    const image = kernel_image_base(k);
    const stack = kstack_pages(k);
    for (let i = 0, sg: scatterlist | null = sgl; sg && i < nents; sg = nth_or_null(sg, i, nents), i++) check_cpu_entry(r, sg, dir, image, stack);
  }
  // What debug_dma_add asks per entry, asked once: nothing in this loop changes it.
  const checks = !dma_debug_disabled(k);
  const owner = k.exec.owner || dev.driver?.name || "";
  const max = dma_get_max_seg_size(dev);
  const boundary = dma_get_seg_boundary(dev);
  // nothing here charges CPU time (reports and printk do not): one time for every segment
  const now = k.exec.now();
  let prev: DmaDebugEntry | null = null;
  for (let i = 0, sg: scatterlist | null = sgl; sg && i < mapped; sg = nth_or_null(sg, i, mapped), i++) {
    if (checks) check_sg_segment(r, sg, max, boundary);
    const phys = sg.page ? sg.page.pfn * PAGE_SIZE + sg.offset : 0;
    const e = new DmaDebugEntry(dev, "sg", sg.dma_address, phys, (PAGE_OFFSET + phys) as vaddr_t, sg.dma_length, dir, attrs, "DEVICE", nents, mapped, owner, now, op, i);
    // the segments in order: a device walking the list finds the next entry from the last one
    if (prev !== null) prev.next_seg = e;
    prev = e;
    debug_dma_insert(k, st, e, checks);
  }
}

/**
 * debug_dma_map_sg of a whole direct DMA_TO_DEVICE call (every entry mapped) as one run of the
 * table (DmaDebugTable.addRun), which nothing checked at insert time can tell from one insert
 * per segment (neither the cache-line tracker, which ignores DMA_TO_DEVICE, nor the
 * illegal-area check, done here). One walk of the list: the entry checks only test whether
 * anything is to be reported; if so, the reporting checks run after the walk, in the order
 * (all CPU entries, then each segment) and with the texts of the general path.
 */
function map_sg_run(k: Kernel, dev: device, sgl: scatterlist, nents: number, dir: dma_data_direction, attrs: number, op: string): void {
  const st = dma_state(k);
  const checks = !dma_debug_disabled(k);
  const owner = k.exec.owner || dev.driver?.name || "";
  const max = dma_get_max_seg_size(dev);
  const boundary = dma_get_seg_boundary(dev);
  const image = checks ? kernel_image_base(k) : 0;
  const imageEnd = image + KERNEL_RESERVED_BYTES;
  const stack = checks ? kstack_pages(k) : undefined;
  const anyStack = stack !== undefined && stack.size !== 0;
  const bounded = boundary < Number.MAX_SAFE_INTEGER;
  const span = boundary + 1;
  // nothing here charges CPU time (reports and printk do not): one time for every segment
  const now = k.exec.now();
  let flagged = false;
  const run = new DmaDebugRun({ dev, dir, attrs, nents, owner, timeNs: now, op }, nents);
  const runAddr = run.addr;
  const runSize = run.size;
  const runPhys = run.phys;
  for (let i = 0, sg: scatterlist | null = sgl; sg && i < nents; sg = nth_or_null(sg, i, nents), i++) {
    const page = sg.page;
    const phys = page ? page.pfn * PAGE_SIZE + sg.offset : 0;
    const len = sg.length;
    if (checks && !flagged) {
      // check_cpu_entry and check_sg_segment would report nothing (their tests, without texts)
      if (page && ((phys < imageEnd && phys + Math.max(len, 1) > image) || (anyStack && on_stack_pages(stack!, phys, len)))) flagged = true;
      else if (len > max) flagged = true;
      else if (bounded && sg.dma_length !== 0) {
        const start = sg.dma_address;
        if (Math.floor(start / span) !== Math.floor((start + sg.dma_length - 1) / span)) flagged = true;
      }
    }
    runAddr[i] = sg.dma_address;
    runSize[i] = sg.dma_length;
    runPhys[i] = phys;
  }
  if (flagged) {
    const r = new CallReporter(k, dev);
    for (let i = 0, sg: scatterlist | null = sgl; sg && i < nents; sg = nth_or_null(sg, i, nents), i++) check_cpu_entry(r, sg, dir, image, stack);
    for (let i = 0, sg: scatterlist | null = sgl; sg && i < nents; sg = nth_or_null(sg, i, nents), i++) check_sg_segment(r, sg, max, boundary);
  }
  const before = st.table.total;
  st.table.addRun(dev, run);
  // what debug_dma_insert's count would have said after each entry
  dma_debug_count_entries_range(k, before, st.table.total);
}

/** The nents comparison of check_unmap / check_sync. */
function check_nents(r: CallReporter, e: dma_debug_entry, nelems: number, verb: "frees" | "syncs"): void {
  if (e.type !== "sg" || e.sg_call_ents === nelems) return;
  const text = `device driver ${verb} DMA sg list with different entry count [map count=${e.sg_call_ents}] [${verb === "frees" ? "unmap" : "sync"} count=${nelems}]`;
  r.once("unmap-wrong-nents", () => dma_debug_report(r.k, "unmap-wrong-nents", r.dev, e, text, { map_nents: e.sg_call_ents ?? 0, mapped_count: e.sg_mapped_ents ?? 0, call_nents: nelems }));
}

/**
 * The unmap note of the last segment: the segments of one call usually get identical notes
 * (same time, call, nents, size and direction), and notes are immutable, so they share one.
 */
let lastUnmapNote: DmaHistoryNote | null = null;

function sg_unmap_note(timeNs: number, op: string, nelems: number, size: number, dir: dma_data_direction): DmaHistoryNote {
  const n = lastUnmapNote;
  if (n !== null && n.timeNs === timeNs && n.sameSgUnmap(op, nelems, size, dir)) return n;
  return (lastUnmapNote = note_sg_unmap(timeNs, op, nelems, size, dir));
}

/** check_unmap for one segment: every difference from the map, then drop the entry. */
function unmap_segment(r: CallReporter, e: dma_debug_entry, sg: scatterlist, nelems: number, dir: dma_data_direction, op: string, now: number): void {
  dma_debug_entry_note(e, sg_unmap_note(now, op, nelems, sg.dma_length, dir));
  if (e.size !== sg.dma_length || e.type !== "sg" || e.direction !== dir) report_segment_mismatch(r, e, sg, dir);
  check_nents(r, e, nelems, "frees");
  check_map_err(r.k, e);
  dma_debug_hand_over(e, 0, e.size, true);
  dma_state(r.k).table.remove(e);
}

/** unmap_segment's reports: how the segment's unmap differs from its map. */
function report_segment_mismatch(r: CallReporter, e: dma_debug_entry, sg: scatterlist, dir: dma_data_direction): void {
  const at = `[device address=${dma_fmt_addr(e.dev_addr)}]`;
  if (e.size !== sg.dma_length) {
    r.once("unmap-wrong-size", () => dma_debug_report(r.k, "unmap-wrong-size", r.dev, e, `device driver frees DMA memory with different size ${at} [map size=${e.size} bytes] [unmap size=${sg.dma_length} bytes]`, { unmap_size: sg.dma_length }));
  }
  if (e.type !== "sg") {
    r.once("unmap-wrong-type", () => dma_debug_report(r.k, "unmap-wrong-type", r.dev, e, `device driver frees DMA memory with wrong function ${at} [size=${e.size} bytes] [mapped as ${e.type}] [unmapped as sg]`, { unmap_type: "sg" }));
  }
  if (e.direction !== dir) {
    r.once("unmap-wrong-direction", () => dma_debug_report(r.k, "unmap-wrong-direction", r.dev, e, `device driver frees DMA memory with different direction ${at} [size=${e.size} bytes] [mapped with ${dma_dir_name(e.direction)}] [unmapped with ${dma_dir_name(dir)}]`, { unmap_direction: dma_dir_name(dir) }));
  }
}

/**
 * debug_dma_unmap_sg - check a dma_unmap_sg of @nelems entries and drop their entries. As in
 * Linux the walk stops after the count the first segment was mapped with, so a too-large
 * nents is reported (unmap-wrong-nents) rather than read past the mapped segments.
 * Context: any.
 */
export function debug_dma_unmap_sg(k: Kernel, dev: device, sgl: scatterlist, nelems: number, dir: dma_data_direction, op: string): void {
  const table = dma_state(k).table;
  if (dma_debug_disabled(k) && sg_whole_unmap(k, dev, sgl, nelems, dir, op)) return;
  const now = k.exec.now(); // nothing here charges CPU time: one time for every segment
  const run = table.soleRun(dev);
  if (run !== null && unmaps_run(run, sgl, nelems, dir)) {
    // what the look-ups below would find: the run's segments, in order (DmaDebugTable.soleRun).
    // unmaps_run found every segment's size, type, direction and nents as mapped, and sg
    // entries need no dma_mapping_error: of unmap_segment only the note and the hand-over
    // remain, which the run keeps for its entries (DmaDebugRun.entryAt).
    table.removeRun(dev, run, now, op, nelems);
    return;
  }
  const r = new CallReporter(k, dev);
  const ref = { type: "sg" as const, size: 0, direction: dir };
  let mapped = 0;
  for (let i = 0, sg: scatterlist | null = sgl; sg && i < nelems; sg = nth_or_null(sg, i, nelems), i++) {
    if (mapped && i >= mapped) break;
    ref.size = sg.dma_length;
    const e = table.findExact(dev, sg.dma_address, ref);
    if (i === 0) mapped = e?.sg_mapped_ents ?? (e ? 1 : 0);
    if (!e) {
      r.once("unmap-not-mapped", () => report_not_found(k, dev, sg!.dma_address, { type: "sg", size: sg!.dma_length, direction: dir }, op));
      continue;
    }
    unmap_segment(r, e, sg, nelems, dir, op, now);
  }
}

/**
 * Does an unmap of @nelems entries from @sgl with @dir take exactly @run's live entries, each
 * matching its segment's address, length and direction, and the nents it was mapped with?
 */
function unmaps_run(run: DmaDebugRun, sgl: scatterlist, nelems: number, dir: dma_data_direction): boolean {
  const n = run.n;
  if (run.liveCount !== n || n === 0 || run.call.nents !== nelems || run.call.dir !== dir) return false;
  const addr = run.addr;
  const size = run.size;
  let sg: scatterlist | null = sgl;
  for (let i = 0; i < n; i++) {
    if (sg === null || sg.dma_address !== addr[i] || sg.dma_length !== size[i]) return false;
    sg = nth_or_null(sg, i, nelems);
  }
  return true;
}

function check_sync_direction(r: CallReporter, e: dma_debug_entry, dir: dma_data_direction, to_cpu: boolean): void {
  if (e.direction === DMA_BIDIRECTIONAL) return;
  const bad =
    dir !== e.direction
      ? "with different direction"
      : to_cpu && e.direction === DMA_TO_DEVICE && dir !== DMA_TO_DEVICE
        ? "device read-only DMA memory for cpu"
        : !to_cpu && e.direction === DMA_FROM_DEVICE && dir !== DMA_FROM_DEVICE
          ? "device write-only DMA memory to device"
          : null;
  if (!bad) return;
  const text = `device driver syncs ${bad.startsWith("with") ? `DMA memory ${bad}` : bad} [device address=${dma_fmt_addr(e.dev_addr)}] [size=${e.size} bytes] [mapped with ${dma_dir_name(e.direction)}] [synced with ${dma_dir_name(dir)}]`;
  r.once("sync-wrong-direction", () => dma_debug_report(r.k, "sync-wrong-direction", e.dev, e, text, { sync_direction: dma_dir_name(dir) }));
}

/** check_sync for one segment. */
function sync_segment(r: CallReporter, sg: scatterlist, nelems: number, dir: dma_data_direction, to_cpu: boolean, op: string): void {
  const e = dma_state(r.k).table.findContaining(r.dev, sg.dma_address, sg.dma_length, dir);
  if (!e) {
    const at = `[device address=${dma_fmt_addr(sg.dma_address)}]`;
    const d = { dev_addr: dma_fmt_addr(sg.dma_address), size: sg.dma_length, direction: dma_dir_name(dir), call: op };
    r.once("sync-not-mapped", () => dma_debug_report(r.k, "sync-not-mapped", r.dev, null, `device driver tries to sync DMA memory it has not allocated ${at} [size=${sg.dma_length} bytes]`, d));
    return;
  }
  dma_debug_entry_note(e, note_sg_sync(r.k.exec.now(), op, nelems, sg.dma_address, sg.dma_length, dir));
  const end = sg.dma_address - e.dev_addr + sg.dma_length;
  if (end > e.size) {
    const at = `[device address=${dma_fmt_addr(sg.dma_address)}]`;
    r.once("sync-out-of-range", () => dma_debug_report(r.k, "sync-out-of-range", r.dev, e, `device driver syncs DMA memory outside allocated range ${at} [allocation size=${e.size} bytes] [sync offset+size=${end}]`, { sync_addr: dma_fmt_addr(sg.dma_address), sync_size: sg.dma_length }));
  }
  check_sync_direction(r, e, dir, to_cpu);
  check_nents(r, e, nelems, "syncs");
  check_map_err(r.k, e);
  const off = sg.dma_address - e.dev_addr;
  dma_debug_hand_over(e, off, off + sg.dma_length, to_cpu);
}

/**
 * debug_dma_sync_sg - check a dma_sync_sg_for_cpu / _for_device of @nelems entries and move
 * the segments' ownership. Context: any.
 */
export function debug_dma_sync_sg(k: Kernel, dev: device, sgl: scatterlist, nelems: number, dir: dma_data_direction, to_cpu: boolean, op: string): void {
  if (dma_debug_disabled(k) && sg_whole_sync(k, dev, sgl, nelems, dir, to_cpu, op)) return;
  const r = new CallReporter(k, dev);
  const table = dma_state(k).table;
  let mapped = 0;
  for (let i = 0, sg: scatterlist | null = sgl; sg && i < nelems; sg = nth_or_null(sg, i, nelems), i++) {
    if (i === 0) {
      const e = table.findExact(dev, sg.dma_address, { type: "sg", size: sg.dma_length, direction: dir });
      mapped = e ? (e.sg_mapped_ents ?? 1) : nelems;
    }
    if (i >= mapped) break;
    sync_segment(r, sg, nelems, dir, to_cpu, op);
  }
}
