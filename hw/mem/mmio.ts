/**
 * MMIO regions: a window of the physical address map routed to a device's register decoder.
 *
 * A model implements `MmioOps` with one switch per direction (QEMU's MemoryRegionOps). `peek`
 * reads without side effects, for tests and register dumps. Accesses of a size the region does
 * not accept reach the model anyway, flagged, so it can log a guest error as real hardware
 * would mis-decode them; nothing here throws on guest behaviour.
 */

export type AccessSize = 1 | 2 | 4 | 8;

export interface MmioOps {
  read(offset: number, size: AccessSize): number;
  write(offset: number, value: number, size: AccessSize): void;
  /** Side-effect free read (for tests and debuggers). */
  peek?(offset: number, size: AccessSize): number;
}

export class MmioRegion {
  /** Physical base, set when the region is placed in an address map (BAR assignment). */
  base = -1;
  constructor(
    readonly name: string,
    readonly size: number,
    readonly ops: MmioOps,
    readonly validSizes: readonly AccessSize[] = [4],
  ) {}
}
