/**
 * edu on the platform bus: the same device logic as the PCI function (edu-core.ts), wired the
 * way an SoC wires a memory-mapped block (QEMU's SysBusDevice). SPEC.md section 12.
 *
 * Theory of operation
 * - One MMIO region at the machine file's `base`, `size` bytes long (1 MiB by default, the
 *   size of the PCI BAR0). It decodes exactly what BAR0 decodes; there is no command register,
 *   so it always answers (nothing to enable) and the device is always a bus master.
 * - One wired interrupt line (the entry's `irq`), level-triggered: asserted while IRQ_STATUS is
 *   non-zero, dropped by the IRQ_ACK write that clears the last bit. No MSI.
 * - DMA goes straight to the DMA port the board attached; the engine's address mask (28 bits
 *   by default) still applies, in the core.
 * - A window smaller than 4 KiB is refused at construction: the registers need 0xa0 bytes and
 *   the kernel maps MMIO by pages, so anything smaller is a mistake in the machine file.
 */

import type { DeviceContext } from "../../core/device-context.ts";
import type { DmaPort } from "../../dma/dma-port.ts";
import type { IrqLine } from "../../irq/intc.ts";
import { MmioRegion, type AccessSize } from "../../mem/mmio.ts";
import { EduCore, type EduCoreOptions, type EduHost } from "./edu-core.ts";
import {
  EDU_BAR0_SIZE,
  EDU_DMA_REGS_END,
} from "./edu-regs.ts";

/** Smallest register window a machine file may give a platform edu. */
export const EDU_PLATFORM_MIN_SIZE = 0x1000;

/** Trace span ids: PCI edus use (slot + 1) * 2^24 for slots 0..31; platform ones start above. */
const TRACE_ID_FIRST_PLATFORM = 33;

export interface EduPlatformOptions extends EduCoreOptions {
  name?: string;
  /** Bytes of the register window (default 1 MiB, as BAR0; at least EDU_PLATFORM_MIN_SIZE). */
  size?: number;
  /** Index among the board's platform devices, so trace span ids stay unique (default 0). */
  instance?: number;
}

/**
 * eduPlatformSizeProblem - why `size` cannot be a platform edu's register window
 * Returns: a message for a configuration error, or null when the size is fine.
 */
export function eduPlatformSizeProblem(size: number): string | null {
  if (!Number.isSafeInteger(size) || size < EDU_PLATFORM_MIN_SIZE) {
    return `an edu register window must be at least 4 KiB (0x${EDU_PLATFORM_MIN_SIZE.toString(16)}): its registers span 0x0..0x${(EDU_DMA_REGS_END - 1).toString(16)} and MMIO is mapped by pages; found ${Number.isSafeInteger(size) && size >= 0 ? `0x${size.toString(16)}` : String(size)}`;
  }
  return null;
}

export class EduPlatformDevice {
  readonly name: string;
  /** The register window; the board places it at the machine file's base. */
  readonly region: MmioRegion;
  /** Set by the board before realize(). */
  dma!: DmaPort;
  irq!: IrqLine;
  private readonly core: EduCore;
  private readonly instance: number;
  private level = false;

  constructor(ctx: DeviceContext, opts: EduPlatformOptions = {}) {
    this.name = opts.name ?? "edu";
    this.instance = opts.instance ?? 0;
    const size = opts.size ?? EDU_BAR0_SIZE;
    const problem = eduPlatformSizeProblem(size);
    if (problem) throw new RangeError(`${this.name}: ${problem}`);
    const host: EduHost = {
      name: this.name,
      // No command register: a platform device is always a bus master.
      dmaRead: (addr, dst, off, len) => this.dma.read(addr, dst, off, len),
      dmaWrite: (addr, src, off, len) => this.dma.write(addr, src, off, len),
      raiseIrq: () => this.setLevel(true),
      lowerIrq: () => this.setLevel(false),
      usesMsi: () => false,
      traceIdBase: () => (TRACE_ID_FIRST_PLATFORM + this.instance) * 0x1000000,
      dmaBusy: (ns) => {
        if (this.dma) this.dma.busyNs += ns;
      },
    };
    this.core = new EduCore(ctx, host, opts);
    this.region = new MmioRegion(`${this.name}-mmio`, size, this.core.ops, [4, 8]);
  }

  /** Address lines the DMA engine drives. */
  get dmaBits(): number {
    return this.core.dmaBits;
  }

  /** Factorial latency in ns. */
  get factorialNs(): number {
    return this.core.factorialNs;
  }

  /** Whether the device requests an interrupt (IRQ_STATUS non-zero). */
  get irqAsserted(): boolean {
    return this.level;
  }

  /** Check the board's wiring (QEMU's realize): a bug in the board, not the guest, if it throws. */
  realize(): void {
    if (this.region.base < 0) throw new Error(`${this.name}: register window not mapped`);
    if (!this.dma) throw new Error(`${this.name}: no DMA port attached`);
    if (!this.irq) throw new Error(`${this.name}: interrupt line not connected`);
    this.irq.set(this.level);
  }

  /** Side-effect-free register read (no log, no trace): what `read` would return. */
  peek(off: number, size: AccessSize): number {
    return this.core.peek(off, size);
  }

  /** Power-on state (SPEC.md section 9): registers reset, transfers cancelled, the line low. */
  reset(): void {
    this.core.reset();
  }

  private setLevel(level: boolean): void {
    this.level = level;
    if (this.irq) this.irq.set(level);
  }
}
