/**
 * A board: the hardware of one machine description, assembled and wired.
 *
 * Builds the clock, the seeded randomness, the physical map (RAM per NUMA node, the MSI
 * window, the PCI ECAM window), the CPUs' memory system, the interrupt controller, the PCI host
 * and every device, each with its DMA port and interrupt line: PCI functions in their slots
 * (BARs placed in the PCI MMIO window), then platform devices at the addresses the machine
 * file gives them. Nothing here knows about a kernel; the kernel's platform layer drives a
 * board through its public parts.
 */

import { Scheduler } from "../core/scheduler.ts";
import { Prng } from "../core/prng.ts";
import { Trace } from "../core/trace.ts";
import { GuestLog } from "../core/guest-log.ts";
import type { DeviceContext } from "../core/device-context.ts";
import { PhysMap } from "../mem/phys-map.ts";
import { MemorySystem } from "../cpu/memory-system.ts";
import { InterruptController } from "../irq/intc.ts";
import { PciHost } from "../bus/pci-host.ts";
import type { PciDevice } from "../bus/pci.ts";
import { DmaPort } from "../dma/dma-port.ts";
import type { MachineDesc } from "./schema.ts";
import { MachineConfigError } from "./load.ts";
import { createPciModel, createPlatformModel, ModelConfigError, type PlatformModel } from "../dev/models.ts";

export interface BoardOptions {
  seed: number;
  trace?: boolean;
}

export interface PciSlotInfo {
  readonly slot: number;
  readonly irq: number;
  readonly device: PciDevice;
}

export interface PlatformDeviceInfo {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  readonly irq: number;
  readonly device: PlatformModel;
}

export class Board {
  readonly scheduler = new Scheduler();
  readonly prng: Prng;
  readonly trace: Trace;
  readonly log: GuestLog;
  readonly map = new PhysMap();
  readonly mem: MemorySystem;
  readonly intc: InterruptController;
  readonly pci: PciHost;
  readonly pciDevices: PciSlotInfo[] = [];
  readonly platformDevices: PlatformDeviceInfo[] = [];

  constructor(
    readonly desc: MachineDesc,
    opts: BoardOptions,
  ) {
    this.prng = new Prng(opts.seed);
    this.trace = new Trace(opts.trace ?? false);
    this.log = new GuestLog(() => this.scheduler.now);
    for (const r of desc.memory.ram) this.map.addRam(r.base, r.size, r.node);
    const c = desc.cpus;
    this.mem = new MemorySystem(this.map, {
      cpus: c.count,
      l1: c.l1,
      llc: c.llc,
      timing: c.timing,
      evictionRate: c.evictionRate,
      prefetchRate: c.prefetchRate,
      prng: this.prng.fork("cache"),
    });
    this.intc = new InterruptController({ lines: desc.interrupts.lines, msiVectors: desc.interrupts.msiVectors, cpus: c.count }, this.log);
    this.map.addMmio(this.intc.msiRegion, desc.interrupts.msiBase);
    this.pci = new PciHost(this.map, this.log, desc.pci.ecamBase, desc.pci.mmioWindow);
    for (const d of desc.pci.devices) this.plugPci(d);
    desc.platform.forEach((d, i) => this.plugPlatform(d, i));
  }

  /** A device context with its own random stream. */
  deviceContext(name: string): DeviceContext {
    return { scheduler: this.scheduler, log: this.log, trace: this.trace, prng: this.prng.fork(`dev:${name}`) };
  }

  /** Host bytes actually allocated for simulated RAM. */
  get residentRamBytes(): number {
    return this.map.ram.residentPages * 4096;
  }

  private plugPci(d: MachineDesc["pci"]["devices"][number]): void {
    const name = d.name ?? `${d.model}@${d.slot}`;
    const dev = createPciModel(d.model, this.deviceContext(name), { name, dmaBits: d.dmaBits, msi: d.msi });
    // The port is 64 bits wide: a narrower DMA engine (edu's 28-bit mask) clamps its own
    // addresses, while MSI messages to the interrupt controller still get through.
    dev.dma = new DmaPort(this.mem, this.log, { name, coherent: this.desc.dma.coherent, addressBits: 64 });
    dev.intx = this.intc.line(d.irq);
    this.pci.plug(d.slot, dev);
    dev.realize();
    this.pciDevices.push({ slot: d.slot, irq: d.irq, device: dev });
  }

  private plugPlatform(d: MachineDesc["platform"][number], index: number): void {
    let dev: PlatformModel;
    try {
      dev = createPlatformModel(d.model, this.deviceContext(d.name), { name: d.name, size: d.size, instance: index });
    } catch (e) {
      // The schema cannot know every model's limits; report them as the file's mistake.
      if (e instanceof ModelConfigError) {
        throw new MachineConfigError(`machine "${this.desc.name}"`, [{ path: `platform[${index}].${e.field}`, message: e.message }]);
      }
      throw e;
    }
    this.map.addMmio(dev.region, d.base);
    // No MSI on the platform bus, but the port is 64 bits wide all the same: the model applies
    // its engine's own mask (edu's 28 bits), as on PCI.
    dev.dma = new DmaPort(this.mem, this.log, { name: d.name, coherent: this.desc.dma.coherent, addressBits: 64 });
    dev.irq = this.intc.line(d.irq);
    dev.realize();
    this.platformDevices.push({ name: d.name, base: d.base, size: d.size, irq: d.irq, device: dev });
  }
}
