/**
 * rogue device tests, qtest style: registers and the virtual clock on a board, no kernel.
 * Offsets are re-declared here from hw/dev/rogue/SPEC.md rather than imported from the model.
 */

import { describe, expect, it } from "vitest";
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import type { AccessSize } from "../../hw/mem/mmio.ts";
import { RogueDevice } from "../../hw/dev/rogue/rogue.ts";
import { ROGUE_REGISTERS } from "../../hw/dev/rogue/rogue-regs.ts";

// ---- SPEC.md sections 1 to 7
const ID = 0x00;
const STATUS = 0x04;
const IRQ_STATUS = 0x08;
const IRQ_ENABLE = 0x0c;
const DMA_SRC = 0x10;
const DMA_DST = 0x18;
const DMA_LEN = 0x20;
const DMA_CMD = 0x24;
const ERR_COUNT = 0x28;
const ERR_ADDR = 0x30;
const BUF = 0x1000;
const DONE = 0x1;
const ERROR = 0x2;
const GO = 0x1;
const TO_MEM = 0x2;
const dmaNs = (len: number): number => 200 + Math.ceil(len / 2);

const SLOT = 5;
const IRQ = 12;
const CMD_MEM = 0x2;
const CMD_MASTER = 0x4;
const RAM = 0x200000; // a free spot in low RAM

function rig(opts: { profile?: string; msi?: boolean; command?: number } = {}) {
  const desc = getProfile(opts.profile ?? "x86-coherent");
  desc.pci.devices = [{ slot: SLOT, model: "rogue", irq: IRQ, msi: opts.msi ?? false }];
  const board = new Board(desc, { seed: 1 });
  const dev = board.pciDevices[0]!.device as RogueDevice;
  const ecam = (off: number) => desc.pci.ecamBase + (SLOT << 15) + off;
  board.mem.mmioWrite(0, ecam(0x04), opts.command ?? CMD_MEM | CMD_MASTER, 2);
  const bar0 = dev.bars[0]!.base;
  const rd = (off: number, size: AccessSize = 4) => board.mem.mmioRead(0, bar0 + off, size);
  const wr = (off: number, v: number, size: AccessSize = 4) => board.mem.mmioWrite(0, bar0 + off, v, size);
  const ram = (addr: number, len: number) => {
    const out = new Uint8Array(len);
    board.map.ram.read(addr, out, 0, len);
    return out;
  };
  const dma = (src: number, dst: number, len: number, cmd: number) => {
    wr(DMA_SRC, src, 8);
    wr(DMA_DST, dst, 8);
    wr(DMA_LEN, len);
    wr(DMA_CMD, cmd);
  };
  return { board, dev, desc, ecam, rd, wr, ram, dma, line: () => board.intc.input[IRQ] };
}

function pattern(n: number, seed = 3): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 29 + seed) & 0xff;
  return a;
}

describe("rogue identification and registers", () => {
  it("shows its PCI IDs, class, an 8 KiB BAR0, and every register at its reset value", () => {
    const r = rig();
    expect(r.board.mem.mmioRead(0, r.ecam(0), 4)).toBe(0xbad11234);
    expect(r.board.mem.mmioRead(0, r.ecam(0x09), 4) & 0xffffff).toBe(0x028000);
    r.board.mem.mmioWrite(0, r.ecam(0x10), 0xffffffff, 4);
    expect(r.board.mem.mmioRead(0, r.ecam(0x10), 4)).toBe(~(0x2000 - 1) >>> 0);
    expect(r.rd(ID)).toBe(0x52470001);
    for (const off of [STATUS, IRQ_STATUS, IRQ_ENABLE, DMA_SRC, DMA_DST, DMA_LEN, DMA_CMD, ERR_COUNT, ERR_ADDR]) expect(r.rd(off), `0x${off.toString(16)}`).toBe(0);
    expect(ROGUE_REGISTERS.map((x) => [x.name, x.offset])).toEqual([
      ["ID", ID], ["STATUS", STATUS], ["IRQ_STATUS", IRQ_STATUS], ["IRQ_ENABLE", IRQ_ENABLE], ["DMA_SRC", DMA_SRC],
      ["DMA_DST", DMA_DST], ["DMA_LEN", DMA_LEN], ["DMA_CMD", DMA_CMD], ["ERR_COUNT", ERR_COUNT], ["ERR_ADDR", ERR_ADDR],
    ]);
    expect(r.board.log.entries).toEqual([]);
  });

  it("64-bit registers take 8-byte accesses and independent 4-byte halves", () => {
    const r = rig();
    r.wr(DMA_SRC, 0x1_2345_6789, 8);
    expect(r.rd(DMA_SRC)).toBe(0x23456789);
    expect(r.rd(DMA_SRC + 4)).toBe(1);
    r.wr(DMA_DST + 4, 0xab);
    r.wr(DMA_DST, 0x1000);
    expect(r.rd(DMA_DST, 8)).toBe(0xab_0000_1000);
    expect(r.board.log.errors).toEqual([]);
  });

  it("the buffer is visible through BAR0 with 1-, 2- and 4-byte accesses", () => {
    const r = rig();
    r.wr(BUF, 0x11223344);
    expect(r.rd(BUF, 1)).toBe(0x44);
    expect(r.rd(BUF + 2, 2)).toBe(0x1122);
    r.wr(BUF + 0xfff, 0x5a, 1);
    expect(r.rd(BUF + 0xffc)).toBe(0x5a000000);
    expect(r.board.log.errors).toEqual([]);
  });

  it("logs guest errors for wrong sizes, holes, read-only writes and reserved bits, and never throws", () => {
    const r = rig();
    expect(r.rd(ID, 2)).toBe(0xffff);
    expect(r.rd(0x800)).toBe(0xffffffff);
    expect(r.rd(BUF, 8)).toBe(Number.MAX_SAFE_INTEGER);
    expect(r.rd(BUF + 1, 2)).toBe(0xffff);
    r.wr(ID, 1);
    r.wr(ERR_COUNT, 1);
    r.wr(ERR_ADDR, 1, 8);
    r.wr(IRQ_ENABLE, 0xff);
    expect(r.rd(IRQ_ENABLE)).toBe(DONE | ERROR);
    r.wr(DMA_CMD, TO_MEM); // no GO
    expect(r.rd(ID)).toBe(0x52470001);
    expect(r.rd(ERR_COUNT)).toBe(0);
    expect(r.board.log.errors.length).toBe(9);
  });

  it("answers all ones with memory decoding disabled", () => {
    const r = rig({ command: 0 });
    expect(r.rd(ID)).toBe(0xffffffff);
    expect(r.board.log.errors.length).toBe(1);
  });
});

