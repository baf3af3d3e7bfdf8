import { describe, expect, it } from "vitest";
import {
  MSI_CAP,
  PCI_BASE_ADDRESS_0,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PciDevice,
} from "../../../../hw/bus/pci.ts";
import type { DeviceContext } from "../../../../hw/core/device-context.ts";
import { GuestLog } from "../../../../hw/core/guest-log.ts";
import { Prng } from "../../../../hw/core/prng.ts";
import { Scheduler } from "../../../../hw/core/scheduler.ts";
import { Trace } from "../../../../hw/core/trace.ts";
import { MemorySystem } from "../../../../hw/cpu/memory-system.ts";
import { DmaPort } from "../../../../hw/dma/dma-port.ts";
import { InterruptController } from "../../../../hw/irq/intc.ts";
import { MmioRegion } from "../../../../hw/mem/mmio.ts";
import { PhysMap } from "../../../../hw/mem/phys-map.ts";

const MSI_BASE = 0xfee00000;
const IRQ = 5;

/** A minimal function: one register file in a 4 KiB BAR0, one 256-byte BAR2. */
class TestDevice extends PciDevice {
  readonly regs = new Uint32Array(1024);
  constructor(ctx: DeviceContext, msi: boolean) {
    super("tdev", ctx, { vendor: 0x1234, device: 0xabcd, revision: 7, classCode: 0x020080, msi });
    this.declareBar(0, new MmioRegion("tdev-bar0", 0x1000, { read: (o) => this.regs[o >> 2], write: (o, v) => void (this.regs[o >> 2] = v) }));
    this.declareBar(2, new MmioRegion("tdev-bar2", 0x100, { read: () => 0x22, write: () => {} }));
  }
  raise(): void {
    this.raiseIrq();
  }
  lower(): void {
    this.lowerIrq();
  }
  read(addr: number, len: number): Uint8Array | null {
    const b = new Uint8Array(len);
    return this.dmaRead(addr, b, 0, len) ? b : null;
  }
  write(addr: number, bytes: number[]): boolean {
    return this.dmaWrite(addr, Uint8Array.from(bytes), 0, bytes.length);
  }
}

class BadBar extends PciDevice {
  constructor(ctx: DeviceContext, size: number) {
    super("bad", ctx, { vendor: 1, device: 1, revision: 0, classCode: 0, msi: false });
    this.declareBar(0, new MmioRegion("bad", size, { read: () => 0, write: () => {} }));
  }
}

function rig(msi = true) {
  const scheduler = new Scheduler();
  const log = new GuestLog(() => scheduler.now);
  const ctx: DeviceContext = { scheduler, log, trace: new Trace(false), prng: new Prng(1) };
  const map = new PhysMap();
  map.addRam(0, 1 << 20, 0);
  const mem = new MemorySystem(map, {
    cpus: 1,
    l1: { size: 512, ways: 2 },
    llc: { size: 2048, ways: 4 },
    timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 },
    evictionRate: 0,
    prefetchRate: 0,
    prng: new Prng(1),
  });
  const intc = new InterruptController({ lines: 16, msiVectors: 8, cpus: 1 }, log);
  map.addMmio(intc.msiRegion, MSI_BASE);
  const dev = new TestDevice(ctx, msi);
  dev.dma = new DmaPort(mem, log, { name: dev.name, coherent: true, addressBits: 64 });
  dev.intx = intc.line(IRQ);
  const ram = (addr: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    map.ram.read(addr, out, 0, len);
    return out;
  };
  return { log, ctx, intc, dev, ram };
}

/** Program the MSI capability as a driver would: address, data, then the enable bit. */
function enableMsi(dev: PciDevice, vector: number): void {
  dev.configWrite(MSI_CAP + PCI_MSI_ADDRESS_LO, MSI_BASE, 4);
  dev.configWrite(MSI_CAP + PCI_MSI_ADDRESS_HI, 0, 4);
  dev.configWrite(MSI_CAP + PCI_MSI_DATA_64, vector, 2);
  dev.configWrite(MSI_CAP + PCI_MSI_FLAGS, 1, 2);
}

