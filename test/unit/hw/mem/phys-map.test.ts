import { describe, expect, it } from "vitest";
import { BusError, PhysMap } from "../../../../hw/mem/phys-map.ts";
import { MmioRegion, type MmioOps } from "../../../../hw/mem/mmio.ts";

const ops: MmioOps = { read: () => 0, write: () => {} };
const region = (name: string, size: number): MmioRegion => new MmioRegion(name, size, ops);

describe("PhysMap", () => {
  it("keeps RAM ranges sorted and sums their size", () => {
    const m = new PhysMap();
    m.addRam(0x100000000, 0x1000, 1);
    m.addRam(0, 0x2000, 0);
    expect(m.ramRanges.map((r) => r.base)).toEqual([0, 0x100000000]);
    expect(m.ramBytes).toBe(0x3000);
  });

  it("rejects RAM overlapping RAM, including a single shared byte", () => {
    const m = new PhysMap();
    m.addRam(0x1000, 0x1000, 0);
    expect(() => m.addRam(0x1fff, 0x10, 0)).toThrow(/overlaps RAM/);
    expect(() => m.addRam(0x800, 0x801, 0)).toThrow(/overlaps RAM/);
    expect(() => m.addRam(0, 0x10000, 0)).toThrow(/overlaps RAM/);
    // Touching ends are not overlaps.
    m.addRam(0x2000, 0x1000, 0);
    m.addRam(0, 0x1000, 0);
    expect(m.ramRanges).toHaveLength(3);
  });

  it("rejects RAM over MMIO and MMIO over RAM or MMIO", () => {
    const m = new PhysMap();
    m.addRam(0, 0x10000, 0);
    m.addMmio(region("a", 0x1000), 0x20000);
    expect(() => m.addMmio(region("b", 0x1000), 0xf000)).toThrow(/overlaps RAM/);
    expect(() => m.addRam(0x20800, 0x1000, 0)).toThrow(/overlaps MMIO region a/);
    expect(() => m.addMmio(region("c", 0x100), 0x20ff0)).toThrow(/overlaps MMIO region a/);
    m.addMmio(region("d", 0x1000), 0x21000);
    expect(m.mmio.map((r) => r.name)).toEqual(["a", "d"]);
  });

  it("rejects bad ranges", () => {
    const m = new PhysMap();
    expect(() => m.addRam(-1, 10, 0)).toThrow(RangeError);
    expect(() => m.addRam(0, 0, 0)).toThrow(RangeError);
    expect(() => m.addRam(0.5, 10, 0)).toThrow(RangeError);
    expect(() => m.addRam(2 ** 53, 10, 0)).toThrow(RangeError);
    expect(m.ramRanges).toHaveLength(0);
  });

  it("isRam holds only when the whole range lies in RAM", () => {
    const m = new PhysMap();
    m.addRam(0x1000, 0x1000, 0);
    expect(m.isRam(0x1000)).toBe(true);
    expect(m.isRam(0x1fff)).toBe(true);
    expect(m.isRam(0x2000)).toBe(false);
    expect(m.isRam(0xfff)).toBe(false);
    expect(m.isRam(0x1000, 0x1000)).toBe(true);
    expect(m.isRam(0x1001, 0x1000)).toBe(false);
    expect(m.isRam(0xfff, 2)).toBe(false);
    expect(m.ramRangeOf(0x1800)).toEqual({ base: 0x1000, size: 0x1000, node: 0 });
    expect(m.ramRangeOf(0x3000)).toBeNull();
  });

  it("does not treat a range spanning a hole between two RAM ranges as RAM", () => {
    const m = new PhysMap();
    m.addRam(0, 0x1000, 0);
    m.addRam(0x2000, 0x1000, 1);
    expect(m.isRam(0xff0, 0x20)).toBe(false);
    expect(m.ramRangeOf(0x2000)!.node).toBe(1);
  });

  it("mmioAt finds the region containing an address and sets its base", () => {
    const m = new PhysMap();
    const a = region("a", 0x100);
    expect(a.base).toBe(-1);
    m.addMmio(a, 0x8000);
    expect(a.base).toBe(0x8000);
    expect(m.mmioAt(0x8000)).toBe(a);
    expect(m.mmioAt(0x80ff)).toBe(a);
    expect(m.mmioAt(0x8100)).toBeNull();
    expect(m.mmioAt(0x7fff)).toBeNull();
  });

  it("BusError carries the address and direction", () => {
    const r = new BusError(0xdead000, false);
    const w = new BusError(0x1234, true);
    expect(r).toBeInstanceOf(Error);
    expect(r.name).toBe("BusError");
    expect([r.addr, r.isWrite]).toEqual([0xdead000, false]);
    expect(r.message).toBe("bus error: read from unmapped physical address 0xdead000");
    expect([w.addr, w.isWrite]).toEqual([0x1234, true]);
    expect(w.message).toContain("write to");
  });

  it("shares one sparse store for all RAM ranges", () => {
    const m = new PhysMap();
    m.addRam(0, 0x1000, 0);
    m.addRam(64 * 2 ** 30, 0x1000, 1);
    m.ram.write(64 * 2 ** 30, Uint8Array.of(1), 0, 1);
    expect(m.ram.residentPages).toBe(1);
  });
});
