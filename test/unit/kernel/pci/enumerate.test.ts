import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../../../hw/machine/schema.ts";
import { PciDevice } from "../../../../hw/bus/pci.ts";
import { MmioRegion, type AccessSize } from "../../../../hw/mem/mmio.ts";
import { DmaPort } from "../../../../hw/dma/dma-port.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import {
  IORESOURCE_MEM, PCIBIOS_BAD_REGISTER_NUMBER, PCI_CAP_ID_MSI, PCI_COMMAND, PCI_INTERRUPT_LINE, PCI_VENDOR_ID,
  pci_find_capability, pci_get_device, pci_read_config_byte, pci_read_config_dword, pci_read_config_word,
  pci_resource_flags, pci_resource_len, pci_resource_start, pci_write_config_byte, pci_write_config_word,
} from "../../../../kernel/include/pci.ts";
import { pci_devices, pci_subsys_init } from "../../../../kernel/pci/probe.ts";
import { driver_core_summary } from "../../../../kernel/base/driver.ts";

/** A test-only PCI function: two memory BARs (0 and 2), optional MSI; records config accesses. */
class TestFn extends PciDevice {
  readonly cfgLog: string[] = [];
  constructor(board: Board, msi: boolean) {
    super("testfn", board.deviceContext("testfn"), { vendor: 0x1af4, device: 0x1050, revision: 1, classCode: 0x030000, msi });
    const ops = { read: () => 0x5a5a5a5a, write: () => {} };
    this.declareBar(0, new MmioRegion("testfn-bar0", 0x4000, ops, [4]));
    this.declareBar(2, new MmioRegion("testfn-bar2", 0x100, ops, [4]));
  }
  override configRead(off: number, size: AccessSize): number {
    const v = super.configRead(off, size);
    if (off >= 0x10 && off < 0x28) this.cfgLog.push(`r${off.toString(16)}=${(v >>> 0).toString(16)}`);
    return v;
  }
  override configWrite(off: number, value: number, size: AccessSize): void {
    if (off >= 0x10 && off < 0x28) this.cfgLog.push(`w${off.toString(16)}=${(value >>> 0).toString(16)}`);
    if (off === 0x04) this.cfgLog.push(`cmd=${value.toString(16)}`);
    super.configWrite(off, value, size);
  }
}

function plug(board: Board, slot: number, irq: number, dev: PciDevice): void {
  dev.dma = new DmaPort(board.mem, board.log, { name: dev.name, coherent: board.desc.dma.coherent, addressBits: 64 });
  dev.intx = board.intc.line(irq);
  board.pci.plug(slot, dev);
  board.pciDevices.push({ slot, irq, device: dev, requesterId: slot << 3, untrusted: false });
}

function boot(profile = "x86-coherent", edit: (d: MachineDesc) => void = () => {}, extra: (b: Board) => void = () => {}) {
  const desc = getProfile(profile);
  edit(desc);
  const board = new Board(desc, { seed: 1 });
  extra(board);
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  return { board, k };
}

