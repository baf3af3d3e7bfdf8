/**
 * A bare board for qtest-style device tests: hardware only, wired by hand, no kernel.
 *
 * 64 MiB of RAM at 0, two CPUs with small caches, an interrupt controller (64 lines, 16 MSI
 * vectors, MSI window at 0xfee00000), a PCI host (ECAM at 0xe0000000, MMIO window
 * 0xc0000000/256 MiB) and one edu in slot 3 on INTx line 11. Helpers reach config space through
 * ECAM and BAR0 through CPU 0's MMIO path, as a driver's readl/writel would.
 */

import { Scheduler } from "../../hw/core/scheduler.ts";
import { GuestLog } from "../../hw/core/guest-log.ts";
import { Trace } from "../../hw/core/trace.ts";
import { Prng } from "../../hw/core/prng.ts";
import type { DeviceContext } from "../../hw/core/device-context.ts";
import { PhysMap } from "../../hw/mem/phys-map.ts";
import type { AccessSize } from "../../hw/mem/mmio.ts";
import { MemorySystem } from "../../hw/cpu/memory-system.ts";
import { InterruptController } from "../../hw/irq/intc.ts";
import { PciHost } from "../../hw/bus/pci-host.ts";
import { DmaPort } from "../../hw/dma/dma-port.ts";
import { EduDevice, type EduOptions } from "../../hw/dev/edu/edu.ts";

export const RAM_BASE = 0;
export const RAM_SIZE = 64 << 20;
export const MSI_BASE = 0xfee00000;
export const ECAM_BASE = 0xe0000000;
export const PCI_WINDOW = { base: 0xc0000000, size: 0x10000000 };
export const EDU_SLOT = 3;
export const EDU_IRQ = 11;

export interface BareBoardOptions {
  /** DMA snoops the CPU caches (x86-like) or not (arm64-like). Default false. */
  coherent?: boolean;
  seed?: number;
  trace?: boolean;
  edu?: EduOptions;
  /** Address lines of the edu's DMA port (default 64; see the note where it is built). */
  portBits?: number;
}

export interface BareBoard {
  scheduler: Scheduler;
  log: GuestLog;
  trace: Trace;
  prng: Prng;
  map: PhysMap;
  mem: MemorySystem;
  intc: InterruptController;
  pci: PciHost;
  edu: EduDevice;
  /** Physical address of the edu's BAR0. */
  bar0: number;
  cfgRead(slot: number, off: number, size: AccessSize): number;
  cfgWrite(slot: number, off: number, value: number, size: AccessSize): void;
  mmioRead(offset: number, size?: AccessSize): number;
  mmioWrite(offset: number, value: number, size?: AccessSize): void;
  /** The bytes RAM really holds (no cache involved), as a device would read them. */
  ramBytes(addr: number, len: number): Uint8Array;
  /** Program one edu DMA (SPEC.md section 10) with 8-byte writes; it runs as the clock advances. */
  eduDma(src: number, dst: number, count: number, cmd: number): void;
}

export function makeBareBoard(opts: BareBoardOptions = {}): BareBoard {
  const scheduler = new Scheduler();
  const log = new GuestLog(() => scheduler.now);
  const trace = new Trace(opts.trace ?? false);
  const prng = new Prng(opts.seed ?? 1);
  const map = new PhysMap();
  map.addRam(RAM_BASE, RAM_SIZE, 0);
  const mem = new MemorySystem(map, {
    cpus: 2,
    l1: { size: 4096, ways: 4 },
    llc: { size: 32768, ways: 8 },
    timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 200 },
    evictionRate: 0,
    prefetchRate: 0,
    prng: prng.fork("cache"),
  });
  const intc = new InterruptController({ lines: 64, msiVectors: 16, cpus: 2 }, log);
  map.addMmio(intc.msiRegion, MSI_BASE);
  const pci = new PciHost(map, log, ECAM_BASE, PCI_WINDOW);

  const ctx: DeviceContext = { scheduler, log, trace, prng: prng.fork("dev:edu") };
  const edu = new EduDevice(ctx, opts.edu);
  // The port is the function's bus interface, 64 bits wide: it also carries MSI writes to
  // 0xfee00000, which a 28-bit port would truncate. The edu applies its DMA mask itself.
  edu.dma = new DmaPort(mem, log, { name: edu.name, coherent: opts.coherent ?? false, addressBits: opts.portBits ?? 64 });
  edu.intx = intc.line(EDU_IRQ);
  pci.plug(EDU_SLOT, edu);
  edu.realize();
  const bar0 = edu.bars[0]!.base;

  const ecam = (slot: number, off: number): number => ECAM_BASE + (slot << 15) + off;
  const mmioWrite = (offset: number, value: number, size: AccessSize = 4): void => mem.mmioWrite(0, bar0 + offset, value, size);
  return {
    scheduler,
    log,
    trace,
    prng,
    map,
    mem,
    intc,
    pci,
    edu,
    bar0,
    cfgRead: (slot, off, size) => mem.mmioRead(0, ecam(slot, off), size),
    cfgWrite: (slot, off, value, size) => mem.mmioWrite(0, ecam(slot, off), value, size),
    mmioRead: (offset, size = 4) => mem.mmioRead(0, bar0 + offset, size),
    mmioWrite,
    ramBytes: (addr, len) => {
      const out = new Uint8Array(len);
      map.ram.read(addr, out, 0, len);
      return out;
    },
    eduDma: (src, dst, count, cmd) => {
      mmioWrite(0x80, src, 8);
      mmioWrite(0x88, dst, 8);
      mmioWrite(0x90, count, 8);
      mmioWrite(0x98, cmd, 4);
    },
  };
}
