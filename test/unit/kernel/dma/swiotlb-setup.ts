/**
 * A bare kernel with a swiotlb pool for the swiotlb tests: one device, a buffer source above
 * 4 GiB (NUMA node 1: arm64's own, and on x86 the 4-6 GiB range made node 1 so the page
 * allocator can be asked for it directly), and device-side and CPU-side views of memory.
 */
import { expect } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import type { MachineDesc } from "../../../../hw/machine/schema.ts";
import { device } from "../../../../kernel/include/device.ts";
import { PAGE_SIZE } from "../../../../kernel/include/types.ts";
import { copy_from_user, copy_to_user } from "../../../../kernel/mm/access.ts";
import { PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";
import { orderFor } from "../../../../kernel/mm/slab.ts";
import { swiotlb_init, swiotlb_info } from "../../../../kernel/dma/swiotlb.ts";

export type ProfileName = "x86-coherent" | "arm64-noncoherent";

export function setup(profile: ProfileName, edit?: (d: MachineDesc) => void, init = true) {
  const { board, kernel: k } = bareKernel(profile, (d) => {
    if (profile === "x86-coherent") d.memory.ram[1].node = 1;
    edit?.(d);
  });
  if (init) swiotlb_init(k);
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = board.desc.dma.coherent;
  dev.driver = { name: "testdrv" };
  const coherent = board.desc.dma.coherent;
  /** Physical address of fresh pages above 4 GiB. */
  const high = (size = PAGE_SIZE): number => {
    const p = k.pages.alloc(orderFor(size), 1);
    expect(p).toBeGreaterThanOrEqual(2 ** 32);
    return p;
  };
  const va = (phys: number): number => PAGE_OFFSET + phys;
  const devRead = (addr: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    expect(board.mem.deviceRead(addr, out, 0, len, coherent)).toBe(true);
    return out;
  };
  const devWrite = (addr: number, data: Uint8Array): void => {
    expect(board.mem.deviceWrite(addr, data, 0, data.length, coherent)).toBe(true);
  };
  const cpuRead = (phys: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    copy_to_user(out, va(phys), len);
    return out;
  };
  const cpuWrite = (phys: number, data: Uint8Array): void => {
    copy_from_user(va(phys), data);
  };
  const inPool = (addr: number): boolean => {
    const p = swiotlb_info(k);
    return p !== null && addr >= p.start && addr < p.end;
  };
  const kinds = () => k.findings.list.map((f) => f.kind);
  const dmesg = () => k.printk.dmesg().join("\n");
  return { board, k, dev, high, va, devRead, devWrite, cpuRead, cpuWrite, inPool, kinds, dmesg };
}

export const pattern = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 13 + seed * 31 + (i >> 8)) & 0xff);
