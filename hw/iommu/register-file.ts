/**
 * The IOMMU's register file (SPEC.md section 1): register descriptors by offset, the decode of
 * a 4- or 8-byte access to them (an 8-byte register is also two 4-byte halves), and the
 * guest-error helpers for read-only registers and reserved bits.
 *
 * Kept apart from the model (iommu.ts) because it is the cold MMIO side, filled by the parts
 * that own the registers' state: the model (VER, CAP, GCMD, GSTS, CTX_BASE), the fault log
 * (fault-log.ts) and the invalidation interface (invalidation.ts).
 */

import type { GuestLog } from "../core/guest-log.ts";
import type { AccessSize } from "../mem/mmio.ts";

const TWO32 = 0x100000000;
const ALL_ONES_64 = Number.MAX_SAFE_INTEGER;

/** One 4-byte half of a register write; null for the half an access does not write. */
export type Half = number | null;

export interface RegDesc {
  wide: boolean;
  read(): [number, number];
  write(lo: Half, hi: Half): void;
}

export class RegisterFile {
  private readonly regs = new Map<number, RegDesc>();

  constructor(
    private readonly log: GuestLog,
    private readonly name: string,
  ) {}

  set(off: number, reg: RegDesc): void {
    this.regs.set(off, reg);
  }

  /** A read-only register: writes are guest errors. */
  ro(name: string, value: () => number, wide = false, hi: () => number = () => 0): RegDesc {
    return {
      wide,
      read: () => [value(), hi()],
      write: () => this.log.error(this.name, `write to read-only ${name} ignored`),
    };
  }

  /** `v` without the bits outside `allowed` (a guest error when any was set). */
  reserved(name: string, v: number, allowed: number): number {
    if ((v & ~allowed) !== 0) this.log.error(this.name, `${name}: reserved bits 0x${hex((v & ~allowed) >>> 0)} dropped`);
    return v & allowed;
  }

  /** An MMIO read; `quiet` (a peek) logs nothing. */
  read(off: number, size: AccessSize, quiet: boolean): number {
    const d = this.decode(off, size);
    if (!d) {
      if (!quiet) this.log.error(this.name, `${size}-byte read at 0x${hex(off)} decodes no register`);
      return size === 8 ? ALL_ONES_64 : 2 ** (8 * size) - 1;
    }
    const [lo, hi] = d.reg.read();
    if (d.part === "lo") return lo >>> 0;
    if (d.part === "hi") return hi >>> 0;
    return (lo >>> 0) + hi * TWO32;
  }

  /** An MMIO write. */
  write(off: number, value: number, size: AccessSize): void {
    const d = this.decode(off, size);
    if (!d) return this.log.error(this.name, `${size}-byte write of 0x${hex(value)} at 0x${hex(off)} decodes no register: ignored`);
    if (d.part === "lo") d.reg.write(value >>> 0, null);
    else if (d.part === "hi") d.reg.write(null, value >>> 0);
    else d.reg.write(value % TWO32 >>> 0, Math.floor(value / TWO32));
  }

  /** Find the register an access names, or null (wrong offset, size or alignment). */
  private decode(off: number, size: AccessSize): { reg: RegDesc; part: "lo" | "hi" | "both" } | null {
    const at = this.regs.get(off);
    if (at) {
      if (size === 4) return { reg: at, part: "lo" };
      if (size === 8 && at.wide) return { reg: at, part: "both" };
      return null;
    }
    const below = this.regs.get(off - 4);
    if (below?.wide && size === 4) return { reg: below, part: "hi" };
    return null;
  }
}

/** Hex digits without a prefix, for guest-error messages. */
export function hex(v: number): string {
  return v.toString(16);
}
