import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../../../hw/machine/schema.ts";
import { PciDevice } from "../../../../hw/bus/pci.ts";
import { MmioRegion } from "../../../../hw/mem/mmio.ts";
import { DmaPort } from "../../../../hw/dma/dma-port.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { EINVAL, ENOSPC } from "../../../../kernel/include/errno.ts";
import { writel } from "../../../../kernel/include/io.ts";
import {
  PCI_COMMAND_INTX_DISABLE, PCI_IRQ_ALL_TYPES, PCI_IRQ_INTX, PCI_IRQ_LEGACY, PCI_IRQ_MSI, PCI_IRQ_MSIX,
  PCI_DEVICE, pci_alloc_irq_vectors, pci_enable_device, pci_free_irq_vectors, pci_iomap, pci_irq_vector,
  pci_register_driver, pci_set_master, pci_unregister_driver, pcim_enable_device, type pci_dev, type pci_driver,
} from "../../../../kernel/include/pci.ts";
import { pci_state } from "../../../../kernel/pci/pci-dev.ts";

const EDU_IRQ_RAISE = 0x60;

/** A test-only function without MSI whose interrupt the test raises directly. */
class IntxFn extends PciDevice {
  constructor(board: Board, msi = false) {
    super("intxfn", board.deviceContext("intxfn"), { vendor: 0x1af4, device: 0x1000, revision: 0, classCode: 0x020000, msi });
    this.declareBar(0, new MmioRegion("intxfn-bar0", 0x100, { read: () => 0, write: () => {} }, [4]));
  }
  fire(): void {
    this.raiseIrq();
  }
}

function boot(edit: (d: MachineDesc) => void = () => {}, extra?: (b: Board) => PciDevice) {
  const desc = getProfile("arm64-noncoherent");
  edit(desc);
  const board = new Board(desc, { seed: 1 });
  const fn = extra?.(board);
  if (fn) {
    fn.dma = new DmaPort(board.mem, board.log, { name: fn.name, coherent: false, addressBits: 64 });
    fn.intx = board.intc.line(7);
    board.pci.plug(4, fn);
    board.pciDevices.push({ slot: 4, irq: 7, device: fn, requesterId: 4 << 3, untrusted: false });
  }
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  return { board, k };
}

/** Probe every matching function with `probe`, run it, return the pci_devs probed. */
async function bindAll(k: Kernel, probe: (pdev: pci_dev) => number, ids = [PCI_DEVICE(0x1234, 0x11e8)]): Promise<pci_driver> {
  const drv: pci_driver = { name: "t", id_table: ids, probe };
  void pci_register_driver(drv);
  await k.run();
  return drv;
}