describe("PciDevice", () => {
  it("presents its identity in a type-0 header", () => {
    const { dev } = rig();
    expect(dev.configRead(0, 4)).toBe(0xabcd1234);
    expect(dev.configRead(0, 2)).toBe(0x1234);
    expect(dev.configRead(2, 2)).toBe(0xabcd);
    expect(dev.configRead(8, 4)).toBe(0x02008007); // class code over revision
    expect(dev.configRead(PCI_INTERRUPT_PIN, 1)).toBe(1);
    expect(dev.configRead(PCI_COMMAND, 2)).toBe(0);
    expect(dev.configRead(0xfe, 4)).toBe(0xffffffff); // runs past the 256-byte space
  });

  it("lays out a 64-bit MSI capability at 0x40", () => {
    const { dev } = rig(true);
    expect(dev.configRead(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST).toBe(PCI_STATUS_CAP_LIST);
    expect(dev.configRead(PCI_CAPABILITY_LIST, 1)).toBe(0x40);
    expect(dev.configRead(MSI_CAP, 1)).toBe(0x05); // capability ID
    expect(dev.configRead(MSI_CAP + 1, 1)).toBe(0); // end of the list
    expect(dev.configRead(MSI_CAP + PCI_MSI_FLAGS, 2)).toBe(0x80); // 64-bit, disabled
    expect(dev.msiEnabled).toBe(false);
  });

  it("has no capability list without MSI", () => {
    const { dev } = rig(false);
    expect(dev.configRead(PCI_STATUS, 2)).toBe(0);
    expect(dev.configRead(PCI_CAPABILITY_LIST, 1)).toBe(0);
    dev.configWrite(MSI_CAP + PCI_MSI_FLAGS, 1, 2);
    expect(dev.msiEnabled).toBe(false);
  });

  it("returns the BAR's address, and ~(size - 1) while being sized", () => {
    const { dev } = rig();
    dev.bars[0]!.base = 0xc0001000; // as the host's placement would
    const bar0 = PCI_BASE_ADDRESS_0;
    expect(dev.configRead(bar0, 4)).toBe(0xc0001000);
    dev.configWrite(bar0, 0xffffffff, 4);
    expect(dev.configRead(bar0, 4)).toBe(0xfffff000);
    dev.configWrite(bar0, 0xc0001000, 4); // the driver restores the address: sizing ends
    expect(dev.configRead(bar0, 4)).toBe(0xc0001000);
    dev.configWrite(bar0 + 8, 0xffffffff, 4);
    expect(dev.configRead(bar0 + 8, 4)).toBe(0xffffff00);
    expect(dev.configRead(bar0 + 4, 4)).toBe(0); // unimplemented BAR1
    dev.configWrite(bar0 + 4, 0xffffffff, 4);
    expect(dev.configRead(bar0 + 4, 4)).toBe(0); // sizing an absent BAR still reads 0
  });

  it("rejects BARs that are not a power of two of at least 16 bytes", () => {
    const { ctx } = rig();
    expect(() => new BadBar(ctx, 0x30)).toThrow(RangeError);
    expect(() => new BadBar(ctx, 8)).toThrow(RangeError);
    expect(new BadBar(ctx, 16).bars[0]!.size).toBe(16);
  });

  it("decodes BAR accesses only with memory space enabled", () => {
    const { dev, log } = rig();
    const bar = dev.bars[0]!;
    expect(bar.ops.read(0, 4)).toBe(0xffffffff);
    bar.ops.write(4, 99, 4);
    expect(dev.regs[1]).toBe(0);
    expect(log.errors.map((e) => e.message)).toEqual([
      "read of BAR0+0x0 with memory decoding disabled",
      "write to BAR0+0x4 with memory decoding disabled",
    ]);
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    expect(dev.memoryEnabled).toBe(true);
    bar.ops.write(4, 99, 4);
    expect(bar.ops.read(4, 4)).toBe(99);
    expect(log.errors).toHaveLength(2);
  });

  it("keeps read-only registers read-only and logs the attempt", () => {
    const { dev, log } = rig();
    dev.configWrite(0, 0xffffffff, 4);
    dev.configWrite(PCI_STATUS, 0xffff, 2);
    dev.configWrite(PCI_INTERRUPT_PIN, 3, 1);
    expect(dev.configRead(0, 4)).toBe(0xabcd1234);
    expect(dev.configRead(PCI_INTERRUPT_PIN, 1)).toBe(1);
    expect(log.errors).toHaveLength(3);
    dev.configWrite(PCI_INTERRUPT_LINE, 11, 1);
    expect(dev.configRead(PCI_INTERRUPT_LINE, 1)).toBe(11);
    expect(log.errors).toHaveLength(3);
  });

  it("reflects command register bits", () => {
    const { dev } = rig();
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    expect([dev.memoryEnabled, dev.busMaster]).toEqual([true, true]);
    expect(dev.configRead(PCI_COMMAND, 2)).toBe(0x6);
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_MEMORY, 1);
    expect([dev.memoryEnabled, dev.busMaster]).toEqual([true, false]);
  });

  // Regression test for a bug the hw tests found (fixed).
  it("applies a dword write at the command register to the command bits", () => {
    const { dev, log } = rig();
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 4);
    expect(dev.command).toBe(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    expect(log.errors).toEqual([]);
  });

  it("makes only the enable bit of MSI control writable", () => {
    const { dev } = rig();
    dev.configWrite(MSI_CAP + PCI_MSI_FLAGS, 0xffff, 2);
    expect(dev.configRead(MSI_CAP + PCI_MSI_FLAGS, 2)).toBe(0x81);
    expect(dev.msiEnabled).toBe(true);
    dev.configWrite(MSI_CAP + PCI_MSI_FLAGS, 0, 2); // cannot clear the 64-bit bit
    expect(dev.configRead(MSI_CAP + PCI_MSI_FLAGS, 2)).toBe(0x80);
    dev.configWrite(MSI_CAP + PCI_MSI_ADDRESS_LO, 0xfee00000, 4);
    dev.configWrite(MSI_CAP + PCI_MSI_DATA_64, 0x1234, 2);
    expect(dev.configRead(MSI_CAP + PCI_MSI_ADDRESS_LO, 4)).toBe(0xfee00000);
    expect(dev.configRead(MSI_CAP + PCI_MSI_DATA_64, 2)).toBe(0x1234);
  });

  it("drives INTx level with raise and lower, and shows it in the status register", () => {
    const { dev, intc } = rig();
    intc.unmask(IRQ);
    dev.raise();
    expect(dev.intx.asserted).toBe(true);
    expect(intc.highestPending(0)).toBe(IRQ);
    expect(dev.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    dev.lower();
    expect(dev.intx.asserted).toBe(false);
    expect(intc.highestPending(0)).toBe(-1);
    expect(dev.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
  });

  it("masks INTx with the disable bit while the status bit still shows the interrupt", () => {
    const { dev } = rig();
    dev.raise();
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    expect(dev.intx.asserted).toBe(false);
    expect(dev.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    dev.configWrite(PCI_COMMAND, 0, 2);
    expect(dev.intx.asserted).toBe(true);
    dev.configWrite(PCI_COMMAND + 1, PCI_COMMAND_INTX_DISABLE >> 8, 1); // byte write to the high half
    expect(dev.intx.asserted).toBe(false);
  });

  it("sends an MSI write instead of INTx once MSI is enabled", () => {
    const { dev, intc, log } = rig();
    const v = intc.msiFirst + 2;
    intc.unmask(v);
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_MASTER, 2);
    enableMsi(dev, v);
    dev.raise();
    expect(intc.highestPending(0)).toBe(v);
    expect(dev.intx.asserted).toBe(false);
    expect(log.entries).toEqual([]);
  });

  it("drops an asserted INTx when MSI is enabled", () => {
    const { dev } = rig();
    dev.raise();
    expect(dev.intx.asserted).toBe(true);
    enableMsi(dev, 17);
    expect(dev.intx.asserted).toBe(false);
  });

  it("refuses to send MSI without bus mastering", () => {
    const { dev, intc, log } = rig();
    intc.unmask(17);
    enableMsi(dev, 17);
    dev.raise();
    expect(intc.highestPending(0)).toBe(-1);
    expect(log.errors.map((e) => e.message)).toEqual(["MSI not sent: bus mastering disabled"]);
  });

  it("refuses DMA without bus mastering and allows it with", () => {
    const { dev, log, ram } = rig();
    expect(dev.write(0x100, [1, 2])).toBe(false);
    expect(dev.read(0x100, 2)).toBeNull();
    expect(ram(0x100, 2)).toEqual(Uint8Array.of(0, 0));
    expect(log.errors).toHaveLength(2);
    expect(log.errors[0].message).toContain("bus mastering disabled");
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_MASTER, 2);
    expect(dev.write(0x100, [1, 2])).toBe(true);
    expect(dev.read(0x100, 2)).toEqual(Uint8Array.of(1, 2));
    expect(ram(0x100, 2)).toEqual(Uint8Array.of(1, 2));
  });

  it("returns to power-on state on reset", () => {
    const { dev } = rig();
    dev.configWrite(PCI_COMMAND, PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY, 2);
    dev.raise();
    dev.configWrite(MSI_CAP + PCI_MSI_FLAGS, 1, 2);
    expect(dev.msiEnabled).toBe(true);
    dev.reset();
    expect(dev.command).toBe(0);
    expect(dev.msiEnabled).toBe(false);
    expect(dev.configRead(MSI_CAP + PCI_MSI_FLAGS, 2)).toBe(0x80);
    expect(dev.intx.asserted).toBe(false);
    expect(dev.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
  });
});