describe("rogue DMA engine", () => {
  it("memory -> buffer -> memory, busy for setup + len/2 ns, DONE raised and INTx level", () => {
    const r = rig();
    const data = pattern(256);
    r.board.map.ram.write(RAM, data, 0, 256);
    r.wr(IRQ_ENABLE, DONE | ERROR);
    r.dma(RAM, 0x10, 256, GO);
    expect(r.rd(STATUS)).toBe(1);
    expect(r.rd(DMA_CMD)).toBe(GO);
    r.board.scheduler.runFor(dmaNs(256) - 1);
    expect(r.rd(STATUS)).toBe(1);
    expect(r.line()).toBe(0);
    r.board.scheduler.runFor(1);
    expect(r.rd(STATUS)).toBe(0);
    expect(r.rd(DMA_CMD)).toBe(0);
    expect(r.rd(IRQ_STATUS)).toBe(DONE);
    expect(r.line()).toBe(1);
    expect(r.rd(BUF + 0x10, 1)).toBe(data[0]);
    r.wr(IRQ_STATUS, DONE);
    expect(r.line()).toBe(0);

    r.dma(0x10, RAM + 0x1000, 256, GO | TO_MEM);
    r.board.scheduler.runFor(dmaNs(256));
    expect(r.ram(RAM + 0x1000, 256)).toEqual(data);
    expect(r.rd(IRQ_STATUS)).toBe(DONE);
    expect(r.board.log.errors).toEqual([]);
  });

  it("4 KiB takes 2248 ns; a zero-length transfer takes the setup time and moves nothing", () => {
    const r = rig();
    r.dma(RAM, 0, 4096, GO);
    r.board.scheduler.runFor(2247);
    expect(r.rd(STATUS)).toBe(1);
    r.board.scheduler.runFor(1);
    expect(r.rd(STATUS)).toBe(0);
    r.dma(RAM, 0, 0, GO);
    r.board.scheduler.runFor(200);
    expect(r.rd(STATUS)).toBe(0);
    expect(r.rd(IRQ_STATUS)).toBe(DONE);
  });

  it("refuses a buffer range outside 4 KiB, and writes while busy, as guest errors", () => {
    const r = rig();
    r.dma(RAM, 0x800, 0x801, GO);
    expect(r.rd(STATUS)).toBe(0);
    r.dma(RAM, 0, 0x1001, GO);
    expect(r.rd(STATUS)).toBe(0);
    expect(r.board.log.errors.length).toBe(2);
    r.dma(RAM, 0, 64, GO);
    r.wr(DMA_LEN, 1);
    r.wr(DMA_CMD, GO);
    expect(r.board.log.errors.length).toBe(4);
    r.board.scheduler.runUntilIdle();
    expect(r.rd(DMA_LEN)).toBe(64);
  });

  it("a transfer to memory that decodes nothing raises ERROR, counts it and records the address", () => {
    const r = rig();
    r.wr(IRQ_ENABLE, ERROR);
    const hole = 0x90000000; // x86-coherent: RAM 0..2 GiB, then the hole below 4 GiB
    r.dma(0, hole, 64, GO | TO_MEM);
    r.board.scheduler.runUntilIdle();
    expect(r.rd(IRQ_STATUS)).toBe(ERROR);
    expect(r.rd(ERR_COUNT)).toBe(1);
    expect(r.rd(ERR_ADDR, 8)).toBe(hole);
    expect(r.line()).toBe(1);
    expect(r.board.log.errors.length).toBe(1); // the port's master abort
  });

  it("with bus mastering off the engine's DMA is refused: ERROR", () => {
    const r = rig({ command: CMD_MEM });
    r.dma(RAM, 0, 16, GO);
    r.board.scheduler.runUntilIdle();
    expect(r.rd(IRQ_STATUS)).toBe(ERROR);
    expect(r.rd(ERR_COUNT)).toBe(1);
  });

  it("sends one MSI per newly pending cause, leaving INTx low", () => {
    const r = rig({ msi: true });
    const vector = r.board.intc.msiFirst + 2;
    const cfg = (off: number, v: number, size: AccessSize) => r.board.mem.mmioWrite(0, r.ecam(off), v, size);
    cfg(0x44, r.desc.interrupts.msiBase, 4);
    cfg(0x48, 0, 4);
    cfg(0x4c, vector, 2);
    cfg(0x42, 1, 2);
    r.wr(IRQ_ENABLE, DONE | ERROR);
    r.dma(RAM, 0, 16, GO);
    r.board.scheduler.runUntilIdle();
    expect(r.board.intc.pending[vector]).toBe(1);
    r.board.intc.ack(vector);
    r.board.intc.eoi(vector);
    r.dma(RAM, 0, 16, GO); // DONE still pending: no new message
    r.board.scheduler.runUntilIdle();
    expect(r.board.intc.pending[vector]).toBe(0);
    r.dev.firmwareRead(0x90000000, 4); // ERROR is new: one message
    expect(r.board.intc.pending[vector]).toBe(1);
    expect(r.line()).toBe(0);
  });

  it("reset clears registers, buffer and counters, and cancels a running transfer", () => {
    const r = rig();
    r.wr(BUF, 0xdeadbeef);
    r.wr(IRQ_ENABLE, DONE);
    r.dma(RAM, 0, 64, GO);
    r.dev.reset();
    r.board.scheduler.runUntilIdle();
    expect(r.dev.peek(IRQ_STATUS, 4)).toBe(0);
    expect(r.dev.peek(BUF, 4)).toBe(0);
    expect(r.dev.peek(DMA_LEN, 4)).toBe(0);
    expect(r.line()).toBe(0);
  });
});

