/**
 * The IOMMU between a board's DMA ports and memory (hw/iommu/SPEC.md section 9): a device's
 * transfer is split at 4 KiB IOVA pages, each chunk translated with the port's requester id,
 * an abort fails the transfer without a guest error, MSI writes bypass translation, and the
 * observer sees both the physical and the bus address. Tables are hand-built in RAM.
 */

import { describe, expect, it } from "vitest";
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import type { DmaPort } from "../../hw/dma/dma-port.ts";

// ---- SPEC.md sections 1, 3, 4
const GCMD = 0x010;
const CTX_BASE = 0x018;
const TE = 1;
const P = 1;
const RD = 2;
const WR = 4;
const XLATE = 2;
const PAGE = 4096;

const CTX_TABLE = 0x10000;
const PT_POOL = 0x100000;

function rig(profile = "x86-iommu") {
  const board = new Board(getProfile(profile), { seed: 1 });
  const io = board.iommu!;
  const ram = board.map.ram;
  let nextTable = PT_POOL;
  const put64 = (addr: number, v: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    ram.write(addr, b, 0, 8);
  };
  const get64 = (addr: number) => {
    const b = new Uint8Array(8);
    ram.read(addr, b, 0, 8);
    return Number(new DataView(b.buffer).getBigUint64(0, true));
  };
  const newTable = () => {
    const t = nextTable;
    nextTable += PAGE;
    ram.fill(t, 0, PAGE);
    return t;
  };
  const root = newTable();
  const map = (iova: number, phys: number, perm: number) => {
    let t = root;
    for (let level = 4; level > 1; level--) {
      const slot = t + 8 * (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512);
      if ((get64(slot) & P) === 0) put64(slot, newTable() + P + RD + WR);
      t = Math.floor(get64(slot) / PAGE) * PAGE;
    }
    put64(t + 8 * (Math.floor(iova / PAGE) % 512), phys + P + perm);
  };
  const port: DmaPort = board.pciDevices[0]!.device.dma;
  const rid = board.pciDevices[0]!.requesterId;
  put64(CTX_TABLE + 16 * rid, root + P + (XLATE << 1));
  put64(CTX_TABLE + 16 * rid + 8, 7); // domain 7
  const enable = () => {
    io.region.ops.write(CTX_BASE, CTX_TABLE, 8);
    io.region.ops.write(GCMD, TE, 4);
  };
  return { board, io, ram, port, rid, map, enable };
}

describe("IOMMU in front of the DMA ports", () => {
  it("every port carries its requester id and the IOMMU as translator", () => {
    const { board, port, rid } = rig();
    expect(rid).toBe(3 << 3); // edu at slot 3, function 0
    expect(port.requesterId).toBe(rid);
    expect(port.translator).toBe(board.iommu);
    expect(new Board(getProfile("x86-coherent"), { seed: 1 }).pciDevices[0]!.device.dma.translator).toBeNull();
  });

  it("translation off: bus address = physical address", () => {
    const { ram, port } = rig();
    ram.fill(0x200000, 0x11, 16);
    const got = new Uint8Array(16);
    expect(port.read(0x200000, got, 0, 16)).toBe(true);
    expect([...got]).toEqual(new Array(16).fill(0x11));
  });

  it("a transfer across IOVA pages lands on the pages the table names, chunk by chunk", () => {
    const { ram, port, map, enable, io } = rig();
    // IOVA 0x40000000..+8 KiB -> two physical pages in reverse order
    map(0x40000000, 0x300000, RD | WR);
    map(0x40001000, 0x200000, RD | WR);
    enable();
    const seen: [number, number, number][] = [];
    port.observer = { onDeviceAccess: (_p, a, l, _w, bus) => void seen.push([a, l, bus]) };
    const data = new Uint8Array(256).map((_, i) => i);
    expect(port.write(0x40000f80, data, 0, 256)).toBe(true);
    expect(seen).toEqual([[0x300f80, 128, 0x40000f80], [0x200000, 128, 0x40001000]]);
    const back = new Uint8Array(128);
    ram.read(0x200000, back, 0, 128);
    expect([...back]).toEqual([...data.subarray(128)]);
    expect(io.stats.translations).toBe(2);
  });

  it("an abort fails the transfer, moves nothing after it, and is not a guest error", () => {
    const { board, ram, port, map, enable, io } = rig();
    map(0x40000000, 0x300000, RD); // read-only
    enable();
    ram.fill(0x300000, 0xaa, PAGE);
    const data = new Uint8Array(64).fill(0x55);
    expect(port.write(0x40000000, data, 0, 64)).toBe(false);
    expect(port.iommuAborts).toBe(1);
    const after = new Uint8Array(64);
    ram.read(0x300000, after, 0, 64);
    expect([...after]).toEqual(new Array(64).fill(0xaa));
    // a read spanning a mapped and an unmapped page: the first chunk arrives, the transfer fails
    const got = new Uint8Array(8192);
    expect(port.read(0x40000000, got, 0, 8192)).toBe(false);
    expect(got[0]).toBe(0xaa);
    expect(io.stats.faults).toBe(2);
    expect(board.log.entries).toEqual([]);
  });

  it("MSI writes reach the interrupt controller untranslated; reads of the window are translated", () => {
    const { board, port, enable, io } = rig();
    enable();
    const msi = board.desc.interrupts.msiBase;
    expect(port.writeLe(msi, board.intc.msiFirst, 4)).toBe(true);
    expect(io.stats.translations).toBe(0);
    expect(port.readLe(msi, 4)).toBe(-1);
    expect(io.stats.faults).toBe(1);
  });
});
