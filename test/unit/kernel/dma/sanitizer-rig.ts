/**
 * The coherence sanitizer test rig: a bare kernel with the sanitizer on and a device played by
 * a DmaPort attached by hand, plus the small helpers the cause and effect tests share.
 */
import { expect } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { DmaPort } from "../../../../hw/dma/dma-port.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import type { FindingKind } from "../../../../kernel/core/findings.ts";
import { device } from "../../../../kernel/include/device.ts";
import type { dma_addr_t, vaddr_t } from "../../../../kernel/include/types.ts";
import { copy_to_user } from "../../../../kernel/mm/access.ts";
import { dma_map_single, dma_mapping_error, type dma_data_direction } from "../../../../kernel/include/dma-mapping.ts";
import { dma_sanitizer_init } from "../../../../kernel/dma/sanitizer/index.ts";

export type Profile = "arm64-noncoherent" | "x86-coherent";

export function setup(profile: Profile = "arm64-noncoherent", seed = 1, noisy = false) {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  desc.platform = [];
  if (noisy) {
    desc.cpus.evictionRate = 0.05;
    desc.cpus.prefetchRate = 0.5;
  }
  const board = new Board(desc, { seed });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  const san = dma_sanitizer_init(k);
  const dev = new device("0000:00:05.0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  dev.driver = { name: "testdrv" };
  const port = new DmaPort(board.mem, board.log, { name: "dev5", coherent: desc.dma.coherent, addressBits: 64 });
  san.attachPort(port, dev);
  const map = (va: vaddr_t, size: number, dir: dma_data_direction): dma_addr_t => {
    const h = dma_map_single(dev, va, size, dir);
    expect(dma_mapping_error(dev, h)).toBe(0);
    return h;
  };
  const devWrite = (addr: number, data: Uint8Array): void => void expect(port.write(addr, data, 0, data.length)).toBe(true);
  const devRead = (addr: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    expect(port.read(addr, out, 0, len)).toBe(true);
    return out;
  };
  const cpuRead = (va: vaddr_t, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    copy_to_user(out, va, len);
    return out;
  };
  const ram = (phys: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    board.map.ram.read(phys, out, 0, len);
    return out;
  };
  const kinds = (): FindingKind[] => k.findings.list.map((f) => f.kind);
  const only = (kind: FindingKind) => k.findings.list.filter((f) => f.kind === kind);
  return { board, k, san, dev, port, map, devWrite, devRead, cpuRead, ram, kinds, only };
}

