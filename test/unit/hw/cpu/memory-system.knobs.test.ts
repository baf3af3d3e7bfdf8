import { describe, expect, it } from "vitest";
import { PhysMap } from "../../../../hw/mem/phys-map.ts";
import { Prng } from "../../../../hw/core/prng.ts";
import { MemorySystem } from "../../../../hw/cpu/memory-system.ts";
import { MEM_CACHED, type MemorySystemOptions } from "../../../../hw/cpu/memory-types.ts";
import { LINE_SIZE } from "../../../../hw/cpu/cache.ts";

const RAM_SIZE = 1 << 16;

function machine(o: Partial<MemorySystemOptions> = {}): { map: PhysMap; mem: MemorySystem } {
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
    ...o,
  });
  return { map, mem };
}

/** A fixed workload: both CPUs write and read a few KiB; returns what each read saw. */
function workload(mem: MemorySystem): number[] {
  const seen: number[] = [];
  for (let i = 0; i < 400; i++) {
    const cpu = i % 2;
    const addr = ((i * 97) % 40) * LINE_SIZE + (i % 61);
    mem.cpuStore(cpu, addr, i & 0xff, 1, MEM_CACHED);
    seen.push(mem.cpuLoad(1 - cpu, ((i * 13) % 40) * LINE_SIZE + ((i + 7) % 61), 1, MEM_CACHED));
  }
  return seen;
}

/** Where every line of the workload range currently is. */
const snapshot = (mem: MemorySystem): string =>
  JSON.stringify(Array.from({ length: 41 }, (_, l) => mem.whereIs(l * LINE_SIZE)));

describe("MemorySystem seeded eviction and prefetch", () => {
  it("injected evictions never change what the CPUs read", () => {
    const plain = workload(machine().mem);
    const { mem } = machine({ evictionRate: 1, prng: new Prng(5) });
    expect(workload(mem)).toEqual(plain);
    expect(mem.stats.evictionsInjected).toBeGreaterThan(100);
  });

  it("prefetching never changes what the CPUs read", () => {
    const plain = workload(machine().mem);
    const { mem } = machine({ prefetchRate: 1, prng: new Prng(5) });
    expect(workload(mem)).toEqual(plain);
    expect(mem.stats.prefetches).toBeGreaterThan(0);
  });

  it("both knobs at once still never change what the CPUs read", () => {
    const plain = workload(machine().mem);
    for (const seed of [1, 2, 3]) {
      const { mem } = machine({ evictionRate: 0.3, prefetchRate: 0.5, prng: new Prng(seed) });
      expect(workload(mem)).toEqual(plain);
    }
  });

  it("gives the same cache contents for the same seed", () => {
    const a = machine({ evictionRate: 0.5, prefetchRate: 0.5, prng: new Prng(77) }).mem;
    const b = machine({ evictionRate: 0.5, prefetchRate: 0.5, prng: new Prng(77) }).mem;
    workload(a);
    workload(b);
    expect(snapshot(a)).toBe(snapshot(b));
    expect(a.stats).toEqual(b.stats);
    expect([...a.charged]).toEqual([...b.charged]);
  });

  it("changes cache contents with the knobs on, and with the seed", () => {
    const off = machine().mem;
    workload(off);
    const states = [1, 2, 3, 4].map((seed) => {
      const m = machine({ evictionRate: 0.5, prefetchRate: 0.5, prng: new Prng(seed) }).mem;
      workload(m);
      return snapshot(m);
    });
    expect(states).not.toContain(snapshot(off));
    expect(new Set(states).size).toBeGreaterThan(1);
  });

  it("an injected eviction writes the dirty line back to RAM", () => {
    const { map, mem } = machine({ evictionRate: 1, prng: new Prng(3) });
    mem.cpuStore(0, 0x100, 0xab, 1, MEM_CACHED); // the only line in L1.0
    mem.cpuLoad(0, 0x800, 1, MEM_CACHED); // the eviction before this access takes line 0x100
    expect(mem.whereIs(0x100)).toEqual([]);
    const b = new Uint8Array(1);
    map.ram.read(0x100, b, 0, 1);
    expect(b[0]).toBe(0xab);
  });

  it("prefetches the next line on a miss, without charging for it", () => {
    const { mem } = machine({ prefetchRate: 1 });
    mem.cpuLoad(0, 0x1000, 4, MEM_CACHED);
    expect(mem.whereIs(0x1040).map((w) => w.level)).toContain("L1.0");
    expect(mem.charged[0]).toBe(80);
    expect(mem.stats.prefetches).toBe(1);
    const before = mem.charged[0];
    mem.cpuLoad(0, 0x1040, 4, MEM_CACHED);
    expect(mem.charged[0] - before).toBe(1); // an L1 hit
  });

  it("a prefetch pulls another CPU's dirty line out coherently", () => {
    const { mem } = machine({ prefetchRate: 1 });
    mem.cpuStore(1, 0x1040, 0x5a, 1, MEM_CACHED);
    mem.cpuLoad(0, 0x1000, 1, MEM_CACHED); // prefetches 0x1040 into L1.0
    mem.cpuStore(1, 0x1040, 0x5b, 1, MEM_CACHED); // must drop L1.0's prefetched copy
    expect(mem.cpuLoad(0, 0x1040, 1, MEM_CACHED)).toBe(0x5b);
  });

  it("does not prefetch past the end of RAM", () => {
    const { mem } = machine({ prefetchRate: 1 });
    expect(mem.cpuLoad(0, RAM_SIZE - 4, 4, MEM_CACHED)).toBe(0);
    expect(mem.stats.prefetches).toBe(0);
  });

  // Regression test for a bug the hw tests found (fixed).
  it("a one-line L1 with prefetch still reads back what was written", () => {
    const { mem } = machine({ l1: { size: 64, ways: 1 }, prefetchRate: 1 });
    mem.cpuStore(0, 0x40, 0x22, 1, MEM_CACHED);
    mem.cpuStore(0, 0x00, 0x11, 1, MEM_CACHED);
    expect(mem.cpuLoad(0, 0x00, 1, MEM_CACHED)).toBe(0x11);
    expect(mem.cpuLoad(0, 0x40, 1, MEM_CACHED)).toBe(0x22);
  });
});
