/**
 * edu device tests, qtest style: registers and the virtual clock on a bare board, no kernel.
 * Offsets are re-declared here from SPEC.md rather than imported from the model.
 */

import { describe, expect, it } from "vitest";
import { makeBareBoard, EDU_IRQ, EDU_SLOT, MSI_BASE, PCI_WINDOW, type BareBoard } from "../helpers/bare-board.ts";
import { MEM_CACHED, MEM_UNCACHED } from "../../hw/cpu/memory-types.ts";
import { EDU_REGISTERS } from "../../hw/dev/edu/edu-regs.ts";

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
const FACT_NS = 1000;
const dmaNs = (count: number): number => 250 + count;

const CMD_MEM = 0x2;
const CMD_MASTER = 0x4;
const CMD_INTX_DISABLE = 0x400;

function board(opts: Parameters<typeof makeBareBoard>[0] = {}, command = CMD_MEM | CMD_MASTER): BareBoard {
  const b = makeBareBoard(opts);
  b.cfgWrite(EDU_SLOT, 0x04, command, 2);
  return b;
}

function pattern(n: number, seed = 7): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 31 + seed) & 0xff;
  return a;
}

const intxLevel = (b: BareBoard): number => b.intc.input[EDU_IRQ];

describe("edu identification", () => {
  it("shows its PCI IDs, class and BAR0 through ECAM, its ID, and inverts in LIVENESS", () => {
    const b = board();
    expect(b.cfgRead(EDU_SLOT, 0x00, 4)).toBe(0x11e81234);
    expect(b.cfgRead(EDU_SLOT, 0x08, 1)).toBe(0x10);
    expect(b.cfgRead(EDU_SLOT, 0x09, 4) & 0xffffff).toBe(0xff0000);
    expect(b.cfgRead(EDU_SLOT, 0x10, 4)).toBe(PCI_WINDOW.base);
    b.cfgWrite(EDU_SLOT, 0x10, 0xffffffff, 4);
    expect(b.cfgRead(EDU_SLOT, 0x10, 4)).toBe(~(0x100000 - 1) >>> 0);
    b.cfgWrite(EDU_SLOT, 0x10, PCI_WINDOW.base, 4);
    expect(b.cfgRead(EDU_SLOT, 0x3d, 1)).toBe(1);
    expect(b.cfgRead(EDU_SLOT, 0x34, 1)).toBe(0x40);
    expect(b.cfgRead(EDU_SLOT + 1, 0x00, 4)).toBe(0xffffffff);
    expect(b.mmioRead(ID)).toBe(0x010000ed);
    expect(b.mmioRead(LIVENESS)).toBe(0);
    b.mmioWrite(LIVENESS, 0x12345678);
    expect(b.mmioRead(LIVENESS)).toBe(0xedcba987);
    b.mmioWrite(LIVENESS, 0);
    expect(b.mmioRead(LIVENESS)).toBe(0xffffffff);
    expect(b.log.entries).toEqual([]);
  });
});

