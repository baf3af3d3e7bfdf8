/**
 * The dmac, qtest style: board from a machine description, registers through MMIO, descriptor
 * chains in RAM, the virtual clock; no kernel. SPEC.md is the reference.
 */

import { describe, expect, it } from "vitest";
import { Board } from "../../hw/machine/board.ts";
import { MachineConfigError } from "../../hw/machine/load.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import {
  ABORT, ACTIVE, BASE, CAPS, CHAIN_DONE, CTRL, CUR_DESC, CUR_DST, CUR_SRC, D2M, DESC, DESC_DONE, DONE_COUNT, EN,
  ERR_ADDR, ERROR, GCTRL, HALTED, ID, INT_ENABLE, INT_STATUS, IRQ_STATUS, IRQF, LAST, M2D, PAUSE, PAUSED, PP_COUNT,
  PP_CTRL, PP_DATA, PP_DEPTH, PP_LEVEL, PP_RATE, PP_SUM, RESIDUE, STATUS, burst, ch, dmacDesc, fnv, mode, pattern, pp, rig,
} from "./dmac-rig.ts";

const SRC = 0x100000;
const DST = 0x200000;
const D0 = 0x300000;

describe("dmac: wiring from the machine description", () => {
  it("answers at its base with ID and CAPS, and turns on bus arbitration", () => {
    const r = rig();
    expect(r.read(ID)).toBe(0x0dac0100);
    expect(r.read(CAPS)).toBe(0x644); // 4 channels, 4 ports, 64-byte beats
    expect(r.read(ch(0, STATUS))).toBe(0);
    expect(r.read(pp(0, PP_DEPTH))).toBe(256);
    expect(r.read(pp(2, PP_SUM))).toBe(0x811c9dc5);
    expect(r.board.platformDevices).toMatchObject([{ name: "dmac0", base: BASE, size: 0x1000, irq: 20 }]);
    expect(r.board.mem.interconnect).toBe(r.board.interconnect);
    expect(r.board.log.entries).toEqual([]);
  });

  it("a machine without a bus master leaves the memory system unarbitrated", () => {
    const d = getProfile("arm64-noncoherent");
    const b = new Board(d, { seed: 1 });
    expect(b.mem.interconnect).toBeNull();
  });

  it("rejects a window below 4 KiB and a dmac on PCI as configuration errors naming the field", () => {
    const small = (): Board => new Board(dmacDesc({ size: 0x800 }), { seed: 1 });
    expect(small).toThrow(MachineConfigError);
    try {
      small();
    } catch (e) {
      expect((e as MachineConfigError).issues[0].path).toBe("platform[0].size");
    }
    const d = getProfile("x86-coherent");
    d.pci.devices = [{ slot: 4, model: "dmac", irq: 9, msi: false }];
    try {
      new Board(d, { seed: 1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(MachineConfigError);
      expect((e as MachineConfigError).issues[0]).toMatchObject({ path: "pci.devices[0].model" });
      expect((e as MachineConfigError).issues[0].message).toMatch(/platform device/);
    }
  });

  it("can be hot-plugged into a running board, validated like a machine file entry", () => {
    const d = getProfile("arm64-noncoherent");
    const b = new Board(d, { seed: 1 });
    expect(() => b.plugPlatformDevice({ name: "x", model: "dmac", base: 0xc0000000, size: 0x1000, irq: 21 })).toThrow(/overlaps/);
    expect(() => b.plugPlatformDevice({ name: "y", model: "dmac", base: 0xd1000000, size: 0x1000, irq: 11 })).toThrow(/already claimed/);
    const info = b.plugPlatformDevice({ name: "dmac0", model: "dmac", base: 0xd1000000, size: 0x1000, irq: 21 });
    expect(info).toMatchObject({ name: "dmac0", base: 0xd1000000, irq: 21 });
    expect(b.platformDevices.map((p) => p.name)).toEqual(["dmac0"]);
    expect(d.platform).toEqual([]); // the caller's description is not modified
    expect(() => b.plugPlatformDevice({ name: "dmac1", model: "dmac", base: 0xd1000800, size: 0x1000, irq: 22 })).toThrow(/overlaps platform device "dmac0"/);
    expect(b.mem.interconnect).toBe(b.interconnect);
    expect(b.mem.mmioRead(0, 0xd1000000, 4)).toBe(0x0dac0100);
  });
});

describe("dmac: memory-to-memory descriptor chains", () => {
  it("runs a three-descriptor chain with odd sizes and addresses, then raises CHAIN_DONE", () => {
    const r = rig();
    const data = pattern(10000);
    r.fill(SRC, data);
    r.desc(D0, { src: SRC, dst: DST + 3, len: 4096, flags: 0, next: D0 + 0x40 });
    r.desc(D0 + 0x40, { src: SRC + 4096, dst: DST + 3 + 4096, len: 5000, flags: IRQF, next: D0 + 0x80 });
    r.desc(D0 + 0x80, { src: SRC + 9096, dst: DST + 3 + 9096, len: 904, flags: LAST });
    r.start(0, D0, mode(0) | burst(4), CHAIN_DONE | ERROR | DESC_DONE);
    expect(r.read(ch(0, STATUS)) & ACTIVE).toBe(ACTIVE);
    expect(r.read(ch(0, CTRL)) & EN).toBe(EN);
    r.run();
    expect(r.ram(DST + 3, 10000)).toEqual(data);
    expect(r.ram(DST, 3)).toEqual(new Uint8Array(3)); // nothing outside the destination
    expect(r.read(ch(0, STATUS))).toBe(0);
    expect(r.read(ch(0, DONE_COUNT))).toBe(3);
    expect(r.read(ch(0, INT_STATUS))).toBe(DESC_DONE | CHAIN_DONE);
    expect(r.read(ch(0, CUR_DESC), 8)).toBe(D0 + 0x80);
    expect(r.read(IRQ_STATUS)).toBe(1);
    expect(r.level()).toBe(true);
    // Uncontended timing: 3 fetches, then two beats per 64 bytes (SPEC.md section 9).
    const beats = (n: number): number => 2 * Math.ceil(n / 64);
    const expectNs = 8 * (3 + beats(4096) + beats(5000) + beats(904));
    expect(r.dmac.channelStats(0).runEndNs - r.dmac.channelStats(0).runStartNs).toBe(expectNs);
    r.write(ch(0, INT_STATUS), DESC_DONE); // W1C, one bit
    expect(r.level()).toBe(true);
    r.write(ch(0, INT_STATUS), CHAIN_DONE);
    expect(r.level()).toBe(false);
    expect(r.read(IRQ_STATUS)).toBe(0);
    expect(r.board.log.entries).toEqual([]);
  });

  it("records causes that INT_ENABLE masks without raising the line", () => {
    const r = rig();
    r.desc(D0, { src: SRC, dst: DST, len: 64, flags: LAST });
    r.start(0, D0, 0, 0);
    r.run();
    expect(r.read(ch(0, INT_STATUS))).toBe(CHAIN_DONE);
    expect(r.level()).toBe(false);
    r.write(ch(0, INT_ENABLE), CHAIN_DONE);
    expect(r.level()).toBe(true);
  });

  it("counts residue down by units and keeps every byte across pause and resume", () => {
    const r = rig();
    const data = pattern(64 * 1024, 3);
    r.fill(SRC, data);
    r.desc(D0, { src: SRC, dst: DST, len: data.length, flags: LAST });
    r.start(0, D0, mode(0) | burst(4)); // 512 bytes per 128 ns burst
    r.run(8 + 128 * 10);
    r.write(ch(0, CTRL), r.read(ch(0, CTRL)) | PAUSE);
    r.run(r.board.scheduler.now + 200); // the unit on the bus finishes, then quiet
    const st = r.read(ch(0, STATUS));
    expect(st & (ACTIVE | PAUSED)).toBe(ACTIVE | PAUSED);
    const residue = r.read(ch(0, RESIDUE));
    expect(residue % 512).toBe(0);
    expect(residue).toBeLessThan(data.length);
    expect(r.read(ch(0, CUR_SRC), 8)).toBe(SRC + data.length - residue);
    expect(r.read(ch(0, CUR_DST), 8)).toBe(DST + data.length - residue);
    const before = r.board.scheduler.now;
    r.run(before + 10_000);
    expect(r.read(ch(0, RESIDUE))).toBe(residue); // paused: nothing moves
    r.write(ch(0, CTRL), r.read(ch(0, CTRL)) & ~PAUSE);
    r.run();
    expect(r.ram(DST, data.length)).toEqual(data);
    expect(r.read(ch(0, RESIDUE))).toBe(0);
  });

  it("shares the engine round robin between two channels", () => {
    const r = rig();
    const a = pattern(8192, 1);
    const b = pattern(8192, 2);
    r.fill(SRC, a);
    r.fill(SRC + 0x10000, b);
    r.desc(D0, { src: SRC, dst: DST, len: 8192, flags: LAST });
    r.desc(D0 + 0x40, { src: SRC + 0x10000, dst: DST + 0x10000, len: 8192, flags: LAST });
    r.start(0, D0, mode(1));
    r.start(1, D0 + 0x40, mode(1));
    r.run();
    expect(r.ram(DST, 8192)).toEqual(a);
    expect(r.ram(DST + 0x10000, 8192)).toEqual(b);
    const s0 = r.dmac.channelStats(0);
    const s1 = r.dmac.channelStats(1);
    // Interleaved beat by beat: both end near the end of the total time, one beat apart.
    expect(Math.abs(s0.runEndNs - s1.runEndNs)).toBeLessThanOrEqual(8);
    expect(Math.max(s0.runEndNs, s1.runEndNs)).toBe(2 * 8 * (1 + 256));
  });
});

describe("dmac: peripheral ports and cyclic chains", () => {
  it("plays a cyclic ring into a rate-paced sink: one DESC_DONE per period, until ABORT", () => {
    const r = rig();
    const period = 960;
    const ring = pattern(4 * period, 9);
    r.fill(SRC, ring);
    r.write(pp(0, PP_RATE), 192000); // 48 kHz stereo, 16 bit
    r.write(pp(0, PP_CTRL), 1); // EN, sink
    for (let i = 0; i < 4; i++) r.desc(D0 + 32 * i, { src: SRC + period * i, dst: r.portAddr(0), len: period, flags: IRQF | M2D, next: D0 + 32 * ((i + 1) % 4) });
    let irqs = 0;
    r.start(0, D0, mode(1), DESC_DONE | ERROR);
    // 10 periods of 5 ms each (after the first FIFO fill), acknowledging every period.
    while (r.read(ch(0, DONE_COUNT)) < 10) {
      r.board.scheduler.step();
      if (r.level()) {
        irqs++;
        r.write(ch(0, INT_STATUS), r.read(ch(0, INT_STATUS)));
      }
    }
    expect(irqs).toBe(10);
    const t = r.board.scheduler.now;
    // The sink drains 960 bytes per 5 ms; the channel runs a FIFO (256 bytes) ahead.
    expect(t).toBeGreaterThan(10 * 5_000_000 - 2_000_000);
    expect(t).toBeLessThan(10 * 5_000_000);
    r.write(ch(0, CTRL), ABORT);
    expect(r.read(ch(0, STATUS)) & ACTIVE).toBe(0);
    const count = r.read(pp(0, PP_COUNT));
    expect(count).toBeGreaterThanOrEqual(10 * period);
    const stream = new Uint8Array(count);
    for (let i = 0; i < count; i++) stream[i] = ring[i % ring.length];
    expect(r.read(pp(0, PP_SUM))).toBe(fnv(stream));
    r.board.scheduler.at(t + 50_000_000, "later", () => {});
    r.run();
    expect(r.read(pp(0, PP_COUNT))).toBe(count); // stopped: nothing more arrives
    expect(r.read(pp(0, PP_LEVEL))).toBe(0); // and the FIFO drained
    expect(r.board.log.entries).toEqual([]);
  });

  it("captures from a source port into memory, paced by its rate", () => {
    const r = rig();
    r.write(pp(1, PP_RATE), 1_000_000); // 1 byte per microsecond
    r.write(pp(1, PP_CTRL), 3); // EN, source
    r.desc(D0, { src: r.portAddr(1), dst: DST, len: 1000, flags: LAST | D2M });
    r.start(0, D0, mode(0) | burst(2));
    r.run();
    const got = r.ram(DST, 1000);
    expect([...got]).toEqual(Array.from({ length: 1000 }, (_, i) => i & 0xff));
    const s = r.dmac.channelStats(0);
    expect(s.runEndNs).toBeGreaterThanOrEqual(1000 * 1000); // 1000 bytes at 1 byte/us
    expect(s.runEndNs).toBeLessThan(1000 * 1000 + 1000);
    expect(r.read(pp(1, PP_COUNT))).toBe(1000);
  });

  it("takes PIO through PP_DATA, and logs overflow and underflow", () => {
    const r = rig();
    r.write(pp(0, PP_RATE), 1000); // a slow sink: the FIFO fills
    r.write(pp(0, PP_CTRL), 1);
    for (let i = 0; i < 32; i++) r.write(pp(0, PP_DATA), 0x0706050403020100 + 0, 8);
    expect(r.read(pp(0, PP_LEVEL))).toBe(256);
    r.write(pp(0, PP_DATA), 0xaa, 1);
    expect(r.board.log.errors.map((e) => e.message)).toEqual([expect.stringMatching(/overflow the FIFO: dropped/)]);
    r.write(pp(1, PP_CTRL), 3); // unlimited source
    expect(r.read(pp(1, PP_DATA), 4)).toBe(0x03020100);
    expect(r.read(pp(1, PP_DATA), 2)).toBe(0x0504);
    r.write(pp(2, PP_RATE), 1000);
    r.write(pp(2, PP_CTRL), 3); // a slow source, empty at first
    expect(r.read(pp(2, PP_DATA), 1)).toBe(0xff);
    expect(r.board.log.errors.at(-1)!.message).toMatch(/underflow the FIFO/);
  });
});

describe("dmac: errors halt the channel with a code and raise ERROR", () => {
  const cases: [string, (r: ReturnType<typeof rig>) => number, number, number][] = [
    ["misaligned DESC", (r) => { r.start(0, D0 + 8); return D0 + 8; }, 1, D0 + 8],
    ["descriptor fetch from a hole", (r) => { r.start(0, 0xf0000000); return 0; }, 2, 0xf0000000],
    ["zero length", (r) => { r.desc(D0, { src: SRC, dst: DST, len: 0, flags: LAST }); r.start(0, D0); return 0; }, 3, D0],
    ["reserved flags", (r) => { r.desc(D0, { src: SRC, dst: DST, len: 8, flags: LAST | 0x100 }); r.start(0, D0); return 0; }, 3, D0],
    ["TYPE 3", (r) => { r.desc(D0, { src: SRC, dst: DST, len: 8, flags: LAST | (3 << 4) }); r.start(0, D0); return 0; }, 3, D0],
    ["misaligned NEXT", (r) => { r.desc(D0, { src: SRC, dst: DST, len: 8, flags: 0, next: D0 + 4 }); r.start(0, D0); return 0; }, 3, D0],
    ["peripheral address not a port", (r) => { r.desc(D0, { src: SRC, dst: DST, len: 8, flags: LAST | M2D }); r.start(0, D0); return 0; }, 3, D0],
    ["data read from a hole", (r) => { r.desc(D0, { src: 0xf0000000, dst: DST, len: 64, flags: LAST }); r.start(0, D0); return 0; }, 4, 0xf0000000],
    ["data write to a hole", (r) => { r.desc(D0, { src: SRC, dst: 0xf0000000, len: 64, flags: LAST }); r.start(0, D0, burst(1)); return 0; }, 5, 0xf0000000],
  ];
  for (const [what, setup, code, addr] of cases) {
    it(what, () => {
      const r = rig();
      setup(r);
      r.run();
      expect(r.read(ch(0, STATUS))).toBe(HALTED | (code << 8));
      expect(r.read(ch(0, ERR_ADDR), 8)).toBe(addr);
      expect(r.read(ch(0, INT_STATUS))).toBe(ERROR);
      expect(r.level()).toBe(true);
      expect(r.board.log.errors.length).toBeGreaterThanOrEqual(1);
      expect(r.board.log.errors.at(-1)!.message).toMatch(/channel 0: .*halted with error/);
      // The channel works again after the error is fixed.
      r.write(ch(0, INT_STATUS), ERROR);
      r.desc(D0, { src: SRC, dst: DST, len: 64, flags: LAST });
      r.start(0, D0);
      r.run();
      expect(r.read(ch(0, STATUS))).toBe(0);
      expect(r.read(ch(0, INT_STATUS))).toBe(CHAIN_DONE);
    });
  }
});

describe("dmac: abort, reset and refused programming", () => {
  it("ABORT stops at once without an interrupt; the rest never arrives", () => {
    const r = rig();
    const data = pattern(16384);
    r.fill(SRC, data);
    r.desc(D0, { src: SRC, dst: DST, len: 16384, flags: LAST });
    r.start(0, D0, burst(4));
    r.run(1000);
    r.write(ch(0, CTRL), ABORT);
    expect(r.read(ch(0, STATUS))).toBe(0);
    r.run();
    expect(r.read(ch(0, INT_STATUS))).toBe(0);
    expect(r.level()).toBe(false);
    const got = r.ram(DST, 16384);
    const moved = r.dmac.channelStats(0).bytes;
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(16384);
    expect(got.subarray(0, moved)).toEqual(data.subarray(0, moved));
    expect(got.subarray(moved).every((b) => b === 0)).toBe(true);
    expect(r.board.log.entries).toEqual([]);
  });

  it("global RESET stops everything and clears registers and the line", () => {
    const r = rig();
    r.desc(D0, { src: SRC, dst: DST, len: 64, flags: LAST });
    r.start(0, D0);
    r.run();
    expect(r.level()).toBe(true);
    r.desc(D0 + 32, { src: SRC, dst: DST, len: 65536, flags: LAST });
    r.start(1, D0 + 32);
    r.run(500);
    r.write(GCTRL, 2);
    expect(r.read(GCTRL)).toBe(0);
    expect(r.level()).toBe(false);
    expect(r.read(ch(1, STATUS))).toBe(0);
    expect(r.read(ch(0, INT_STATUS))).toBe(0);
    expect(r.read(ch(1, DESC), 8)).toBe(0);
    r.run();
    expect(r.board.log.entries).toEqual([]);
  });

  it("logs and refuses what the datasheet forbids", () => {
    const r = rig();
    const errs = (): string[] => r.board.log.errors.map((e) => e.message);
    r.write(GCTRL, 0);
    r.desc(D0, { src: SRC, dst: DST, len: 4096, flags: LAST });
    r.start(0, D0);
    expect(r.read(ch(0, STATUS))).toBe(0);
    expect(errs().at(-1)).toMatch(/controller is disabled/);
    r.write(GCTRL, 1);
    r.start(0, D0, mode(0));
    r.write(ch(0, DESC), 0x1000, 8);
    expect(errs().at(-1)).toMatch(/DESC written while the channel is active/);
    r.write(ch(0, CTRL), EN | mode(2));
    expect(errs().at(-1)).toMatch(/MODE\/BURST changed while the channel is active/);
    r.write(ch(0, CTRL), 0);
    expect(errs().at(-1)).toMatch(/write ABORT to stop/);
    expect(r.read(ch(0, STATUS)) & ACTIVE).toBe(ACTIVE);
    r.write(ch(1, CTRL), mode(3));
    expect(errs().at(-1)).toMatch(/MODE 3 is reserved/);
    r.write(ch(1, CTRL), burst(9));
    expect(errs().at(-1)).toMatch(/BURST 9 exceeds 8/);
    r.write(ch(1, STATUS), 1);
    expect(errs().at(-1)).toMatch(/read-only/);
    expect(r.read(ch(1, CTRL), 2)).toBe(0xffff);
    expect(r.read(0x010)).toBe(0xffffffff); // no register there
    expect(r.read(0x600)).toBe(0xffffffff); // between the channels and the ports
    expect(r.read(0xff0)).toBe(0xffffffff);
    r.write(ID, 5);
    expect(errs().at(-1)).toMatch(/read-only register at 0x0/);
    expect(r.read(ch(0, DESC) + 4)).toBe(0); // high half of a 64-bit register
    r.run();
    expect(r.read(ch(0, INT_STATUS))).toBe(CHAIN_DONE);
  });
});
