/**
 * edu on the platform bus, qtest style: the board built from a machine description with a
 * `platform` edu, registers and the virtual clock, no kernel. Offsets are re-declared from
 * SPEC.md rather than imported from the model.
 */

import { describe, expect, it } from "vitest";
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import { MachineConfigError } from "../../hw/machine/load.ts";
import type { MachineDesc } from "../../hw/machine/schema.ts";
import { MEM_CACHED, MEM_UNCACHED } from "../../hw/cpu/memory-types.ts";
import { EduPlatformDevice } from "../../hw/dev/edu/edu-platform.ts";
import { EDU_REGISTERS } from "../../hw/dev/edu/edu-regs.ts";
import type { AccessSize } from "../../hw/mem/mmio.ts";

const ID = 0x00;
const LIVENESS = 0x04;
const FACT = 0x08;
const STATUS = 0x20;
const IRQ_STATUS = 0x24;
const IRQ_RAISE = 0x60;
const IRQ_ACK = 0x64;
const DMA_SRC = 0x80;
const DMA_DST = 0x88;
const DMA_CNT = 0x90;
const DMA_CMD = 0x98;
const BUF = 0x40000;

const BASE = 0xd0000000;
const IRQ = 12;
const RAM_A = 0x100000;
const RAM_B = 0x200000;

interface Rig {
  board: Board;
  edu: EduPlatformDevice;
  read(off: number, size?: AccessSize): number;
  write(off: number, value: number, size?: AccessSize): void;
  dma(src: number, dst: number, count: number, cmd: number): void;
  ramBytes(addr: number, len: number): Uint8Array;
  level(): number;
}

function desc(opts: { coherent?: boolean; size?: number; pci?: boolean; trace?: boolean } = {}): MachineDesc {
  const d = getProfile(opts.coherent ? "x86-coherent" : "arm64-noncoherent");
  if (!opts.pci) d.pci.devices = [];
  d.platform = [{ name: "edu0", model: "edu", base: BASE, size: opts.size ?? 0x100000, irq: IRQ }];
  return d;
}

function rig(opts: Parameters<typeof desc>[0] = {}): Rig {
  const board = new Board(desc(opts), { seed: 1, trace: opts.trace });
  const edu = board.platformDevices[0].device as EduPlatformDevice;
  const write = (off: number, value: number, size: AccessSize = 4): void => board.mem.mmioWrite(0, BASE + off, value, size);
  return {
    board,
    edu,
    read: (off, size = 4) => board.mem.mmioRead(0, BASE + off, size),
    write,
    dma: (src, dst, count, cmd) => {
      write(DMA_SRC, src, 8);
      write(DMA_DST, dst, 8);
      write(DMA_CNT, count, 8);
      write(DMA_CMD, cmd, 4);
    },
    ramBytes: (addr, len) => {
      const out = new Uint8Array(len);
      board.map.ram.read(addr, out, 0, len);
      return out;
    },
    level: () => board.intc.input[IRQ],
  };
}

function pattern(n: number, seed = 7): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 31 + seed) & 0xff;
  return a;
}