describe("enumeration through ECAM", () => {
  it("finds the edu at 00:03.0 with its IDs, class, BAR, INTx line and MSI capability", () => {
    const { board, k } = boot();
    pci_subsys_init(k);
    const [pdev] = pci_devices(k);
    const bar0 = board.pciDevices[0].device.bars[0]!;
    expect(pdev).toMatchObject({ vendor: 0x1234, device: 0x11e8, class: 0xff0000, revision: 0x10, irq: 11, pin: 1, devfn: 3 << 3 });
    expect(pdev.dev.name).toBe("0000:00:03.0");
    expect(pdev.dev.bus).toBe("pci");
    expect(pdev.dev.dma_coherent).toBe(true);
    expect(pci_resource_start(pdev, 0)).toBe(bar0.base);
    expect(pci_resource_len(pdev, 0)).toBe(1 << 20);
    expect(pci_resource_flags(pdev, 0) & IORESOURCE_MEM).toBe(IORESOURCE_MEM);
    expect(pci_resource_len(pdev, 1)).toBe(0);
    expect(pdev.msi_cap).toBe(0x40);
    expect(pci_find_capability(pdev, PCI_CAP_ID_MSI)).toBe(0x40);
    expect(pci_get_device(0x1234, 0x11e8)).toBe(pdev);
    expect(pci_get_device(0x1234, 0x11e8, pdev)).toBeNull();
    // Config reads are MMIO and take virtual time, so the stamps advance.
    expect(k.printk.records.map((r) => r.prefix + r.text)).toEqual([
      "pci 0000:00:03.0: [1234:11e8] type 00 class 0xff0000",
      `pci 0000:00:03.0: BAR 0 [mem 0x${bar0.base.toString(16)}-0x${(bar0.base + (1 << 20) - 1).toString(16)}]`,
    ]);
    expect(k.printk.records[1].timeNs).toBeGreaterThan(k.printk.records[0].timeNs);
    expect(driver_core_summary(k).devices).toMatchObject([{ name: "0000:00:03.0", bus: "pci", driver: null }]);
  });

  it("reads config space with MMIO loads on CPU 0, charging CPU time", () => {
    const { k } = boot();
    pci_subsys_init(k);
    expect(k.exec.busyNs[0]).toBeGreaterThan(0);
    expect(k.exec.busyNs[1]).toBe(0);
  });

  it("marks devices non-coherent on a non-coherent machine", () => {
    const { k } = boot("arm64-noncoherent");
    expect(pci_devices(k)[0].dev.dma_coherent).toBe(false);
  });

  it("an empty bus has no devices; empty slots read as vendor 0xffff", () => {
    const { k } = boot("x86-coherent", (d) => (d.pci.devices = []));
    expect(pci_devices(k)).toEqual([]);
  });

  it("sizes BARs with the all-ones protocol, decoding off, restoring BAR and command", () => {
    let fn!: TestFn;
    const { k } = boot("x86-coherent", (d) => (d.pci.devices = []), (b) => {
      fn = new TestFn(b, false);
      plug(b, 5, 20, fn);
      fn.configWrite(PCI_COMMAND, 0x2, 2); // firmware left memory decoding on
      fn.cfgLog.length = 0;
    });
    const [pdev] = pci_devices(k);
    const base0 = fn.bars[0]!.base;
    const base2 = fn.bars[2]!.base;
    expect(pdev.dev.name).toBe("0000:00:05.0");
    expect(pdev.irq).toBe(20);
    expect(pdev.msi_cap).toBe(0);
    expect([pci_resource_start(pdev, 0), pci_resource_len(pdev, 0)]).toEqual([base0, 0x4000]);
    expect(pci_resource_len(pdev, 1)).toBe(0);
    expect([pci_resource_start(pdev, 2), pci_resource_len(pdev, 2)]).toEqual([base2, 0x100]);
    // decoding off, then for BAR0: read, all ones, read size, restore; ...; decoding back on
    expect(fn.cfgLog.slice(0, 5)).toEqual(["cmd=0", `r10=${base0.toString(16)}`, "w10=ffffffff", "r10=ffffc000", `w10=${base0.toString(16)}`]);
    expect(fn.cfgLog.at(-1)).toBe("cmd=2");
    expect(fn.configRead(0x10, 4)).toBe(base0); // sizing is over
  });

  it("finds several functions in slot order", () => {
    const { k } = boot("x86-coherent", () => {}, (b) => plug(b, 1, 9, new TestFn(b, true)));
    expect(pci_devices(k).map((p) => [p.dev.name, p.irq, p.msi_cap])).toEqual([
      ["0000:00:01.0", 9, 0x40],
      ["0000:00:03.0", 11, 0x40],
    ]);
  });
});

describe("config accessors", () => {
  it("read and write bytes, words and dwords; bad offsets read all ones and fail writes", () => {
    const { board, k } = boot();
    const [pdev] = pci_devices(k);
    expect(pci_read_config_word(pdev, PCI_VENDOR_ID)).toBe(0x1234);
    expect(pci_read_config_dword(pdev, 0)).toBe(0x11e81234);
    expect(pci_write_config_byte(pdev, PCI_INTERRUPT_LINE, 11)).toBe(0);
    expect(pci_read_config_byte(pdev, PCI_INTERRUPT_LINE)).toBe(11);
    expect(pci_write_config_word(pdev, PCI_COMMAND, 0x2)).toBe(0);
    expect(board.pciDevices[0].device.command).toBe(0x2);
    expect(pci_read_config_dword(pdev, 2)).toBe(0xffffffff);
    expect(pci_read_config_word(pdev, 4095)).toBe(0xffff);
    expect(pci_write_config_word(pdev, 3, 0)).toBe(PCIBIOS_BAD_REGISTER_NUMBER);
    expect(pci_write_config_byte(pdev, 4096, 0)).toBe(PCIBIOS_BAD_REGISTER_NUMBER);
  });
});