describe("edu factorial", () => {
  it("stays busy until the latency has passed, then holds n!", () => {
    const b = board();
    b.mmioWrite(FACT, 5);
    expect(b.mmioRead(STATUS) & 1).toBe(1);
    b.scheduler.runFor(FACT_NS - 1);
    expect(b.mmioRead(STATUS) & 1).toBe(1);
    expect(b.mmioRead(FACT)).toBe(5);
    b.scheduler.runFor(1);
    expect(b.mmioRead(STATUS) & 1).toBe(0);
    expect(b.mmioRead(FACT)).toBe(120);
    expect(b.log.entries).toEqual([]);
  });

  it.each([[0, 1], [1, 1], [5, 120], [12, 479001600], [13, 6227020800 % 2 ** 32], [34, 0], [0xffffffff, 0]])("%i! is %i modulo 2^32", (n, want) => {
    const b = board();
    b.mmioWrite(FACT, n);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(FACT)).toBe(want);
  });

  it("raises IRQ_STATUS.FACT only when STATUS.IRQ_FACT is set", () => {
    const b = board();
    b.mmioWrite(FACT, 3);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(IRQ_STATUS)).toBe(0);
    expect(intxLevel(b)).toBe(0);

    b.mmioWrite(STATUS, 0xff); // only IRQ_FACT is writable
    expect(b.mmioRead(STATUS)).toBe(0x80);
    b.mmioWrite(FACT, 4);
    expect(intxLevel(b)).toBe(0);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(FACT)).toBe(24);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0x1);
    expect(intxLevel(b)).toBe(1);
    expect(b.intc.pending[EDU_IRQ]).toBe(1);
    b.mmioWrite(IRQ_ACK, 0x1);
    expect(intxLevel(b)).toBe(0);
    expect(b.log.entries).toEqual([]);
  });

  it("ignores a new operand while computing, with a guest error", () => {
    const b = board();
    b.mmioWrite(FACT, 5);
    b.mmioWrite(FACT, 6);
    expect(b.log.errors).toHaveLength(1);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(FACT)).toBe(120);
  });

  it("adds bounded, seeded jitter only when asked", () => {
    const done = (seed: number): number => {
      const b = board({ seed, edu: { jitter: true } });
      b.mmioWrite(FACT, 3);
      b.scheduler.runUntilIdle();
      return b.scheduler.now;
    };
    const t = done(42);
    expect(t).toBeGreaterThanOrEqual(FACT_NS);
    expect(t).toBeLessThanOrEqual(FACT_NS * 1.25);
    expect(done(42)).toBe(t);
  });
});

describe("edu interrupts", () => {
  it("ORs raised bits into IRQ_STATUS and drops INTx only when all are acknowledged", () => {
    const b = board();
    b.mmioWrite(IRQ_RAISE, 0x5);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0x5);
    expect(intxLevel(b)).toBe(1);
    expect(b.cfgRead(EDU_SLOT, 0x06, 2) & 0x8).toBe(0x8);
    b.mmioWrite(IRQ_RAISE, 0x100);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0x105);
    b.mmioWrite(IRQ_ACK, 0x101);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0x4);
    expect(intxLevel(b)).toBe(1);
    b.mmioWrite(IRQ_ACK, 0x4);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0);
    expect(intxLevel(b)).toBe(0);
    expect(b.cfgRead(EDU_SLOT, 0x06, 2) & 0x8).toBe(0);
    expect(b.log.entries).toEqual([]);
  });

  it("keeps INTx low while the command register disables it", () => {
    const b = board({}, CMD_MEM | CMD_MASTER | CMD_INTX_DISABLE);
    b.mmioWrite(IRQ_RAISE, 0x1);
    expect(intxLevel(b)).toBe(0);
    b.cfgWrite(EDU_SLOT, 0x04, CMD_MEM | CMD_MASTER, 2);
    expect(intxLevel(b)).toBe(1);
  });

  it("sends an MSI to the controller's window when MSI is enabled, leaving INTx low", () => {
    const b = board();
    const vector = b.intc.msiFirst + 2;
    b.cfgWrite(EDU_SLOT, 0x44, MSI_BASE, 4);
    b.cfgWrite(EDU_SLOT, 0x48, 0, 4);
    b.cfgWrite(EDU_SLOT, 0x4c, vector, 2);
    b.cfgWrite(EDU_SLOT, 0x42, 0x1, 2);
    expect(b.cfgRead(EDU_SLOT, 0x42, 2) & 0x81).toBe(0x81);

    b.mmioWrite(STATUS, 0x80);
    b.mmioWrite(FACT, 2);
    b.scheduler.runUntilIdle();
    expect(b.intc.pending[vector]).toBe(1);
    expect(intxLevel(b)).toBe(0);
    b.intc.ack(vector);
    b.intc.eoi(vector);
    expect(b.intc.pending[vector]).toBe(0);

    b.mmioWrite(IRQ_RAISE, 0x10);
    expect(b.intc.pending[vector]).toBe(1);
    b.mmioWrite(IRQ_ACK, 0x11);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0);
    expect(intxLevel(b)).toBe(0);
    expect(b.log.entries).toEqual([]);
  });
});

