/**
 * The sanitizer's findings: one per (kind, mapping, access, episode), each with the mapping,
 * the bytes, the history and the fix (formatting in report.ts).
 *
 * Episodes: a cause counts once per ownership epoch of its mapping (the length of the mapping's
 * history: every access between two DMA API calls is one operation); stale-cpu-read and
 * lost-device-write once per device write (however many loads or lines show it);
 * stale-device-read once per epoch (once per line for memory no mapping covers);
 * device-access-unmapped once per dead mapping, or per page of memory never mapped.
 */

import type { Kernel } from "../../core/kernel.ts";
import type { FindingKind, Severity } from "../../core/findings.ts";
import { dmesgStamp } from "../../core/printk.ts";
import type { device } from "../../include/device.ts";
import { DMA_TO_DEVICE, dma_fmt_addr } from "../defs.ts";
import type { dma_debug_entry } from "../debug-entry.ts";
import { dma_debug_owned_part } from "../debug-owner.ts";
import * as R from "./report.ts";
import { SAN_LINE } from "./shadow.ts";

/** Stale bytes a CPU access returned, collected line by line until the access ends. */
export interface san_stale_read {
  /** Some stale episode in `run` has not been reported yet. */
  fresh: boolean;
  readonly run: R.ByteRun;
  e: dma_debug_entry | null;
  device: string;
  wroteNs: number;
}

/** What the CPU did to a device-owned mapping (which fix a lost write calls for). */
const MISUSE_INSIDE = 1;
const MISUSE_SHARED = 2;

type Details = Record<string, string | number | boolean>;

export class SanFindings {
  /** Findings made so far. */
  count = 0;
  private readonly seen = new WeakMap<object, Set<string>>();
  private readonly misuse = new WeakMap<dma_debug_entry, number>();
  private readonly run = new R.ByteRun();

  constructor(
    private readonly k: Kernel,
    /** The granule a device-written buffer must not share (for the message). */
    private readonly granule: number,
  ) {}

  /** First time for this (kind, object, access, episode)? Remembers it. */
  first(kind: FindingKind, obj: object, op: string, episode: number): boolean {
    let s = this.seen.get(obj);
    if (!s) this.seen.set(obj, (s = new Set()));
    const key = `${kind}|${op}|${episode}`;
    if (s.has(key)) return false;
    s.add(key);
    return true;
  }

  private emit(kind: FindingKind, severity: Severity, dev: device | null, devName: string, e: dma_debug_entry | null, text: string, fix: string, details: Details): void {
    this.count++;
    R.san_emit(this.k, { kind, severity, dev, devName, e, text, fix, details });
  }

  /** The CPU touched bytes [from, to) of a mapping the device owns. */
  cpuAccess(e: dma_debug_entry, from: number, to: number, isWrite: boolean): void {
    const op = isWrite ? "write" : "read";
    if (isWrite) this.misuse.set(e, (this.misuse.get(e) ?? 0) | MISUSE_INSIDE);
    if (!this.first("cpu-access-device-owned", e, op, e.history.length)) return;
    this.run.reset();
    this.run.range(from, to);
    const severity: Severity = !isWrite && e.direction === DMA_TO_DEVICE ? "warning" : "error";
    const text = `CPU ${op} of DMA memory the device owns ${R.san_offsets(this.run)} ${R.san_mapping_text(e)}`;
    const fix = e.cpu_owned ? R.san_fix_cpu_access_partial(e, from, to, isWrite) : R.san_fix_cpu_access(e, isWrite);
    this.emit("cpu-access-device-owned", severity, e.dev, e.dev.name, e, text, fix, { access: op, cpu: this.k.exec.cpu, ...R.san_byte_details(this.run, false) });
  }

  /**
   * The CPU stored next to a device-written buffer, in a granule they share; @inside: into the
   * buffer's own bytes the CPU owns after a partial sync, next to bytes the device still owns.
   */
  sharedLine(e: dma_debug_entry, phys: number, len: number, inside = false): void {
    this.misuse.set(e, (this.misuse.get(e) ?? 0) | MISUSE_SHARED);
    if (!this.first("cpu-access-device-owned", e, "shared-line", e.history.length)) return;
    const g = this.granule;
    const where = inside ? "into the part of the buffer the CPU owns" : "outside the buffer";
    const text = `CPU write at ${dma_fmt_addr(phys)} (${len} bytes, ${where}) dirties a cache line the device owns part of [granule=${g}] ${R.san_mapping_text(e)}`;
    const details = { access: "write", shared_line: true, cpu: this.k.exec.cpu, write_phys: dma_fmt_addr(phys), write_len: len, granule: g };
    this.emit("cpu-access-device-owned", "error", e.dev, e.dev.name, e, text, R.san_fix_shared_line(e, inside), details);
  }

