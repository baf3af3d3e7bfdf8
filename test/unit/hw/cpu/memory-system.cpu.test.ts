import { describe, expect, it } from "vitest";
import { BusError, PhysMap } from "../../../../hw/mem/phys-map.ts";
import { MmioRegion, type AccessSize } from "../../../../hw/mem/mmio.ts";
import { Prng } from "../../../../hw/core/prng.ts";
import { MemorySystem } from "../../../../hw/cpu/memory-system.ts";
import { MEM_CACHED, MEM_UNCACHED, MEM_WC, type MemorySystemOptions, type MemType } from "../../../../hw/cpu/memory-types.ts";
import { LINE_SIZE } from "../../../../hw/cpu/cache.ts";

const TIMING = { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 };
const RAM_SIZE = 1 << 20;
const MMIO_BASE = 0x40000000;

/** Two CPUs, L1 = 4 sets x 2 ways (8 lines), LLC = 8 sets x 4 ways (32 lines), 1 MiB RAM at 0. */
function machine(o: Partial<MemorySystemOptions> = {}): { map: PhysMap; mem: MemorySystem } {
  const map = new PhysMap();
  map.addRam(0, RAM_SIZE, 0);
  const mem = new MemorySystem(map, {
    cpus: 2,
    l1: { size: 512, ways: 2 },
    llc: { size: 2048, ways: 4 },
    timing: TIMING,
    evictionRate: 0,
    prefetchRate: 0,
    prng: new Prng(1),
    ...o,
  });
  return { map, mem };
}

const read = (mem: MemorySystem, cpu: number, addr: number, len: number, type: MemType = MEM_CACHED): Uint8Array => {
  const out = new Uint8Array(len);
  mem.cpuRead(cpu, addr, out, 0, len, type);
  return out;
};
const write = (mem: MemorySystem, cpu: number, addr: number, bytes: number[] | Uint8Array, type: MemType = MEM_CACHED): void => {
  const src = Uint8Array.from(bytes);
  mem.cpuWrite(cpu, addr, src, 0, src.length, type);
};
const ram = (map: PhysMap, addr: number, len: number): Uint8Array => {
  const out = new Uint8Array(len);
  map.ram.read(addr, out, 0, len);
  return out;
};
const pattern = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);