describe("MSI", () => {
  it("programs the capability (address, data, enable), disables INTx, and pdev.irq becomes the vector", async () => {
    const { board, k } = boot();
    const edu = board.pciDevices[0].device;
    let rc = 0;
    let vec = 0;
    await bindAll(k, (pdev) => {
      rc = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
      vec = pci_irq_vector(pdev, 0);
      return 0;
    });
    const pdev = pci_state(k).devices[0];
    const cfg = new DataView(edu.config.buffer);
    expect(rc).toBe(1);
    expect(vec).toBe(k.platform.msiFirst);
    expect(pdev.irq).toBe(vec);
    expect(pdev.msi_enabled).toBe(true);
    expect(edu.msiEnabled).toBe(true);
    expect(cfg.getUint32(0x44, true)).toBe(k.platform.msiAddress % 2 ** 32);
    expect(cfg.getUint32(0x48, true)).toBe(Math.floor(k.platform.msiAddress / 2 ** 32));
    expect(cfg.getUint16(0x4c, true)).toBe(vec);
    expect(edu.command & PCI_COMMAND_INTX_DISABLE).toBe(PCI_COMMAND_INTX_DISABLE);
    expect(pci_irq_vector(pdev, 1)).toBe(-EINVAL);
  });

  it("an MSI write from the device raises the chosen vector in the interrupt controller", async () => {
    const { board, k } = boot();
    let vec = 0;
    await bindAll(k, (pdev) => {
      pci_enable_device(pdev);
      pci_set_master(pdev); // MSI is a bus-master write
      pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
      vec = pci_irq_vector(pdev, 0);
      writel(1, pci_iomap(pdev, 0, 0) + EDU_IRQ_RAISE);
      return 0;
    });
    expect(board.intc.pending[vec]).toBe(1);
    expect(board.intc.input[11]).toBe(0); // INTx stayed quiet
    expect(board.log.errors).toEqual([]);
  });

  it("hands out distinct vectors and -ENOSPC when the controller has none left", async () => {
    const { k } = boot((d) => (d.interrupts.msiVectors = 1), (b) => new IntxFn(b, true));
    const rcs: number[] = [];
    await bindAll(k, (pdev) => (rcs.push(pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI)), 0), [PCI_DEVICE(0x1234, 0x11e8), PCI_DEVICE(0x1af4, 0x1000)]);
    expect(rcs).toEqual([1, -ENOSPC]);
  });

  it("falls back to INTx when MSI vectors run out and INTx is allowed", async () => {
    const { k } = boot((d) => (d.interrupts.msiVectors = 1), (b) => new IntxFn(b, true));
    const got: [number, number][] = [];
    await bindAll(k, (pdev) => {
      const n = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_ALL_TYPES);
      got.push([n, pci_irq_vector(pdev, 0)]);
      return 0;
    }, [PCI_DEVICE(0x1234, 0x11e8), PCI_DEVICE(0x1af4, 0x1000)]);
    // edu (slot 3) is probed first and takes the only MSI vector; slot 4 falls back to line 7.
    expect(got).toEqual([[1, k.platform.msiFirst], [1, 7]]);
  });

  it("pci_free_irq_vectors disables MSI, frees the vector and restores INTx", async () => {
    const { board, k } = boot();
    const edu = board.pciDevices[0].device;
    await bindAll(k, (pdev) => {
      pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
      pci_free_irq_vectors(pdev);
      return 0;
    });
    const pdev = pci_state(k).devices[0];
    expect(edu.msiEnabled).toBe(false);
    expect(edu.command & PCI_COMMAND_INTX_DISABLE).toBe(0);
    expect(pdev.irq).toBe(11);
    expect(pdev.msi_enabled).toBe(false);
    expect(pci_state(k).msiUsed.size).toBe(0);
  });

  it("allocating twice without freeing warns and fails with -EINVAL", async () => {
    const { k } = boot();
    const rcs: number[] = [];
    await bindAll(k, (pdev) => {
      rcs.push(pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI), pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI));
      return 0;
    });
    expect(rcs).toEqual([1, -EINVAL]);
    expect(k.warnings).toBe(1);
  });

  it("after pcim_enable_device the vector is freed on unbind", async () => {
    const { board, k } = boot();
    const drv = await bindAll(k, (pdev) => (pcim_enable_device(pdev), pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI), 0));
    expect(pci_state(k).msiUsed.size).toBe(1);
    void pci_unregister_driver(drv);
    await k.run();
    expect(pci_state(k).msiUsed.size).toBe(0);
    expect(board.pciDevices[0].device.msiEnabled).toBe(false);
  });

  it("bad arguments and MSI-X (not modelled) are refused", async () => {
    const { k } = boot();
    const rcs: number[] = [];
    await bindAll(k, (pdev) => {
      rcs.push(pci_alloc_irq_vectors(pdev, 0, 1, PCI_IRQ_MSI));
      rcs.push(pci_alloc_irq_vectors(pdev, 2, 1, PCI_IRQ_MSI));
      rcs.push(pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX));
      rcs.push(pci_alloc_irq_vectors(pdev, 2, 4, PCI_IRQ_MSI)); // multi-message MSI not modelled
      return 0;
    });
    expect(rcs).toEqual([-EINVAL, -EINVAL, -EINVAL, -ENOSPC]);
  });
});

describe("INTx", () => {
  it("a function without MSI gets its wired line; the device's interrupt asserts it", async () => {
    const { board, k } = boot(() => {}, (b) => new IntxFn(b));
    const got: number[] = [];
    await bindAll(k, (pdev) => {
      got.push(pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI));
      got.push(pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_ALL_TYPES), pci_irq_vector(pdev, 0));
      return 0;
    }, [PCI_DEVICE(0x1af4, 0x1000)]);
    expect(got).toEqual([-EINVAL, 1, 7]);
    (board.pciDevices[1].device as IntxFn).fire();
    expect(board.intc.input[7]).toBe(1);
    expect(board.intc.pending[7]).toBe(1);
  });

  it("PCI_IRQ_LEGACY is PCI_IRQ_INTX and needs min == 1", async () => {
    const { k } = boot();
    const rcs: number[] = [];
    await bindAll(k, (pdev) => (rcs.push(pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_LEGACY), pci_alloc_irq_vectors(pdev, 2, 2, PCI_IRQ_INTX)), 0));
    expect(PCI_IRQ_LEGACY).toBe(PCI_IRQ_INTX);
    expect(rcs).toEqual([1, -ENOSPC]);
  });
});
