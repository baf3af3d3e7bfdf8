/** Boot a kernel on an IOMMU profile and find the first PCI device's struct device and DMA port. */
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../../../hw/machine/schema.ts";
import { boot } from "../../../../kernel/platform/boot.ts";
import { pci_devices } from "../../../../kernel/pci/probe.ts";
import { PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";
import type { Kernel } from "../../../../kernel/core/kernel.ts";
import type { device } from "../../../../kernel/include/device.ts";
import type { DmaPort } from "../../../../hw/dma/dma-port.ts";

export interface IommuRig {
  board: Board;
  k: Kernel;
  dev: device;
  port: DmaPort;
  /** A fresh physical page (kernel page allocator). */
  page(): number;
  /** Device writes 8 bytes at bus address `iova`; false when aborted. */
  devWrite(iova: number, v: number): boolean;
  /** Device reads 8 bytes at bus address `iova`; null when aborted. */
  devRead(iova: number): number | null;
  /** What RAM holds at `phys` (bypassing caches). */
  ram64(phys: number): number;
  dmesg(): string[];
}

export function iommuRig(profile = "x86-iommu", edit?: (d: MachineDesc) => void): IommuRig {
  const desc = getProfile(profile);
  edit?.(desc);
  const board = new Board(desc, { seed: 1 });
  const k = boot(board, { logLevel: "silent" });
  const dev = pci_devices(k)[0]!.dev;
  const port = board.pciDevices[0]!.device.dma;
  return {
    board,
    k,
    dev,
    port,
    page: () => {
      const p = k.pages.alloc(0, 0);
      if (p < 0) throw new Error("out of pages");
      return p;
    },
    devWrite: (iova, v) => port.writeLe(iova, v, 8),
    devRead: (iova) => {
      const b = new Uint8Array(8);
      if (!port.read(iova, b, 0, 8)) return null;
      return Number(new DataView(b.buffer).getBigUint64(0, true));
    },
    ram64: (phys) => {
      const b = new Uint8Array(8);
      k.platform.peekRam(phys, b, 0, 8);
      return Number(new DataView(b.buffer).getBigUint64(0, true));
    },
    dmesg: () => k.printk.dmesg(),
  };
}

export const linear = (phys: number): number => PAGE_OFFSET + phys;
