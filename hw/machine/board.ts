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
import { MachineConfigError, parseMachineObject } from "./load.ts";
import { createPciModel, createPlatformModel, ModelConfigError, type PlatformModel } from "../dev/models.ts";
import { Interconnect, isBusMaster } from "../bus/interconnect.ts";
import { Iommu } from "../iommu/iommu.ts";
import { MSI_WINDOW_SIZE, pciRequesterId, platformStreamId } from "./schema.ts";

export interface BoardOptions {
  seed: number;
  trace?: boolean;
}

export interface PciSlotInfo {
  readonly slot: number;
  readonly irq: number;
  readonly device: PciDevice;
  /** The requester id its DMA carries (bus 0: slot << 3). */
  readonly requesterId: number;
  readonly untrusted: boolean;
}

export interface PlatformDeviceInfo {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  readonly irq: number;
  readonly device: PlatformModel;
  readonly requesterId: number;
  readonly untrusted: boolean;
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
  /** The IOMMU between every DMA port and memory, when the machine has one. */
  readonly iommu: Iommu | null = null;
  /**
   * The memory bus between the CPUs and the DMA masters that arbitrate for it. It is attached
   * to the memory system only once such a master is plugged (the DMAC), so a machine without
   * one pays nothing for it.
   */
  readonly interconnect: Interconnect;
  /** Platform entries plugged after construction (plugPlatformDevice), in order. */
  private readonly hotplugged: MachineDesc["platform"] = [];

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
    this.interconnect = new Interconnect({ cpus: c.count, now: () => this.scheduler.now });
    if (desc.iommu) {
      // Its table walks snoop exactly when the machine's DMA does.
      const io = desc.iommu;
      this.iommu = new Iommu(this.deviceContext("iommu"), this.mem, {
        iotlbEntries: io.iotlb.entries, iotlbWays: io.iotlb.ways, coherentWalk: desc.dma.coherent, invalidateNs: io.invalidateNs,
      });
      this.map.addMmio(this.iommu.region, io.base);
      this.iommu.irq = this.intc.line(io.irq);
    }
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

  /**
   * Plug a platform device into a running board, as a hot-plugged SoC block (what scenarios
   * use to add a DMAC to a profile). The entry is validated with the whole machine description
   * and the devices plugged so far, exactly as if the file had listed it. `desc` is left as
   * given (it is the caller's object); `platformDevices` lists the new device.
   * Throws MachineConfigError naming the field for an entry the machine cannot take.
   * Returns: the plugged device's info.
   */
  plugPlatformDevice(entry: MachineDesc["platform"][number]): PlatformDeviceInfo {
    const all = [...this.desc.platform, ...this.hotplugged, entry];
    const checked = parseMachineObject({ ...this.desc, platform: all }, `machine "${this.desc.name}"`);
    const d = checked.platform[all.length - 1];
    this.plugPlatform(d, this.platformDevices.length);
    this.hotplugged.push(d);
    return this.platformDevices[this.platformDevices.length - 1];
  }

  /** A bus master that arbitrates for memory: give it the interconnect and turn arbitration on. */
  private attachBusMaster(dev: { attachInterconnect(ic: Interconnect): void }): void {
    dev.attachInterconnect(this.interconnect);
    this.mem.interconnect = this.interconnect;
  }

  private plugPci(d: MachineDesc["pci"]["devices"][number]): void {
    const name = d.name ?? `${d.model}@${d.slot}`;
    let dev: ReturnType<typeof createPciModel>;
    try {
      dev = createPciModel(d.model, this.deviceContext(name), { name, dmaBits: d.dmaBits, msi: d.msi });
    } catch (e) {
      if (e instanceof ModelConfigError) {
        const i = this.desc.pci.devices.indexOf(d);
        throw new MachineConfigError(`machine "${this.desc.name}"`, [{ path: `pci.devices[${i}].${e.field}`, message: e.message }]);
      }
      throw e;
    }
    dev.dma = this.dmaPort(name, pciRequesterId(d.slot));
    dev.intx = this.intc.line(d.irq);
    this.pci.plug(d.slot, dev);
    dev.realize();
    this.pciDevices.push({ slot: d.slot, irq: d.irq, device: dev, requesterId: pciRequesterId(d.slot), untrusted: d.untrusted ?? false });
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
    const rid = platformStreamId(d, index);
    dev.dma = this.dmaPort(d.name, rid);
    dev.irq = this.intc.line(d.irq);
    if (isBusMaster(dev)) this.attachBusMaster(dev);
    dev.realize();
    this.platformDevices.push({ name: d.name, base: d.base, size: d.size, irq: d.irq, device: dev, requesterId: rid, untrusted: d.untrusted ?? false });
  }

  /**
   * A 64-bit DMA port behind the IOMMU, if any. A narrower DMA engine (edu's 28-bit mask)
   * clamps its own addresses, while MSI messages to the interrupt controller still get through
   * (and bypass translation, as interrupt requests do on VT-d).
   */
  private dmaPort(name: string, requesterId: number): DmaPort {
    const port = new DmaPort(this.mem, this.log, { name, coherent: this.desc.dma.coherent, addressBits: 64 });
    port.requesterId = requesterId;
    port.msiBase = this.desc.interrupts.msiBase;
    port.msiEnd = this.desc.interrupts.msiBase + MSI_WINDOW_SIZE;
    port.translator = this.iommu;
    return port;
  }
}