describe("edu DMA", () => {
  const RAM_A = 0x100000;
  const RAM_B = 0x200000;

  it("copies RAM to the buffer and back, taking setup plus count time", () => {
    const b = board();
    const data = pattern(100);
    b.mem.cpuWrite(0, RAM_A, data, 0, data.length, MEM_UNCACHED);

    b.eduDma(RAM_A, BUF, 100, 0x1);
    expect(b.mmioRead(DMA_CMD) & 1).toBe(1);
    b.scheduler.runFor(dmaNs(100) - 1);
    expect(b.mmioRead(DMA_CMD) & 1).toBe(1);
    b.scheduler.runFor(1);
    expect(b.mmioRead(DMA_CMD) & 1).toBe(0);

    b.eduDma(BUF, RAM_B + 100, 100, 0x3);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(DMA_CMD)).toBe(0x2);
    expect(b.ramBytes(RAM_B + 100, 100)).toEqual(data);
    expect(b.ramBytes(RAM_B, 100)).toEqual(new Uint8Array(100));
    expect(b.mmioRead(IRQ_STATUS)).toBe(0);
    expect(b.log.entries).toEqual([]);
  });

  it("uses the edu address as an offset into the buffer", () => {
    const b = board();
    const data = pattern(64, 3);
    b.mem.cpuWrite(0, RAM_A, data, 0, 64, MEM_UNCACHED);
    b.eduDma(RAM_A, BUF + 4096 - 64, 64, 0x1);
    b.scheduler.runUntilIdle();
    b.eduDma(BUF + 4096 - 32, RAM_B, 32, 0x3);
    b.scheduler.runUntilIdle();
    expect(b.ramBytes(RAM_B, 32)).toEqual(data.subarray(32));
    expect(b.log.entries).toEqual([]);
  });

  it("raises IRQ_STATUS.DMA on completion when the command asks for it", () => {
    const b = board();
    b.eduDma(RAM_A, BUF, 16, 0x5);
    expect(intxLevel(b)).toBe(0);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(IRQ_STATUS)).toBe(0x100);
    expect(intxLevel(b)).toBe(1);
    b.mmioWrite(IRQ_ACK, 0x100);
    expect(intxLevel(b)).toBe(0);
    expect(b.log.entries).toEqual([]);
  });

  it("takes 4-byte halves and 8-byte accesses of the 64-bit registers", () => {
    const b = board();
    b.mmioWrite(DMA_SRC, 0x123456789, 8);
    expect(b.mmioRead(DMA_SRC, 4)).toBe(0x23456789);
    expect(b.mmioRead(DMA_SRC + 4, 4)).toBe(0x1);
    b.mmioWrite(DMA_DST, 0xdeadbeef, 4);
    b.mmioWrite(DMA_DST + 4, 0x2, 4);
    expect(b.mmioRead(DMA_DST, 8)).toBe(0x2deadbeef);
    b.mmioWrite(DMA_DST + 4, 0, 4);
    expect(b.mmioRead(DMA_DST, 8)).toBe(0xdeadbeef);
    b.mmioWrite(DMA_CNT + 4, 1, 4);
    expect(b.mmioRead(DMA_CNT, 8)).toBe(2 ** 32);
    expect(b.mmioRead(DMA_CMD + 4, 4)).toBe(0);
    expect(b.log.entries).toEqual([]);
  });

  it("moves nothing without bus mastering and logs a guest error", () => {
    const b = board({}, CMD_MEM);
    b.mem.cpuWrite(0, RAM_B, pattern(32), 0, 32, MEM_UNCACHED);
    b.eduDma(BUF, RAM_B, 32, 0x3);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(DMA_CMD) & 1).toBe(0);
    expect(b.ramBytes(RAM_B, 32)).toEqual(pattern(32));
    expect(b.log.errors.map((e) => e.message).join()).toMatch(/bus mastering/);
  });

  it("truncates an address beyond the 28-bit mask, with a guest error", () => {
    const b = board();
    const data = pattern(48, 9);
    b.mem.cpuWrite(0, 0x3000, data, 0, 48, MEM_UNCACHED);
    b.eduDma(0x10000000 + 0x3000, BUF, 48, 0x1);
    b.scheduler.runUntilIdle();
    expect(b.log.errors).toHaveLength(1);
    expect(b.log.errors[0].message).toMatch(/28-bit/);
    b.eduDma(BUF, RAM_B, 48, 0x3);
    b.scheduler.runUntilIdle();
    expect(b.ramBytes(RAM_B, 48)).toEqual(data);
  });

  it.each([
    ["below the window", 0x3ffff, 16],
    ["past the end", BUF + 0xf00, 0x200],
    ["a count over 4 KiB", BUF, 4097],
    ["a huge address", 0x100040000, 16],
  ])("refuses a buffer range %s", (_what, edu, count) => {
    const b = board();
    b.eduDma(RAM_A, edu, count, 0x1);
    expect(b.log.errors).toHaveLength(1);
    expect(b.log.errors[0].message).toMatch(/outside the buffer window/);
    expect(b.mmioRead(DMA_CMD)).toBe(0);
    expect(b.scheduler.pending).toBe(0);
  });

  it("accepts exactly the whole 4 KiB window", () => {
    const b = board();
    b.eduDma(RAM_A, BUF, 4096, 0x1);
    b.scheduler.runUntilIdle();
    expect(b.scheduler.now).toBe(dmaNs(4096));
    expect(b.log.entries).toEqual([]);
  });

  it("ignores a command without START, and a second command or register writes while busy", () => {
    const b = board();
    b.mmioWrite(DMA_CMD, 0x6);
    expect(b.mmioRead(DMA_CMD)).toBe(0);
    b.eduDma(RAM_A, BUF, 64, 0x1);
    b.mmioWrite(DMA_SRC, RAM_B, 8);
    b.mmioWrite(DMA_CMD, 0x1);
    expect(b.log.errors).toHaveLength(3);
    expect(b.mmioRead(DMA_SRC, 8)).toBe(RAM_A);
    b.scheduler.runUntilIdle();
    expect(b.scheduler.now).toBe(dmaNs(64));
  });

  it("completes a zero-length transfer after the setup latency", () => {
    const b = board();
    b.eduDma(RAM_A, BUF + 4096, 0, 0x5);
    b.scheduler.runUntilIdle();
    expect(b.scheduler.now).toBe(dmaNs(0));
    expect(b.mmioRead(IRQ_STATUS)).toBe(0x100);
    expect(b.log.entries).toEqual([]);
  });

  it("completes (START clears, IRQ raised) even when the bus transaction hits no memory", () => {
    const b = board();
    b.eduDma(0x8000000, BUF, 16, 0x5);
    b.scheduler.runUntilIdle();
    expect(b.mmioRead(DMA_CMD) & 1).toBe(0);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0x100);
    expect(b.log.errors.map((e) => e.message).join()).toMatch(/master abort/);
  });

  it("honours a wider engine mask given as an option", () => {
    const b = board({ edu: { dmaBits: 32 } });
    expect(b.edu.dmaBits).toBe(32);
    b.eduDma(0x10003000, BUF, 16, 0x1);
    b.scheduler.runUntilIdle();
    expect(b.log.errors).toHaveLength(1);
    expect(b.log.errors[0].message).toMatch(/0x10003000.*master abort/);
  });
});