describe("platform edu: wiring from the machine description", () => {
  it("is listed with its entry, and its registers answer at the configured base with no setup", () => {
    const r = rig();
    expect(r.board.pciDevices).toEqual([]);
    expect(r.board.platformDevices).toMatchObject([{ name: "edu0", base: BASE, size: 0x100000, irq: IRQ }]);
    expect(r.edu.region.base).toBe(BASE);
    expect(r.edu.region.size).toBe(0x100000);
    expect(r.edu.dmaBits).toBe(28);
    // No command register: the window decodes from power-on.
    expect(r.read(ID)).toBe(0x010000ed);
    r.write(LIVENESS, 0x12345678);
    expect(r.read(LIVENESS)).toBe(0xedcba987);
    expect(r.board.log.entries).toEqual([]);
  });

  it("maps exactly the entry's size: past it nothing decodes", () => {
    const r = rig({ size: 0x1000 });
    expect(r.edu.region.size).toBe(0x1000);
    expect(r.read(0xffc)).toBe(0xffffffff); // inside the window, no register: a guest error
    expect(r.board.log.errors).toHaveLength(1);
    expect(() => r.read(0x1000)).toThrow(/bus error/);
  });

  it("rejects a window smaller than 4 KiB as a configuration error naming the field", () => {
    let err: unknown;
    try {
      new Board(desc({ size: 0xa0 }), { seed: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MachineConfigError);
    const issues = (err as MachineConfigError).issues;
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toBe("platform[0].size");
    expect(issues[0].message).toMatch(/at least 4 KiB \(0x1000\).*found 0xa0/);
    expect(() => new Board(desc({ size: 0xfff }), { seed: 1 })).toThrow(MachineConfigError);
    expect(() => new Board(desc({ size: 0x1000 }), { seed: 1 })).not.toThrow();
  });

  it("refuses a too-small window when built directly, too", () => {
    const b = new Board(desc(), { seed: 1 });
    expect(() => new EduPlatformDevice(b.deviceContext("x"), { name: "x", size: 0x800 })).toThrow(RangeError);
  });

  it("sits beside a PCI edu without either noticing the other", () => {
    const r = rig({ pci: true });
    expect(r.board.pciDevices).toHaveLength(1);
    const bar0 = r.board.pciDevices[0].device.bars[0]!.base;
    expect(bar0).not.toBe(BASE);
    r.write(LIVENESS, 1);
    expect(r.read(LIVENESS)).toBe(0xfffffffe);
    r.board.mem.mmioWrite(0, 0xe0000000 + (3 << 15) + 0x04, 0x2, 2); // PCI memory decoding
    expect(r.board.mem.mmioRead(0, bar0 + LIVENESS, 4)).toBe(0);
    expect(r.board.log.entries).toEqual([]);
  });
});

describe("platform edu: the interrupt line", () => {
  it("is level: asserted while IRQ_STATUS is non-zero, dropped by the last acknowledge", () => {
    const r = rig();
    expect(r.level()).toBe(0);
    r.write(IRQ_RAISE, 0x5);
    expect(r.level()).toBe(1);
    expect(r.edu.irqAsserted).toBe(true);
    expect(r.board.intc.pending[IRQ]).toBe(1);
    r.write(IRQ_ACK, 0x1);
    expect(r.level()).toBe(1);
    r.write(IRQ_ACK, 0x4);
    expect(r.level()).toBe(0);
    expect(r.edu.irqAsserted).toBe(false);
    expect(r.board.log.entries).toEqual([]);
  });

  it("raises FACT when a factorial finishes with STATUS.IRQ_FACT set, and sends no MSI", () => {
    const r = rig();
    r.write(STATUS, 0x80);
    r.write(FACT, 6);
    expect(r.level()).toBe(0);
    r.board.scheduler.runFor(999);
    expect(r.level()).toBe(0);
    r.board.scheduler.runFor(1);
    expect(r.read(FACT)).toBe(720);
    expect(r.read(IRQ_STATUS)).toBe(0x1);
    expect(r.level()).toBe(1);
    const msi = r.board.intc.msiFirst;
    expect([...r.board.intc.pending.subarray(msi)].every((p) => p === 0)).toBe(true);
    expect(r.board.mem.stats.deviceWriteBytes).toBe(0);
  });
});

describe("platform edu: DMA without any PCI setup (always a bus master)", () => {
  it("copies RAM to the buffer and back, raising DMA on completion", () => {
    const r = rig();
    const data = pattern(200);
    r.board.mem.cpuWrite(0, RAM_A, data, 0, data.length, MEM_UNCACHED);
    r.dma(RAM_A, BUF, 200, 0x1);
    r.board.scheduler.runFor(250 + 200);
    expect(r.read(DMA_CMD) & 1).toBe(0);
    r.dma(BUF, RAM_B, 200, 0x7);
    r.board.scheduler.runUntilIdle();
    expect(r.ramBytes(RAM_B, 200)).toEqual(data);
    expect(r.read(IRQ_STATUS)).toBe(0x100);
    expect(r.level()).toBe(1);
    r.write(IRQ_ACK, 0x100);
    expect(r.level()).toBe(0);
    expect(r.board.log.entries).toEqual([]);
  });

  it("applies the 28-bit engine mask itself, with a guest error", () => {
    const r = rig();
    const data = pattern(32, 3);
    r.board.mem.cpuWrite(0, 0x3000, data, 0, 32, MEM_UNCACHED);
    r.dma(0x10000000 + 0x3000, BUF, 32, 0x1);
    r.board.scheduler.runUntilIdle();
    expect(r.board.log.errors.map((e) => e.message)).toEqual([expect.stringMatching(/28-bit mask/)]);
    r.dma(BUF, RAM_B, 32, 0x3);
    r.board.scheduler.runUntilIdle();
    expect(r.ramBytes(RAM_B, 32)).toEqual(data);
  });

  it.each([
    [false, false, new Uint8Array(64)],
    [false, true, pattern(64, 5)],
    [true, false, pattern(64, 5)],
  ])("coherent=%s, cleaned=%s: sees what the machine's coherence lets it see", (coherent, clean, want) => {
    const r = rig({ coherent });
    r.board.mem.cpuWrite(0, RAM_A, pattern(64, 5), 0, 64, MEM_CACHED); // dirty in CPU 0's L1
    if (clean) r.board.mem.cacheClean(0, RAM_A, 64);
    r.dma(RAM_A, BUF, 64, 0x1);
    r.board.scheduler.runUntilIdle();
    r.dma(BUF, RAM_B, 64, 0x3);
    r.board.scheduler.runUntilIdle();
    expect(r.ramBytes(RAM_B, 64)).toEqual(want);
  });
});

describe("platform edu: reset and trace", () => {
  it("reset restores the spec table, cancels work and drops the line", () => {
    const r = rig();
    r.write(LIVENESS, 1);
    r.write(STATUS, 0x80);
    r.write(FACT, 9);
    r.write(IRQ_RAISE, 0x8);
    r.dma(RAM_A, BUF, 32, 0x5);
    expect(r.level()).toBe(1);
    r.edu.reset();
    for (const reg of EDU_REGISTERS) expect(r.edu.peek(reg.offset, reg.size), reg.name).toBe(reg.access === "WO" ? 0xffffffff : reg.reset);
    expect(r.level()).toBe(0);
    r.board.scheduler.runUntilIdle();
    expect(r.board.scheduler.now).toBe(0);
    expect(r.board.log.entries).toEqual([]);
  });

  it("gives its DMA spans ids distinct from a PCI edu's", () => {
    const r = rig({ pci: true, trace: true });
    const bar0 = r.board.pciDevices[0].device.bars[0]!.base;
    r.board.mem.mmioWrite(0, 0xe0000000 + (3 << 15) + 0x04, 0x6, 2); // PCI memory + bus master
    const pciWrite = (off: number, v: number, size: AccessSize): void => r.board.mem.mmioWrite(0, bar0 + off, v, size);
    pciWrite(DMA_SRC, RAM_A, 8);
    pciWrite(DMA_DST, BUF, 8);
    pciWrite(DMA_CNT, 16, 8);
    pciWrite(DMA_CMD, 0x1, 4);
    r.dma(RAM_B, BUF, 16, 0x1);
    r.board.scheduler.runUntilIdle();
    const events = (JSON.parse(r.board.trace.toJSON()) as { traceEvents: { name: string; ph: string; id?: number; tid: number }[] }).traceEvents;
    const begins = events.filter((e) => e.name === "dma_transfer" && e.ph === "b");
    expect(begins).toHaveLength(2);
    expect(new Set(begins.map((e) => e.id)).size).toBe(2);
    expect(new Set(begins.map((e) => e.tid)).size).toBe(2);
  });
});