describe("rogue firmware API (the attacker's handle)", () => {
  it("reads and writes any bus address at once, without the driver and without bus mastering", () => {
    const r = rig({ command: CMD_MEM });
    r.board.map.ram.write(RAM, pattern(32), 0, 32);
    const t = r.board.scheduler.now;
    expect(r.dev.firmwareRead(RAM, 32)).toEqual(pattern(32));
    expect(r.dev.firmwareWrite(RAM + 100, pattern(8, 9))).toBe(true);
    expect(r.board.scheduler.now).toBe(t);
    expect(r.ram(RAM + 100, 8)).toEqual(pattern(8, 9));
    expect(r.rd(ERR_COUNT)).toBe(0);
  });

  it("an access the bus refuses returns null / false and is reported as ERROR", () => {
    const r = rig();
    r.wr(IRQ_ENABLE, ERROR);
    expect(r.dev.firmwareRead(0x90000000, 4)).toBeNull();
    expect(r.dev.firmwareWrite(0x90001000, pattern(4))).toBe(false);
    expect(r.rd(ERR_COUNT)).toBe(2);
    expect(r.rd(ERR_ADDR, 8)).toBe(0x90001000);
    expect(r.rd(IRQ_STATUS)).toBe(ERROR);
    expect(r.line()).toBe(1);
  });

  it("throws on nonsense arguments (a bug in the attack script, not guest behaviour)", () => {
    const r = rig();
    expect(() => r.dev.firmwareRead(-1, 4)).toThrow(RangeError);
    expect(() => r.dev.firmwareRead(0, 0)).toThrow(RangeError);
    expect(() => r.dev.firmwareWrite(0.5, pattern(1))).toThrow(RangeError);
  });

  it("behind an enabled IOMMU with no context for the device, every access faults and nothing moves", () => {
    const r = rig({ profile: "x86-iommu" });
    const io = r.board.iommu!;
    r.board.map.ram.fill(0x10000, 0, 4096); // an empty context table
    io.region.ops.write(0x018, 0x10000, 8); // CTX_BASE
    io.region.ops.write(0x010, 1, 4); // GCMD.TE
    r.board.map.ram.write(RAM, pattern(64), 0, 64);
    r.wr(IRQ_ENABLE, ERROR);
    expect(r.dev.firmwareRead(RAM, 64)).toBeNull();
    expect(r.dev.firmwareWrite(RAM, new Uint8Array(64))).toBe(false);
    expect(r.ram(RAM, 64)).toEqual(pattern(64));
    r.dma(RAM, 0, 64, GO);
    r.board.scheduler.runUntilIdle();
    expect(r.rd(ERR_COUNT)).toBe(3);
    expect(r.rd(IRQ_STATUS)).toBe(ERROR);
    expect(r.dev.dma.iommuAborts).toBe(3);
    expect(r.board.log.errors).toEqual([]); // IOMMU aborts are the IOMMU's to log
  });
});