describe("edu DMA and CPU caches", () => {
  const run = (coherent: boolean, clean = false): Uint8Array => {
    const b = board({ coherent });
    const src = 0x300000;
    const dst = 0x380000;
    const data = pattern(256, 5);
    b.mem.cpuWrite(0, src, data, 0, data.length, MEM_CACHED); // dirty in CPU 0's L1
    if (clean) b.mem.cacheClean(0, src, data.length); // what dma_map_single(DMA_TO_DEVICE) does
    b.eduDma(src, BUF, 256, 0x1);
    b.scheduler.runUntilIdle();
    b.eduDma(BUF, dst, 256, 0x3);
    b.scheduler.runUntilIdle();
    expect(b.log.entries).toEqual([]);
    return b.ramBytes(dst, 256);
  };

  it("does not see a dirty CPU line on a non-coherent board, until it is cleaned", () => {
    expect(run(false)).toEqual(new Uint8Array(256));
    expect(run(false, true)).toEqual(pattern(256, 5));
  });

  it("sees a dirty CPU line on a coherent board", () => {
    expect(run(true)).toEqual(pattern(256, 5));
  });
});

describe("edu access errors", () => {
  it("logs bad sizes, read-only writes, write-only reads and unknown offsets without throwing", () => {
    const b = board();
    expect(b.mmioRead(ID, 1)).toBe(0xff);
    expect(b.mmioRead(ID, 2)).toBe(0xffff);
    expect(b.mmioRead(ID, 8)).toBe(Number.MAX_SAFE_INTEGER);
    expect(b.mmioRead(IRQ_RAISE)).toBe(0xffffffff);
    expect(b.mmioRead(IRQ_ACK)).toBe(0xffffffff);
    expect(b.mmioRead(0x10)).toBe(0xffffffff);
    expect(b.mmioRead(BUF)).toBe(0xffffffff);
    expect(b.mmioRead(DMA_SRC + 4, 8)).toBe(Number.MAX_SAFE_INTEGER);
    expect(b.mmioRead(DMA_SRC, 2)).toBe(0xffff);
    expect(b.log.errors).toHaveLength(9);

    b.mmioWrite(ID, 0);
    b.mmioWrite(IRQ_STATUS, 0x1);
    b.mmioWrite(LIVENESS, 1, 2);
    b.mmioWrite(FACT, 3, 8);
    b.mmioWrite(0xa0, 1);
    b.mmioWrite(BUF, 1);
    expect(b.log.errors).toHaveLength(15);
    expect(b.mmioRead(ID)).toBe(0x010000ed);
    expect(b.mmioRead(IRQ_STATUS)).toBe(0);
    expect(b.mmioRead(LIVENESS)).toBe(0);
    expect(b.mmioRead(STATUS)).toBe(0);
    expect(b.scheduler.pending).toBe(0);
    expect(b.log.errors.every((e) => e.device === "edu" && e.kind === "guest-error")).toBe(true);
  });

  it("answers all ones and logs when memory decoding is disabled", () => {
    const b = board({}, 0);
    expect(b.mmioRead(ID)).toBe(0xffffffff);
    b.mmioWrite(LIVENESS, 5);
    expect(b.log.errors).toHaveLength(2);
    expect(b.log.errors[0].message).toMatch(/memory decoding disabled/);
    b.cfgWrite(EDU_SLOT, 0x04, CMD_MEM, 2);
    expect(b.mmioRead(LIVENESS)).toBe(0);
  });

  it("peeks without logging, tracing or side effects", () => {
    const b = board({ trace: true });
    const before = b.trace.length;
    expect(b.edu.peek(ID, 4)).toBe(0x010000ed);
    expect(b.edu.peek(IRQ_RAISE, 4)).toBe(0xffffffff);
    expect(b.edu.peek(0x1000, 4)).toBe(0xffffffff);
    expect(b.log.entries).toEqual([]);
    expect(b.trace.length).toBe(before);
  });
});

