/**
 * The sanitizer's graves: per device, the last SAN_GRAVES_PER_DEVICE entries its mappings lost
 * (a ring, oldest overwritten), so a device access after an unmap can name the mapping it
 * used and the call that ended it (device-access-unmapped). An sg run unmapped whole
 * (DmaDebugTable.removeRun) is buried as (run, segment) pairs: its entries are made only if a
 * finding asks for one.
 */

import type { device } from "../../include/device.ts";
import type { dma_debug_entry } from "../debug-entry.ts";
import { DmaDebugRun } from "../debug-run.ts";

/** Removed entries remembered per device, to explain a device access after unmap. */
export const SAN_GRAVES_PER_DEVICE = 64;

interface grave_ring {
  /** An entry, or a run whose segment `seg` holds the same slot. */
  readonly ring: (dma_debug_entry | DmaDebugRun)[];
  readonly seg: Int32Array;
  next: number;
}

export class SanGraves {
  private readonly rings = new Map<device, grave_ring>();
  /** The device last buried for and its ring (an sg unmap buries per segment, one device). */
  private lastDev: device | null = null;
  private last: grave_ring | null = null;

  /** @e was removed. */
  bury(e: dma_debug_entry): void {
    const g = this.ringOf(e.dev);
    g.ring[g.next] = e;
    g.seg[g.next] = -1;
    g.next = (g.next + 1) % SAN_GRAVES_PER_DEVICE;
  }

  /**
   * Every segment of @run was removed, in order: of a run longer than the ring only the
   * segments the ring would keep are written.
   */
  buryRun(run: DmaDebugRun): void {
    const n = run.n;
    if (n === 0) return;
    const g = this.ringOf(run.call.dev);
    let from = 0;
    // a full ring: the first n - SAN_GRAVES_PER_DEVICE segments would be overwritten in it
    if (g.ring.length === SAN_GRAVES_PER_DEVICE && n > SAN_GRAVES_PER_DEVICE) {
      from = n - SAN_GRAVES_PER_DEVICE;
      g.next = (g.next + from) % SAN_GRAVES_PER_DEVICE;
    }
    for (let i = from; i < n; i++) {
      g.ring[g.next] = run;
      g.seg[g.next] = i;
      g.next = (g.next + 1) % SAN_GRAVES_PER_DEVICE;
    }
  }

  /** The most recently removed entry of @dev that covered bus address @addr, if remembered. */
  at(dev: device, addr: number): dma_debug_entry | null {
    const g = this.rings.get(dev);
    if (!g) return null;
    const n = g.ring.length;
    for (let i = 1; i <= n; i++) {
      const k = (g.next - i + n) % n;
      const x = g.ring[k];
      if (x instanceof DmaDebugRun) {
        const seg = g.seg[k];
        if (addr >= x.addr[seg] && addr < x.addr[seg] + x.size[seg]) return x.entryAt(seg);
      } else if (addr >= x.dev_addr && addr < x.dev_addr + x.size) return x;
    }
    return null;
  }

  /** The ring of @dev (made on first use). */
  private ringOf(dev: device): grave_ring {
    let g = dev === this.lastDev ? this.last : this.rings.get(dev);
    if (!g) this.rings.set(dev, (g = { ring: [], seg: new Int32Array(SAN_GRAVES_PER_DEVICE), next: 0 }));
    this.lastDev = dev;
    this.last = g;
    return g;
  }
}
