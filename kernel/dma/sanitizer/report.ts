/**
 * How the coherence sanitizer says what it saw: one finding per (kind, mapping, operation),
 * printed like dma-debug prints its errors ("DMA-SAN: <driver> <device>: ..." at KERN_ERR,
 * then where the mapping was made), carrying the mapping, the bytes involved, the mapping's
 * history and one sentence naming the fix.
 */

import type { Kernel } from "../../core/kernel.ts";
import { KERN_ERR, dmesgStamp } from "../../core/printk.ts";
import type { FindingKind, Severity } from "../../core/findings.ts";
import type { device } from "../../include/device.ts";
import { DMA_TO_DEVICE, dma_dir_name, dma_fmt_addr } from "../defs.ts";
import type { dma_debug_entry } from "../debug-entry.ts";
import { dma_debug_owner_text } from "../debug-owner.ts";
import { dma_history_copy } from "../debug-history.ts";

export const SAN_PREFIX = "DMA-SAN: ";

/** Bytes involved in one finding: an offset range in the mapping, with a few samples. */
export class ByteRun {
  static readonly SAMPLES = 8;
  start = -1;
  end = -1;
  count = 0;
  /** Bus or physical address of the first byte added (-1: none). */
  firstAddr = -1;
  readonly expected: number[] = [];
  readonly actual: number[] = [];

  reset(): void {
    this.start = this.end = this.firstAddr = -1;
    this.count = 0;
    this.expected.length = 0;
    this.actual.length = 0;
  }

  /** Byte at mapping offset `off` (address `addr`): what it should have been and what it was. */
  add(off: number, addr: number, expected: number, actual: number): void {
    if (this.firstAddr < 0) this.firstAddr = addr;
    if (this.start < 0 || off < this.start) this.start = off;
    if (off > this.end) this.end = off;
    this.count++;
    if (this.expected.length < ByteRun.SAMPLES) {
      this.expected.push(expected);
      this.actual.push(actual);
    }
  }

  /** Mark a range without sample values (ownership findings). */
  range(start: number, endExclusive: number): void {
    this.start = start;
    this.end = endExclusive - 1;
    this.count = endExclusive - start;
  }
}

const hexBytes = (b: readonly number[]): string => b.map((v) => v.toString(16).padStart(2, "0")).join(" ");
const hex = (n: number): string => `0x${n.toString(16)}`;

/** "dma_sync_single_for_cpu()" or its scatterlist twin, for the entry's kind of mapping. */
export function san_sync_fn(e: dma_debug_entry | null, to: "cpu" | "device"): string {
  return e?.type === "sg" ? `dma_sync_sg_for_${to}()` : `dma_sync_single_for_${to}()`;
}

/** The mapping, as every sanitizer finding carries it. */
export function san_entry_details(e: dma_debug_entry): Record<string, string | number | boolean> {
  return {
    dev_addr: dma_fmt_addr(e.dev_addr),
    phys: dma_fmt_addr(e.phys),
    cpu_addr: hex(e.cpu_addr),
    size: e.size,
    direction: dma_dir_name(e.direction),
    type: e.type,
    domain: e.domain,
    ...(e.cpu_owned ? { cpu_owned: dma_debug_owner_text(e) } : {}),
  };
}

/** The bytes, as every sanitizer finding carries them. */
export function san_byte_details(run: ByteRun, samples: boolean): Record<string, string | number | boolean> {
  const d: Record<string, string | number | boolean> = { offset_start: run.start, offset_end: run.end, bytes: run.count };
  if (samples) {
    d.addr = dma_fmt_addr(run.firstAddr);
    d.expected = hexBytes(run.expected);
    d.actual = hexBytes(run.actual);
  }
  return d;
}

/** "[offset=960..999]" */
export function san_offsets(run: ByteRun): string {
  return run.start === run.end ? `[offset=${run.start}]` : `[offset=${run.start}..${run.end}]`;
}

/** The tail every message about a mapping ends with. */
export function san_mapping_text(e: dma_debug_entry): string {
  const last = e.history[e.history.length - 1];
  const lastText = last ? ` [last call=${last.op} at ${dmesgStamp(last.timeNs).trim()}]` : "";
  return `[device address=${dma_fmt_addr(e.dev_addr)}] [size=${e.size} bytes] [mapped with ${dma_dir_name(e.direction)}] [mapped as ${e.type}]${lastText}`;
}

export interface san_event {
  readonly kind: FindingKind;
  readonly severity: Severity;
  readonly dev: device | null;
  /** Device name to print when `dev` is unknown (a port the kernel cannot name). */
  readonly devName: string;
  readonly e: dma_debug_entry | null;
  readonly text: string;
  readonly fix: string;
  readonly details: Record<string, string | number | boolean>;
}