describe("edu reset", () => {
  it("matches the spec table after power-on and after reset", () => {
    const b = board();
    const check = (): void => {
      for (const r of EDU_REGISTERS) expect(b.edu.peek(r.offset, r.size), r.name).toBe(r.access === "WO" ? 0xffffffff : r.reset);
    };
    check();
    b.mmioWrite(LIVENESS, 1);
    b.mmioWrite(STATUS, 0x80);
    b.mmioWrite(FACT, 9);
    b.mmioWrite(IRQ_RAISE, 0x8);
    b.eduDma(0x100000, BUF, 32, 0x5);
    expect(intxLevel(b)).toBe(1);
    b.edu.reset();
    check();
    expect(intxLevel(b)).toBe(0);
    expect(b.cfgRead(EDU_SLOT, 0x04, 2)).toBe(0);
    b.scheduler.runUntilIdle();
    expect(b.scheduler.now).toBe(0);
    expect(b.log.entries).toEqual([]);
  });
});

describe("edu trace points", () => {
  it("records MMIO accesses and the DMA transfer when tracing is on", () => {
    const b = board({ trace: true });
    b.eduDma(0x1000, BUF, 8, 0x1);
    b.scheduler.runUntilIdle();
    const json = b.trace.toJSON();
    expect(json).toMatch(/"mmio_write"/);
    expect(json.match(/"dma_transfer"/g)).toHaveLength(2);
  });

  it("records nothing when tracing is off", () => {
    const b = board();
    b.eduDma(0x1000, BUF, 8, 0x1);
    b.scheduler.runUntilIdle();
    expect(b.trace.length).toBe(0);
  });
});
