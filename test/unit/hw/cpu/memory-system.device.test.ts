import { describe, expect, it } from "vitest";
import { PhysMap } from "../../../../hw/mem/phys-map.ts";
import { MmioRegion } from "../../../../hw/mem/mmio.ts";
import { Prng } from "../../../../hw/core/prng.ts";
import { MemorySystem } from "../../../../hw/cpu/memory-system.ts";
import { MEM_CACHED } from "../../../../hw/cpu/memory-types.ts";
import { LINE_SIZE } from "../../../../hw/cpu/cache.ts";

const RAM_SIZE = 1 << 20;

/** Two CPUs, L1 = 8 lines, LLC = 32 lines, 1 MiB RAM at 0. */
function machine(): { map: PhysMap; mem: MemorySystem } {
  const map = new PhysMap();
  map.addRam(0, RAM_SIZE, 0);
  const mem = new MemorySystem(map, {
    cpus: 2,
    l1: { size: 512, ways: 2 },
    llc: { size: 2048, ways: 4 },
    timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 },
    evictionRate: 0,
    prefetchRate: 0,
    prng: new Prng(1),
  });
  return { map, mem };
}

const cpuRead = (mem: MemorySystem, cpu: number, addr: number, len: number): Uint8Array => {
  const out = new Uint8Array(len);
  mem.cpuRead(cpu, addr, out, 0, len, MEM_CACHED);
  return out;
};
const cpuWrite = (mem: MemorySystem, cpu: number, addr: number, bytes: number[]): void =>
  mem.cpuWrite(cpu, addr, Uint8Array.from(bytes), 0, bytes.length, MEM_CACHED);
const devRead = (mem: MemorySystem, addr: number, len: number, coherent: boolean): Uint8Array => {
  const out = new Uint8Array(len);
  expect(mem.deviceRead(addr, out, 0, len, coherent)).toBe(true);
  return out;
};
const devWrite = (mem: MemorySystem, addr: number, bytes: number[], coherent: boolean): void => {
  expect(mem.deviceWrite(addr, Uint8Array.from(bytes), 0, bytes.length, coherent)).toBe(true);
};
const fill = (n: number, v: number): number[] => new Array<number>(n).fill(v);

/** Touch enough other lines that map to the same L1 and LLC sets to push `addr` out of both. */
function evictEverywhere(mem: MemorySystem, cpu: number, addr: number): void {
  // LLC has 8 sets: lines 8 apart share a set, and so do they in the 4-set L1.
  for (let i = 1; i <= 8; i++) cpuRead(mem, cpu, addr + i * 8 * LINE_SIZE * 16, 1);
  expect(mem.whereIs(addr)).toEqual([]);
}

