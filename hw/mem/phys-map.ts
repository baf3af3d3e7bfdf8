/**
 * The physical address map: RAM ranges (each on a NUMA node), MMIO windows, and holes.
 *
 * All RAM shares one sparse store keyed by physical page-frame number. A lookup that hits
 * neither RAM nor MMIO is a hole: a CPU access raises `BusError` (the kernel turns it into an
 * oops), a device access fails its transaction (the device reports it as hardware does).
 */

import { SparseRam } from "./ram.ts";
import type { MmioRegion } from "./mmio.ts";

export interface RamRange {
  readonly base: number;
  readonly size: number;
  readonly node: number;
}

/** A CPU access to an address nothing decodes. Thrown by the CPU side only. */
export class BusError extends Error {
  constructor(
    readonly addr: number,
    readonly isWrite: boolean,
  ) {
    super(`bus error: ${isWrite ? "write to" : "read from"} unmapped physical address 0x${addr.toString(16)}`);
    this.name = "BusError";
  }
}

export class PhysMap {
  readonly ram = new SparseRam();
  readonly ramRanges: RamRange[] = [];
  readonly mmio: MmioRegion[] = [];
  /** Bounds of the RAM range isRam last found ([0, 0): none yet). Ranges are never removed. */
  private hitBase = 0;
  private hitEnd = 0;

  addRam(base: number, size: number, node: number): void {
    this.checkFree(base, size, `RAM node ${node}`);
    this.ramRanges.push({ base, size, node });
    this.ramRanges.sort((a, b) => a.base - b.base);
  }

  addMmio(region: MmioRegion, base: number): void {
    this.checkFree(base, region.size, region.name);
    region.base = base;
    this.mmio.push(region);
    this.mmio.sort((a, b) => a.base - b.base);
  }

  /** The RAM range holding all of [addr, addr+len), or null. */
  ramRangeOf(addr: number, len = 1): RamRange | null {
    const ranges = this.ramRanges;
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i];
      if (addr >= r.base && addr + len <= r.base + r.size) return r;
    }
    return null;
  }

  /**
   * True when [addr, addr+len) lies entirely in one RAM range. Asked on every DMA access and
   * every map, nearly always about the same range: the last hit's bounds are tested first.
   */
  isRam(addr: number, len = 1): boolean {
    if (addr >= this.hitBase && addr + len <= this.hitEnd) return true;
    const r = this.ramRangeOf(addr, len);
    if (r === null) return false;
    this.hitBase = r.base;
    this.hitEnd = r.base + r.size;
    return true;
  }

  /** The MMIO region containing `addr`, or null. */
  mmioAt(addr: number): MmioRegion | null {
    for (const m of this.mmio) {
      if (addr >= m.base && addr < m.base + m.size) return m;
    }
    return null;
  }

  /** Total RAM in bytes. */
  get ramBytes(): number {
    return this.ramRanges.reduce((s, r) => s + r.size, 0);
  }

  private checkFree(base: number, size: number, what: string): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size) || base < 0 || size <= 0) {
      throw new RangeError(`${what}: bad range base=0x${base.toString(16)} size=${size}`);
    }
    const end = base + size;
    for (const r of this.ramRanges) {
      if (base < r.base + r.size && r.base < end) throw new RangeError(`${what} overlaps RAM at 0x${r.base.toString(16)}`);
    }
    for (const m of this.mmio) {
      if (base < m.base + m.size && m.base < end) throw new RangeError(`${what} overlaps MMIO region ${m.name}`);
    }
  }
}