  /** The device touched bytes [from, to) of a mapping the CPU owns. */
  deviceCpuOwned(e: dma_debug_entry, from: number, to: number, isWrite: boolean): void {
    const op = isWrite ? "write" : "read";
    if (!this.first("device-access-cpu-owned", e, op, e.history.length)) return;
    this.run.reset();
    this.run.range(from, to);
    const text = `device ${op} of DMA memory the CPU owns ${R.san_offsets(this.run)} ${R.san_mapping_text(e)}`;
    this.emit("device-access-cpu-owned", "error", e.dev, e.dev.name, e, text, R.san_fix_device_cpu_owned(e), { access: op, ...R.san_byte_details(this.run, false) });
  }

  /** The device touched `len` bytes from `addr` that nothing covers; `grave` is a dead mapping there. */
  unmapped(dev: device, addr: number, len: number, isWrite: boolean, grave: dma_debug_entry | null): void {
    const op = isWrite ? "write" : "read";
    if (!this.first("device-access-unmapped", grave ?? dev, grave ? op : `${op}@${Math.floor(addr / 4096)}`, 0)) return;
    const last = grave?.history[grave.history.length - 1];
    const gone = last ? ` [unmapped by ${last.op} at ${dmesgStamp(last.timeNs).trim()}]` : "";
    const text = `device ${op} of ${len} byte(s) from bus address ${dma_fmt_addr(addr)} that no live mapping of the device covers${gone}`;
    const details = { access: op, bus_addr: dma_fmt_addr(addr), len, after_unmap: grave !== null };
    this.emit("device-access-unmapped", "error", dev, dev.name, grave, text, R.san_fix_unmapped(grave !== null), details);
  }

  /** The CPU access that just ended returned stale bytes (collected in `st`). */
  staleCpuRead(st: san_stale_read): void {
    const { e, device, wroteNs, run } = st;
    const fresh = st.fresh;
    st.fresh = false;
    if (fresh) {
      const where = e ? `${R.san_offsets(run)} ${R.san_mapping_text(e)}` : `[bus address=${dma_fmt_addr(run.start)}]`;
      const text = `CPU read returned stale data: ${run.count} byte(s) the device wrote at ${dmesgStamp(wroteNs).trim()} came from a cache line filled before ${where}`;
      const details = { access: "read", cpu: this.k.exec.cpu, device_wrote_ns: wroteNs, ...R.san_byte_details(run, true) };
      this.emit("stale-cpu-read", "error", e?.dev ?? null, device, e, text, this.staleReadFix(e, run), details);
    }
    run.reset();
  }

  /** The fix for a stale read: a partial sync that missed the bytes, or no sync at all. */
  private staleReadFix(e: dma_debug_entry | null, run: R.ByteRun): string {
    const unsynced = e !== null && e.cpu_owned && !dma_debug_owned_part(e, run.start, run.end + 1, true, { lo: 0, hi: 0 });
    return unsynced ? R.san_fix_cpu_access_partial(e, run.start, run.end + 1, false) : R.san_fix_stale_cpu_read(e);
  }

  /** A device read from `addr` got RAM's bytes where dirty lines held newer ones (in `run`). */
  staleDeviceRead(dev: device | null, name: string, addr: number, e: dma_debug_entry | null, run: R.ByteRun): void {
    if (!this.first("stale-device-read", e ?? dev ?? this, "read", e ? e.history.length : Math.floor(run.firstAddr / SAN_LINE))) return;
    const where = e ? `${R.san_offsets(run)} ${R.san_mapping_text(e)}` : `[bus address=${dma_fmt_addr(addr)}]`;
    const text = `device read stale memory: a CPU cache held newer dirty data for ${run.count} byte(s) ${where}`;
    const details = { access: "read", bus_addr: dma_fmt_addr(addr), ...R.san_byte_details(run, true) };
    this.emit("stale-device-read", "error", dev, name, e, text, R.san_fix_stale_device_read(e), details);
  }

  /** A write-back of the line at `lineAddr` destroyed device-written bytes (in `run`). */
  lostWrite(e: dma_debug_entry | null, device: string, lineAddr: number, wroteNs: number, seq: number, run: R.ByteRun, lineOff = lineAddr - (e?.dev_addr ?? 0)): void {
    if (!this.first("lost-device-write", e ?? this, "write-back", seq)) return;
    const flags = e ? (this.misuse.get(e) ?? 0) : 0;
    // no CPU store inside the buffer was seen: the dirt came from bytes sharing its line
    // lineOff: the line's offset in the mapping (from the bus address the device wrote through)
    const partLine = e !== null && (lineOff < 0 || lineOff + SAN_LINE > e.size);
    const shared = (flags & MISUSE_INSIDE) === 0 && ((flags & MISUSE_SHARED) !== 0 || partLine);
    const where = e ? ` ${R.san_offsets(run)} ${R.san_mapping_text(e)}` : "";
    const text = `write-back of a dirty cache line [line=${dma_fmt_addr(lineAddr)}] destroyed ${run.count} byte(s) the device wrote at ${dmesgStamp(wroteNs).trim()}${where}`;
    const details = { line: dma_fmt_addr(lineAddr), device_wrote_ns: wroteNs, shared_line: shared, ...R.san_byte_details(run, true) };
    this.emit("lost-device-write", "error", e?.dev ?? null, device, e, text, R.san_fix_lost_write(e, shared), details);
  }
}
