/**
 * edu: the teaching PCI device, register-compatible with QEMU's educational device.
 *
 * Theory of operation (the datasheet is SPEC.md; section numbers below refer to it)
 * - The registers, the factorial unit and the DMA engine are bus-independent and live in
 *   edu-core.ts; this file is the PCI function around them (QEMU's pci_edu_realize): the IDs
 *   and class of section 1, BAR0 as a 1 MiB register window (section 2) gated by the command
 *   register's memory-decoding bit, and the interrupt and DMA paths of the PCI base class.
 * - Interrupts (section 5): the core asks to raise or lower; the PCI base class sends one MSI
 *   message when the function enabled MSI, or drives INTx (level) otherwise.
 * - DMA (section 6): the core's bus-master reads and writes go through the base class, so they
 *   are refused unless the driver enabled bus mastering.
 * - The same core serves the platform variant in edu-platform.ts.
 */

import { PciDevice } from "../../bus/pci.ts";
import type { DeviceContext } from "../../core/device-context.ts";
import { MmioRegion, type AccessSize } from "../../mem/mmio.ts";
import { EduCore, type EduCoreOptions, type EduHost } from "./edu-core.ts";
import {
  EDU_BAR0_SIZE,
  EDU_CLASS_CODE,
  EDU_DEVICE_ID,
  EDU_REVISION,
  EDU_VENDOR_ID,
} from "./edu-regs.ts";

export { eduFactorial32 } from "./edu-core.ts";

export interface EduOptions extends EduCoreOptions {
  name?: string;
  /** Offer the MSI capability (default true, as QEMU's edu does). */
  msi?: boolean;
}

export class EduDevice extends PciDevice {
  private readonly core: EduCore;

  constructor(ctx: DeviceContext, opts: EduOptions = {}) {
    super(opts.name ?? "edu", ctx, {
      vendor: EDU_VENDOR_ID,
      device: EDU_DEVICE_ID,
      revision: EDU_REVISION,
      classCode: EDU_CLASS_CODE,
      msi: opts.msi ?? true,
    });
    // The base class keeps its DMA and interrupt helpers protected; hand the core closures.
    const host: EduHost = {
      name: this.name,
      dmaRead: (addr, dst, off, len) => this.dmaRead(addr, dst, off, len),
      dmaWrite: (addr, src, off, len) => this.dmaWrite(addr, src, off, len),
      raiseIrq: () => this.raiseIrq(),
      lowerIrq: () => this.lowerIrq(),
      usesMsi: () => this.msiEnabled,
      // Unique across devices: one span namespace per slot (platform devices start above 32).
      traceIdBase: () => (this.slot + 1) * 0x1000000,
      dmaBusy: (ns) => {
        if (this.dma) this.dma.busyNs += ns;
      },
    };
    this.core = new EduCore(ctx, host, opts);
    this.declareBar(0, new MmioRegion(`${this.name}-mmio`, EDU_BAR0_SIZE, this.core.ops, [4, 8]));
  }

  /** Address lines the DMA engine drives. */
  get dmaBits(): number {
    return this.core.dmaBits;
  }

  /** Factorial latency in ns. */
  get factorialNs(): number {
    return this.core.factorialNs;
  }

  /** Check the board's wiring (QEMU's realize): a bug in the board, not the guest, if it throws. */
  realize(): void {
    if (!this.dma) throw new Error(`${this.name}: no DMA port attached`);
    if (!this.intx) throw new Error(`${this.name}: INTx line not connected`);
  }

  /** Side-effect-free register read (no log, no trace): what `read` would return. */
  peek(off: number, size: AccessSize): number {
    return this.core.peek(off, size);
  }

  override reset(): void {
    this.core.reset();
    super.reset();
  }
}
