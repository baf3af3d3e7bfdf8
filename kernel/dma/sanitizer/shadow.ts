/**
 * Shadow state for the effect checks: per cache line, the bytes a device wrote to RAM while
 * some CPU cache held that line (a non-coherent device neither updates nor invalidates the
 * cached copy, so only those bytes can be read stale, and only those can be destroyed when a
 * dirty copy is written back).
 *
 * A byte leaves the shadow when it can no longer cause either effect: the CPU stores to it (its
 * value is now the newest), a CPU load or a write-back finds the cache agreeing with RAM on it,
 * the line is written back, or the line is in no cache when its mapping goes away. Lines not
 * cached when the device writes are never shadowed: the next load fills them from RAM.
 * 64 bits per line in two 32-bit halves; line objects are pooled.
 */

import type { dma_debug_entry } from "../debug-entry.ts";

export const SAN_LINE = 64;

export class ShadowLine {
  /** Device-written bytes 0..31 and 32..63 of the line, one bit each. */
  lo = 0;
  hi = 0;
  /** The mapping the device wrote through last (null: none covered the access). */
  entry: dma_debug_entry | null = null;
  /** Name of the device that wrote last. */
  device = "";
  /** When it wrote. */
  timeNs = 0;
  /** Which device access wrote last (the sanitizer numbers them): one stale episode. */
  seq = 0;
  /**
   * Physical address + delta = offset in `entry` (the device wrote through its bus address, an
   * IOVA or a bounce slot, so neither entry.dev_addr nor entry.phys locates the bytes alone).
   */
  delta = 0;
}

/** Bits [from, to) of a 32-bit half (0 <= from <= to <= 32). */
function halfMask(from: number, to: number): number {
  const n = to - from;
  if (n <= 0) return 0;
  return n >= 32 ? 0xffffffff : (((1 << n) - 1) << from) >>> 0;
}

export class Shadow {
  readonly lines = new Map<number, ShadowLine>();
  private readonly pool: ShadowLine[] = [];

  get size(): number {
    return this.lines.size;
  }

  get(line: number): ShadowLine | undefined {
    return this.lines.get(line);
  }

  /** Record that a device wrote bytes [from, to) of `line`. */
  mark(line: number, from: number, to: number, entry: dma_debug_entry | null, device: string, timeNs: number, seq: number, delta = 0): void {
    let s = this.lines.get(line);
    if (s === undefined) {
      s = this.pool.pop() ?? new ShadowLine();
      this.lines.set(line, s);
    }
    s.lo = (s.lo | halfMask(Math.min(from, 32), Math.min(to, 32))) >>> 0;
    s.hi = (s.hi | halfMask(Math.max(from, 32) - 32, Math.max(to, 32) - 32)) >>> 0;
    s.entry = entry;
    s.device = device;
    s.timeNs = timeNs;
    s.seq = seq;
    s.delta = delta;
  }

  /** Forget bytes [from, to) of `line`; the line goes when none is left. */
  clear(line: number, from: number, to: number): void {
    const s = this.lines.get(line);
    if (s === undefined) return;
    s.lo = (s.lo & ~halfMask(Math.min(from, 32), Math.min(to, 32))) >>> 0;
    s.hi = (s.hi & ~halfMask(Math.max(from, 32) - 32, Math.max(to, 32) - 32)) >>> 0;
    if (s.lo === 0 && s.hi === 0) this.drop(line);
  }

  /** Forget the bytes set in `lo` (0..31) and `hi` (32..63) of `line`. */
  clearBits(line: number, lo: number, hi: number): void {
    const s = this.lines.get(line);
    if (s === undefined) return;
    s.lo = (s.lo & ~lo) >>> 0;
    s.hi = (s.hi & ~hi) >>> 0;
    if (s.lo === 0 && s.hi === 0) this.drop(line);
  }

  /** Forget a whole line. */
  drop(line: number): void {
    const s = this.lines.get(line);
    if (s === undefined) return;
    this.lines.delete(line);
    s.lo = s.hi = 0;
    s.entry = null;
    this.pool.push(s);
  }

  /** Is byte `i` (0..63) of this line device-written? */
  static has(s: ShadowLine, i: number): boolean {
    return i < 32 ? ((s.lo >>> i) & 1) !== 0 : ((s.hi >>> (i - 32)) & 1) !== 0;
  }

  /** Does the line have any device-written byte in [from, to)? */
  static any(s: ShadowLine, from: number, to: number): boolean {
    return (s.lo & halfMask(Math.min(from, 32), Math.min(to, 32))) !== 0 || (s.hi & halfMask(Math.max(from, 32) - 32, Math.max(to, 32) - 32)) !== 0;
  }
}
