/** The per-page residency counts of a cache level stay exact under random fills, stores and evictions. */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { PhysMap } from "../../../hw/mem/phys-map.ts";
import { MemorySystem } from "../../../hw/cpu/memory-system.ts";
import { MEM_CACHED } from "../../../hw/cpu/memory-types.ts";
import { DIRTY, INVALID, PAGE_BUCKETS, pageBucket, type CacheLevel } from "../../../hw/cpu/cache.ts";
import { Prng } from "../../../hw/core/prng.ts";

function expectCounts(c: CacheLevel): void {
  const valid = new Uint32Array(PAGE_BUCKETS);
  const dirty = new Uint32Array(PAGE_BUCKETS);
  for (let s = 0; s < c.sets * c.ways; s++) {
    if (c.state[s] === INVALID) continue;
    valid[pageBucket(c.tags[s])]++;
    if (c.state[s] === DIRTY) dirty[pageBucket(c.tags[s])]++;
  }
  expect(c.pageValid).toEqual(valid);
  expect(c.pageDirty).toEqual(dirty);
}

describe("cache residency per page", () => {
  it("matches the lines held, through loads, stores, maintenance and device accesses", () => {
    const op = fc.record({ t: fc.integer({ min: 0, max: 5 }), cpu: fc.nat(1), page: fc.nat(40), off: fc.nat(4095), len: fc.integer({ min: 1, max: 9000 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (list) => {
        const map = new PhysMap();
        map.addRam(0, 1 << 20, 0);
        const mem = new MemorySystem(map, {
          cpus: 2, l1: { size: 4096, ways: 2 }, llc: { size: 16384, ways: 4 },
          timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 }, evictionRate: 0.05, prefetchRate: 0.1, prng: new Prng(5),
        });
        const buf = new Uint8Array(9000).fill(7);
        for (const { t, cpu, page, off, len } of list) {
          const a = page * 4096 + off;
          if (t === 0) mem.cpuRead(cpu, a, buf, 0, len, MEM_CACHED);
          else if (t === 1) mem.cpuWrite(cpu, a, buf, 0, len, MEM_CACHED);
          else if (t === 2) mem.cacheClean(cpu, a, len);
          else if (t === 3) mem.cacheInvalidate(cpu, a, len);
          else if (t === 4) mem.deviceWrite(a, buf, 0, len, true);
          else mem.deviceRead(a, buf, 0, len, true);
        }
        for (const c of [...mem.l1, mem.llc]) expectCounts(c);
      }),
      { numRuns: 60 },
    );
  });
});
