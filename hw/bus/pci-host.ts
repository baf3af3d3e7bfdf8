/**
 * PCI host bridge: bus 0, an ECAM configuration window, and firmware-style BAR placement.
 *
 * ECAM offset = (device << 15) | (function << 12) | register; only function 0 exists. Reads of
 * an empty slot return all ones, as a master abort does, which is how enumeration finds nothing.
 * At plug-in time the host assigns each BAR a naturally aligned address in its MMIO window,
 * maps it, connects the function's INTx to its interrupt line and gives it a DMA port.
 */

import type { PhysMap } from "../mem/phys-map.ts";
import { MmioRegion, type AccessSize } from "../mem/mmio.ts";
import type { PciDevice } from "./pci.ts";
import type { GuestLog } from "../core/guest-log.ts";

export const ECAM_SIZE = 1 << 20; // bus 0: 32 devices x 8 functions x 4 KiB

export class PciHost {
  readonly slots: (PciDevice | null)[] = new Array(32).fill(null);
  readonly ecam: MmioRegion;
  private nextBar: number;

  constructor(
    private readonly map: PhysMap,
    private readonly log: GuestLog,
    ecamBase: number,
    private readonly window: { base: number; size: number },
  ) {
    this.ecam = new MmioRegion("pci-ecam", ECAM_SIZE, { read: (o, s) => this.cfgRead(o, s), write: (o, v, s) => this.cfgWrite(o, v, s) }, [1, 2, 4]);
    map.addMmio(this.ecam, ecamBase);
    this.nextBar = window.base;
  }

  /** Plug a function into `slot`, assigning and mapping its BARs. */
  plug(slot: number, dev: PciDevice): void {
    if (this.slots[slot]) throw new RangeError(`PCI slot ${slot} is already taken by ${this.slots[slot]!.name}`);
    this.slots[slot] = dev;
    dev.slot = slot;
    dev.bars.forEach((bar) => {
      if (!bar) return;
      const base = Math.ceil(this.nextBar / bar.size) * bar.size;
      if (base + bar.size > this.window.base + this.window.size) {
        throw new RangeError(`PCI MMIO window too small for ${dev.name} BAR of ${bar.size} bytes`);
      }
      this.map.addMmio(bar, base);
      this.nextBar = base + bar.size;
    });
  }

  private decode(off: number): { dev: PciDevice | null; reg: number } {
    const slot = (off >> 15) & 31;
    const fn = (off >> 12) & 7;
    return { dev: fn === 0 ? this.slots[slot] : null, reg: off & 0xfff };
  }

  private cfgRead(off: number, size: AccessSize): number {
    const { dev, reg } = this.decode(off);
    if (!dev) return 2 ** (size * 8) - 1;
    if (reg >= 256) return 0;
    return dev.configRead(reg, size);
  }

  private cfgWrite(off: number, value: number, size: AccessSize): void {
    const { dev, reg } = this.decode(off);
    if (!dev) return;
    if (reg >= 256) {
      this.log.error(dev.name, `config write beyond 256 bytes at 0x${reg.toString(16)} ignored`);
      return;
    }
    dev.configWrite(reg, value, size);
  }
}