/** The driver to blame: the mapping's creator, else the device's driver, else the running code. */
function san_driver(k: Kernel, ev: san_event): string {
  return ev.e?.owner || ev.dev?.driver?.name || k.exec.owner || ev.dev?.bus || "";
}

/** Print and record one finding. */
export function san_emit(k: Kernel, ev: san_event): void {
  const drv = san_driver(k, ev);
  const devName = ev.dev?.name ?? ev.devName;
  const line = `${drv} ${devName}: ${ev.text}`;
  k.printk.log(KERN_ERR, line, SAN_PREFIX);
  const first = ev.e?.history[0];
  if (first) k.printk.log(KERN_ERR, `Mapped at: ${dmesgStamp(first.timeNs)}${first.op} ${first.detail}`, SAN_PREFIX);
  k.findings.add({
    kind: ev.kind,
    severity: ev.severity,
    timeNs: k.exec.now(),
    driver: drv,
    device: devName,
    message: `${SAN_PREFIX}${line}`,
    fix: ev.fix,
    details: { ...(ev.e ? san_entry_details(ev.e) : {}), ...ev.details },
    history: ev.e ? dma_history_copy(ev.e.history) : [],
  });
}

// ------------------------------------------------------------------ fixes, one sentence each

/** The fix for a CPU access to bytes the device owns. */
export function san_fix_cpu_access(e: dma_debug_entry, isWrite: boolean): string {
  if (!isWrite) {
    if (e.direction === DMA_TO_DEVICE) return `Read a DMA_TO_DEVICE buffer only before mapping it, or after ${san_sync_fn(e, "cpu")} or unmap: while mapped it belongs to the device.`;
    return `Call ${san_sync_fn(e, "cpu")} (or unmap the buffer) before reading what the device wrote.`;
  }
  if (e.direction === DMA_TO_DEVICE) {
    return `Finish writing before mapping the buffer, or call ${san_sync_fn(e, "cpu")} before writing and ${san_sync_fn(e, "device")} after writing and before starting the device.`;
  }
  return `Do not write the buffer while the device owns it: call ${san_sync_fn(e, "cpu")} first, and ${san_sync_fn(e, "device")} before handing it back.`;
}

/**
 * The fix for a CPU access to bytes [from, to) the device still owns after a partial sync
 * handed the CPU other bytes of the mapping.
 */
export function san_fix_cpu_access_partial(e: dma_debug_entry, from: number, to: number, isWrite: boolean): string {
  const what = isWrite ? "writes" : "reads";
  return `Sync every byte the CPU ${what}: the range given to ${e.type === "sg" ? "dma_sync_sg_for_cpu()" : "dma_sync_single_range_for_cpu()"} must also cover offsets ${from} to ${to - 1} (or unmap the buffer first).`;
}

/** The fix for CPU stores that dirty a line the device is writing. */
export function san_fix_shared_line(e: dma_debug_entry, inside = false): string {
  if (inside) return `Give the CPU only whole cache lines (ranges aligned to dma_get_cache_alignment()) of a ${dma_dir_name(e.direction)} buffer whose other bytes the device still writes, or sync the whole buffer for the CPU before writing.`;
  return `Do not write fields sharing a cache line with a ${dma_dir_name(e.direction)} buffer while it is mapped; align the buffer to dma_get_cache_alignment().`;
}

export function san_fix_device_cpu_owned(e: dma_debug_entry): string {
  return `Call ${san_sync_fn(e, "device")} after the CPU is done with the buffer and before starting the device.`;
}

export function san_fix_unmapped(afterUnmap: boolean): string {
  return afterUnmap
    ? "Stop the device (and wait for it) before unmapping or freeing the buffer; never let it use a DMA address after dma_unmap_*()."
    : "Give the device only addresses returned by a successful dma_map_*() or dma_alloc_coherent() for this device.";
}

export function san_fix_stale_cpu_read(e: dma_debug_entry | null): string {
  return `Call ${san_sync_fn(e, "cpu")} before reading what the device wrote.`;
}

export function san_fix_stale_device_read(e: dma_debug_entry | null): string {
  return `Call ${san_sync_fn(e, "device")} after writing and before starting the device.`;
}

/** Lost device data: a CPU store inside the buffer, or in a line it shares with other data. */
export function san_fix_lost_write(e: dma_debug_entry | null, sharedLine: boolean): string {
  if (e && sharedLine) return san_fix_shared_line(e);
  return `Do not write the buffer while the device owns it: call ${san_sync_fn(e, "cpu")} first and ${san_sync_fn(e, "device")} before handing it back.`;
}