describe("MemorySystem CPU view", () => {
  it("reads zero from memory nobody wrote", () => {
    const { mem } = machine();
    expect(read(mem, 0, 0x1230, 100)).toEqual(new Uint8Array(100));
  });

  it("reads back a CPU's own writes of any size and alignment", () => {
    const { mem } = machine();
    const data = pattern(300, 1);
    write(mem, 0, 0x1003, data); // starts mid-line, spans five lines
    expect(read(mem, 0, 0x1003, 300)).toEqual(data);
    expect(read(mem, 0, 0x1003 + 61, 5)).toEqual(data.subarray(61, 66));
    write(mem, 0, 0x1040, [0xab]);
    expect(read(mem, 0, 0x103f, 3)).toEqual(Uint8Array.of(data[60], 0xab, data[62]));
  });

  it("lets another CPU read what one CPU wrote", () => {
    const { mem } = machine();
    write(mem, 0, 0x2000, [1, 2, 3, 4]);
    expect(read(mem, 1, 0x2000, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    write(mem, 1, 0x2002, [9]);
    expect(read(mem, 0, 0x2000, 4)).toEqual(Uint8Array.of(1, 2, 9, 4));
  });

  it("keeps both CPUs' writes to different bytes of one line", () => {
    const { map, mem } = machine();
    for (let i = 0; i < 16; i++) write(mem, i % 2, 0x3000 + i, [0x10 + i]);
    const expected = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
    expect(read(mem, 0, 0x3000, 16)).toEqual(expected);
    expect(read(mem, 1, 0x3000, 16)).toEqual(expected);
    mem.cacheClean(0, 0x3000, 64);
    expect(ram(map, 0x3000, 16)).toEqual(expected);
  });

  it("holds a dirty line in at most one L1", () => {
    const { mem } = machine();
    read(mem, 0, 0x3000, 1);
    read(mem, 1, 0x3000, 1);
    expect(mem.whereIs(0x3000).map((w) => w.level)).toEqual(["L1.0", "L1.1", "LLC"]);
    write(mem, 1, 0x3000, [5]);
    expect(mem.whereIs(0x3000).filter((w) => w.level.startsWith("L1"))).toEqual([{ level: "L1.1", dirty: true }]);
    read(mem, 0, 0x3000, 1); // snoop: the dirty copy goes to the LLC and both L1s hold it clean
    expect(mem.whereIs(0x3000)).toEqual([
      { level: "L1.0", dirty: false },
      { level: "L1.1", dirty: false },
      { level: "LLC", dirty: true },
    ]);
  });

  it("keeps dirty data through L1 and LLC evictions", () => {
    const { map, mem } = machine();
    const lines = 128; // four times the LLC, sixteen times an L1
    for (let i = 0; i < lines; i++) write(mem, i % 2, i * LINE_SIZE, pattern(LINE_SIZE, i));
    expect(mem.stats.writebacks).toBeGreaterThan(0);
    // The first lines have left every cache: RAM holds them.
    expect(mem.whereIs(0)).toEqual([]);
    expect(ram(map, 0, LINE_SIZE)).toEqual(pattern(LINE_SIZE, 0));
    for (let i = 0; i < lines; i++) expect(read(mem, (i + 1) % 2, i * LINE_SIZE, LINE_SIZE)).toEqual(pattern(LINE_SIZE, i));
    expect(mem.l1[0].validLines).toBeLessThanOrEqual(8);
    expect(mem.llc.validLines).toBeLessThanOrEqual(32);
  });

  it("fills memory through the cache", () => {
    const { map, mem } = machine();
    mem.cpuFill(0, 0x5010, 0x7e, 200, MEM_CACHED);
    expect(read(mem, 1, 0x500f, 202)).toEqual(Uint8Array.from({ length: 202 }, (_, i) => (i === 0 || i === 201 ? 0 : 0x7e)));
    expect(ram(map, 0x5010, 1)[0]).toBe(0); // still only in the cache
    mem.cpuFill(0, 0x6000, 0x33, 10, MEM_UNCACHED);
    expect(ram(map, 0x6000, 10)).toEqual(new Uint8Array(10).fill(0x33));
  });

  it("stores and loads typed values little-endian", () => {
    const { mem } = machine();
    mem.cpuStore(0, 0x100, 0x11223344, 4, MEM_CACHED);
    expect(read(mem, 0, 0x100, 4)).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    mem.cpuStore(0, 0x104, 0xbeef, 2, MEM_CACHED);
    expect(read(mem, 1, 0x104, 2)).toEqual(Uint8Array.of(0xef, 0xbe));
    mem.cpuStore(0, 0x106, 0x1ff, 1, MEM_CACHED); // truncated to the access size
    expect(mem.cpuLoad(1, 0x106, 1, MEM_CACHED)).toBe(0xff);
    expect(mem.cpuLoad(1, 0x100, 4, MEM_CACHED)).toBe(0x11223344);
    expect(mem.cpuLoad(1, 0x100, 2, MEM_CACHED)).toBe(0x3344);
    mem.cpuStore(0, 0x200, 0xffffffff, 4, MEM_CACHED);
    expect(mem.cpuLoad(0, 0x200, 4, MEM_CACHED)).toBe(0xffffffff);
  });

  it("round-trips 8-byte values up to 2^53 - 1 exactly, across a line boundary too", () => {
    const { mem } = machine();
    for (const [addr, v] of [
      [0x300, 2 ** 53 - 1],
      [0x308, 2 ** 32 + 5],
      [0x310, 0x0102030405060708],
      [0x33c, 2 ** 40 + 3], // spans two lines
      [0x348, 0],
    ]) {
      mem.cpuStore(0, addr, v, 8, MEM_CACHED);
      expect(mem.cpuLoad(1, addr, 8, MEM_CACHED)).toBe(v);
    }
    expect(read(mem, 0, 0x308, 8)).toEqual(Uint8Array.of(5, 0, 0, 0, 1, 0, 0, 0));
  });

  it("sends uncached accesses straight to RAM, past a dirty cached copy", () => {
    const { map, mem } = machine();
    write(mem, 0, 0x7000, [0xaa, 0xaa]);
    expect(read(mem, 0, 0x7000, 2, MEM_UNCACHED)).toEqual(Uint8Array.of(0, 0)); // cache and RAM disagree
    write(mem, 1, 0x7000, [0x55], MEM_UNCACHED);
    expect(ram(map, 0x7000, 2)).toEqual(Uint8Array.of(0x55, 0));
    expect(read(mem, 0, 0x7000, 2)).toEqual(Uint8Array.of(0xaa, 0xaa)); // cached copy unchanged
    expect(mem.stats.uncachedAccesses).toBe(2);
    expect(mem.whereIs(0x7000)).toEqual([
      { level: "L1.0", dirty: true },
      { level: "LLC", dirty: false },
    ]);
  });

  it("keeps write-combining stores out of RAM until the buffer drains", () => {
    const { map, mem } = machine();
    map.ram.write(0x8000, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), 0, 8);
    write(mem, 0, 0x8001, [0xa1, 0xa2], MEM_WC);
    write(mem, 0, 0x8005, [0xa5], MEM_WC);
    expect(ram(map, 0x8000, 8)).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    mem.wcDrain(1); // another CPU's barrier does nothing to this buffer
    expect(ram(map, 0x8001, 1)[0]).toBe(2);
    mem.wcDrain(0);
    // Only the bytes written leave the buffer; the others keep their RAM value.
    expect(ram(map, 0x8000, 8)).toEqual(Uint8Array.of(1, 0xa1, 0xa2, 4, 5, 0xa5, 7, 8));
    expect(mem.charged[0]).toBe(TIMING.uncachedNs);
    mem.wcDrain(0); // empty buffer: nothing charged
    expect(mem.charged[0]).toBe(TIMING.uncachedNs);
  });

  it("drains write-combining stores on another line, an uncached access or MMIO", () => {
    const { map, mem } = machine();
    const regs: number[] = [];
    map.addMmio(new MmioRegion("dev", 0x100, { read: () => 7, write: (_o, v) => regs.push(v) }), MMIO_BASE);
    write(mem, 0, 0x9000, [1], MEM_WC);
    write(mem, 0, 0x9040, [2], MEM_WC); // another line pushes the first out
    expect(ram(map, 0x9000, 1)[0]).toBe(1);
    expect(ram(map, 0x9040, 1)[0]).toBe(0);
    expect(read(mem, 0, 0x9040, 1, MEM_UNCACHED)[0]).toBe(2); // the uncached read drains first
    write(mem, 0, 0x9080, [3], MEM_WC);
    mem.mmioWrite(0, MMIO_BASE, 1, 4);
    expect(ram(map, 0x9080, 1)[0]).toBe(3);
    write(mem, 0, 0x90c0, [4], MEM_WC);
    mem.mmioRead(0, MMIO_BASE, 4);
    expect(ram(map, 0x90c0, 1)[0]).toBe(4);
    write(mem, 0, 0x9100, [5], MEM_WC);
    write(mem, 0, 0x9200, [0], MEM_UNCACHED);
    expect(ram(map, 0x9100, 1)[0]).toBe(5);
    expect(regs).toEqual([1]);
  });

  it("throws BusError for CPU accesses to holes or past the end of RAM", () => {
    const { mem } = machine();
    const busError = (fn: () => unknown): BusError => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(BusError);
        return e as BusError;
      }
      throw new Error("expected a BusError");
    };
    let e = busError(() => read(mem, 0, 0x20000000, 4));
    expect([e.addr, e.isWrite]).toEqual([0x20000000, false]);
    e = busError(() => write(mem, 1, RAM_SIZE - 2, [1, 2, 3, 4]));
    expect([e.addr, e.isWrite]).toEqual([RAM_SIZE - 2, true]);
    busError(() => mem.cpuLoad(0, RAM_SIZE, 4, MEM_UNCACHED));
    busError(() => mem.cpuStore(0, RAM_SIZE, 1, 4, MEM_WC));
    busError(() => mem.mmioRead(0, 0x20000000, 4));
    e = busError(() => mem.mmioWrite(0, 0x20000000, 0, 4));
    expect(e.isWrite).toBe(true);
    busError(() => mem.mmioRead(0, 0x100, 4)); // RAM is not a register window
    // Nothing partial was written before the error.
    expect(read(mem, 0, RAM_SIZE - 2, 2)).toEqual(Uint8Array.of(0, 0));
  });

  it("dispatches MMIO to the region with its offset, size and value", () => {
    const { map, mem } = machine();
    const log: string[] = [];
    const r = new MmioRegion("dev", 0x1000, {
      read: (o, s) => {
        log.push(`r ${o.toString(16)}/${s}`);
        return 0x1000 + o;
      },
      write: (o, v, s) => void log.push(`w ${o.toString(16)}/${s}=${v.toString(16)}`),
    });
    map.addMmio(r, MMIO_BASE);
    expect(mem.mmioRead(1, MMIO_BASE + 0x10, 4)).toBe(0x1010);
    mem.mmioWrite(1, MMIO_BASE + 0xff8, 0xdeadbeef, 8 as AccessSize);
    expect(log).toEqual(["r 10/4", "w ff8/8=deadbeef"]);
    expect(() => mem.mmioRead(1, MMIO_BASE + 0xffe, 4)).toThrow(BusError); // runs past the region
    expect([mem.stats.mmioReads, mem.stats.mmioWrites]).toEqual([1, 1]);
    expect(mem.charged[1]).toBe(2 * TIMING.mmioNs);
    expect(mem.charged[0]).toBe(0);
  });

  it("charges an L1 hit less than an LLC hit, and an LLC hit less than RAM", () => {
    const { mem } = machine();
    const cost = (cpu: number, fn: () => void): number => {
      const before = mem.charged[cpu];
      fn();
      return mem.charged[cpu] - before;
    };
    const ramMiss = cost(0, () => read(mem, 0, 0x4000, 4));
    const l1Hit = cost(0, () => read(mem, 0, 0x4004, 4));
    const llcHit = cost(1, () => read(mem, 1, 0x4000, 4));
    expect([l1Hit, llcHit, ramMiss]).toEqual([TIMING.l1HitNs, TIMING.llcHitNs, TIMING.ramNs]);
    expect(cost(0, () => read(mem, 0, 0x4000 + 60, 8))).toBe(TIMING.l1HitNs + TIMING.ramNs); // one per line
    expect(cost(0, () => mem.cacheClean(0, 0x4000, 3 * LINE_SIZE))).toBe(3 * TIMING.llcHitNs);
    expect(cost(1, () => read(mem, 1, 0x4000, 4, MEM_UNCACHED))).toBe(TIMING.uncachedNs);
  });

  it("counts hits and misses at both levels", () => {
    const { mem } = machine();
    read(mem, 0, 0x4000, 4); // L1 miss, LLC miss
    read(mem, 0, 0x4000, 4); // L1 hit
    read(mem, 1, 0x4000, 4); // L1 miss, LLC hit
    write(mem, 1, 0x4000, [1]); // L1 hit
    const s = mem.stats;
    expect([s.l1Hits, s.l1Misses, s.llcHits, s.llcMisses]).toEqual([2, 2, 1, 1]);
  });
});
