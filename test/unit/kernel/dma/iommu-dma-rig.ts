/** A booted kernel on an IOMMU profile with the edu PCI device, used as a plain DMA master. */
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../../../hw/machine/schema.ts";
import { boot } from "../../../../kernel/platform/boot.ts";
import { driver_core } from "../../../../kernel/base/core.ts";
import type { device } from "../../../../kernel/include/device.ts";
import type { DmaPort } from "../../../../hw/dma/dma-port.ts";

export function iommuRig(profile: "x86-iommu" | "arm64-iommu", edit?: (d: MachineDesc) => void) {
  const desc = getProfile(profile);
  edit?.(desc);
  const board = new Board(desc, { seed: 1 });
  const kernel = boot(board, { logLevel: "silent" });
  kernel.enter();
  const dev = driver_core(kernel).devices.find((d) => d.dev.bus === "pci")!.dev as device;
  const port: DmaPort = board.pciDevices[0].device.dma;
  const read = (addr: number, len: number): Uint8Array | null => {
    const b = new Uint8Array(len);
    return port.read(addr, b, 0, len) ? b : null;
  };
  const write = (addr: number, bytes: Uint8Array): boolean => port.write(addr, bytes, 0, bytes.length);
  return { board, kernel, dev, port, read, write };
}