describe("MemorySystem device view", () => {
  it("a non-coherent device does not see a CPU's dirty line until it is cleaned", () => {
    const { mem } = machine();
    cpuWrite(mem, 0, 0x1000, [1, 2, 3, 4]);
    expect(devRead(mem, 0x1000, 4, false)).toEqual(Uint8Array.of(0, 0, 0, 0));
    mem.cacheClean(0, 0x1000, 4);
    expect(devRead(mem, 0x1000, 4, false)).toEqual(Uint8Array.of(1, 2, 3, 4));
    // Clean keeps the line cached, now clean everywhere.
    expect(mem.whereIs(0x1000).every((w) => !w.dirty)).toBe(true);
    expect(mem.whereIs(0x1000).length).toBeGreaterThan(0);
  });

  it("a coherent device sees a CPU's dirty line at once", () => {
    const { mem } = machine();
    cpuWrite(mem, 1, 0x1000, [1, 2, 3, 4]);
    cpuWrite(mem, 0, 0x1100, [5]);
    expect(devRead(mem, 0x1000, 0x101, true)[0x100]).toBe(5);
    expect(devRead(mem, 0x1000, 4, true)).toEqual(Uint8Array.of(1, 2, 3, 4));
  });

  it("a coherent device sees a line that is dirty only in the LLC", () => {
    const { mem } = machine();
    cpuWrite(mem, 0, 0x1000, [7]);
    cpuRead(mem, 1, 0x1000, 1); // snoop moves the dirty data into the LLC
    expect(mem.l1[0].dirtyLines).toBe(0);
    expect(devRead(mem, 0x1000, 1, true)[0]).toBe(7);
  });

  it("a CPU holding a line does not see a non-coherent device write until it invalidates", () => {
    const { mem } = machine();
    expect(cpuRead(mem, 0, 0x2000, 4)).toEqual(Uint8Array.of(0, 0, 0, 0));
    devWrite(mem, 0x2000, [9, 9, 9, 9], false);
    expect(cpuRead(mem, 0, 0x2000, 4)).toEqual(Uint8Array.of(0, 0, 0, 0)); // stale
    // The LLC copy is stale too, so another CPU is no better off.
    expect(cpuRead(mem, 1, 0x2000, 4)).toEqual(Uint8Array.of(0, 0, 0, 0));
    mem.cacheInvalidate(0, 0x2000, 4);
    expect(cpuRead(mem, 0, 0x2000, 4)).toEqual(Uint8Array.of(9, 9, 9, 9));
    expect(cpuRead(mem, 1, 0x2000, 4)).toEqual(Uint8Array.of(9, 9, 9, 9));
  });

  it("a CPU that never cached the line sees a non-coherent device write", () => {
    const { mem } = machine();
    devWrite(mem, 0x2000, [9], false);
    expect(cpuRead(mem, 0, 0x2000, 1)[0]).toBe(9);
  });

  it("a coherent device write is seen by CPUs holding the line", () => {
    const { mem } = machine();
    cpuRead(mem, 0, 0x2000, 64);
    cpuRead(mem, 1, 0x2000, 64);
    devWrite(mem, 0x2000, fill(64, 0x42), true);
    expect(cpuRead(mem, 0, 0x2000, 64)).toEqual(new Uint8Array(64).fill(0x42));
    expect(cpuRead(mem, 1, 0x2000, 64)).toEqual(new Uint8Array(64).fill(0x42));
  });

  it("a coherent device write over part of a dirty line keeps the CPU's other bytes", () => {
    const { map, mem } = machine();
    cpuWrite(mem, 0, 0x3000, fill(64, 0xcc));
    devWrite(mem, 0x3010, fill(8, 0xdd), true);
    const expected = new Uint8Array(64).fill(0xcc);
    expected.fill(0xdd, 0x10, 0x18);
    expect(cpuRead(mem, 0, 0x3000, 64)).toEqual(expected);
    const inRam = new Uint8Array(64);
    map.ram.read(0x3000, inRam, 0, 64);
    expect(inRam).toEqual(expected);
  });

  it("a coherent device write over a whole dirty line replaces it", () => {
    const { mem } = machine();
    cpuWrite(mem, 0, 0x3000, fill(128, 0xcc));
    devWrite(mem, 0x3020, fill(64, 0xdd), true); // tail of one line, head of the next
    const got = cpuRead(mem, 1, 0x3000, 128);
    expect([...got.subarray(0, 0x20)].every((b) => b === 0xcc)).toBe(true);
    expect([...got.subarray(0x20, 0x60)].every((b) => b === 0xdd)).toBe(true);
    expect([...got.subarray(0x60)].every((b) => b === 0xcc)).toBe(true);
  });

  it("a dirty line cleaned after a non-coherent device write destroys the device's bytes", () => {
    const { mem } = machine();
    cpuWrite(mem, 0, 0x4000, [1]); // dirty line covering the device's bytes
    devWrite(mem, 0x4010, [0xee, 0xee], false);
    mem.cacheClean(0, 0x4000, 1);
    expect(devRead(mem, 0x4010, 2, false)).toEqual(Uint8Array.of(0, 0)); // lost write
    expect(devRead(mem, 0x4000, 1, false)[0]).toBe(1);
  });

  it("a dirty line evicted after a non-coherent device write destroys the device's bytes", () => {
    const { mem } = machine();
    cpuWrite(mem, 0, 0x4000, [1]);
    devWrite(mem, 0x4010, [0xee, 0xee], false);
    evictEverywhere(mem, 0, 0x4000);
    expect(devRead(mem, 0x4010, 2, false)).toEqual(Uint8Array.of(0, 0));
    expect(cpuRead(mem, 1, 0x4000, 1)[0]).toBe(1);
  });

  it("invalidate discards dirty data in every level", () => {
    const { mem } = machine();
    devWrite(mem, 0x5000, [3], false);
    cpuWrite(mem, 0, 0x5000, [4]);
    cpuRead(mem, 1, 0x5000, 1); // copies in L1.0, L1.1 and a dirty LLC
    mem.cacheInvalidate(1, 0x5000, 1);
    expect(mem.whereIs(0x5000)).toEqual([]);
    expect(cpuRead(mem, 0, 0x5000, 1)[0]).toBe(3);
    expect(mem.stats.invalidatedLines).toBe(1);
  });

  it("flush writes back, then drops the line", () => {
    const { mem } = machine();
    cpuWrite(mem, 0, 0x6000, [8, 8]);
    mem.cacheFlush(0, 0x6000, 2);
    expect(mem.whereIs(0x6000)).toEqual([]);
    expect(devRead(mem, 0x6000, 2, false)).toEqual(Uint8Array.of(8, 8));
    // A later device write is not hidden by a stale copy.
    devWrite(mem, 0x6000, [1, 1], false);
    expect(cpuRead(mem, 0, 0x6000, 2)).toEqual(Uint8Array.of(1, 1));
  });

  it("maintains every line a range touches, including partial ones at both ends", () => {
    const { mem } = machine();
    for (let i = 0; i < 4; i++) cpuWrite(mem, 0, 0x7000 + i * LINE_SIZE, [i + 1]);
    mem.cacheClean(0, 0x7000 + 63, 2 * LINE_SIZE - 62); // bytes 63..129: lines 0, 1, 2
    expect(devRead(mem, 0x7000, 4 * LINE_SIZE, false).filter((_, i) => i % LINE_SIZE === 0)).toEqual(Uint8Array.of(1, 2, 3, 0));
    expect(mem.stats.cleanedLines).toBe(3);
    mem.cacheClean(0, 0x7000, 0); // empty range: nothing
    expect(mem.stats.cleanedLines).toBe(3);
  });

  it("cleans a line that is dirty only in the LLC", () => {
    const { mem } = machine();
    cpuWrite(mem, 0, 0x8000, [6]);
    for (let i = 1; i <= 2; i++) cpuRead(mem, 0, 0x8000 + i * 4 * LINE_SIZE, 1); // push it out of L1.0's set
    expect(mem.whereIs(0x8000)).toEqual([{ level: "LLC", dirty: true }]);
    mem.cacheClean(1, 0x8000, 1);
    expect(devRead(mem, 0x8000, 1, false)[0]).toBe(6);
    expect(mem.whereIs(0x8000)).toEqual([{ level: "LLC", dirty: false }]);
  });

  it("fails device accesses that are not all RAM, without throwing", () => {
    const { mem } = machine();
    const buf = new Uint8Array(8);
    expect(mem.deviceRead(0x20000000, buf, 0, 4, false)).toBe(false);
    expect(mem.deviceRead(RAM_SIZE - 2, buf, 0, 4, true)).toBe(false);
    expect(mem.deviceWrite(0x20000000, buf, 0, 4, false)).toBe(false);
    expect(mem.deviceWrite(RAM_SIZE - 2, buf, 0, 4, true)).toBe(false);
    expect(mem.stats.deviceErrors).toBe(4);
    expect([mem.stats.deviceReadBytes, mem.stats.deviceWriteBytes]).toEqual([0, 0]);
  });

  it("routes a device write to MMIO as one little-endian register write", () => {
    const { map, mem } = machine();
    const writes: [number, number, number][] = [];
    map.addMmio(new MmioRegion("doorbell", 0x1000, { read: () => 0, write: (o, v, s) => void writes.push([o, v, s]) }), 0x40000000);
    expect(mem.deviceWrite(0x40000004, Uint8Array.of(0x78, 0x56, 0x34, 0x12), 0, 4, false)).toBe(true);
    expect(mem.deviceWrite(0x40000008, Uint8Array.of(1, 2, 3), 0, 3, false)).toBe(false); // not a register size
    expect(mem.deviceWrite(0x40000ffe, Uint8Array.of(1, 2, 3, 4), 0, 4, false)).toBe(false); // runs past the end
    expect(mem.deviceWrite(0x40000000, new Uint8Array(16), 0, 16, false)).toBe(false);
    expect(writes).toEqual([[4, 0x12345678, 4]]);
    const buf = new Uint8Array(4);
    expect(mem.deviceRead(0x40000000, buf, 0, 4, false)).toBe(false); // devices do not read registers
  });

  it("counts device bytes and charges no CPU for them", () => {
    const { mem } = machine();
    devWrite(mem, 0x100, fill(100, 1), true);
    devRead(mem, 0x100, 30, false);
    expect([mem.stats.deviceWriteBytes, mem.stats.deviceReadBytes]).toEqual([100, 30]);
    expect([...mem.charged]).toEqual([0, 0]);
  });
});
