/**
 * The bucketed indexes behind dma-debug's table (with its graveyard of removed entries) and the
 * sanitizer's physical index, against plain lists scanned the obvious way: the best-fit and
 * ordering rules must come out exactly as a sorted walk gives them, whatever the sizes
 * (page-aligned, unaligned, spilling into later buckets, longer than the bucket walk reaches).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { device } from "../../../../kernel/include/device.ts";
import { DmaDebugTable } from "../../../../kernel/dma/debug-table.ts";
import { DmaDebugEntry, type dma_debug_entry } from "../../../../kernel/dma/debug-entry.ts";
import { AddrBuckets, BUCKET_BYTES } from "../../../../kernel/dma/addr-buckets.ts";
import { PhysIndex, type san_record } from "../../../../kernel/dma/sanitizer/phys-index.ts";

const devs = [new device("a", "pci"), new device("b", "pci")];

const entry = (dev: device, dev_addr: number, size: number, direction: 0 | 1 | 2): dma_debug_entry => ({
  dev, type: "single", dev_addr, phys: dev_addr, cpu_addr: dev_addr, size, direction, attrs: 0, owner: "",
  timeNs: 0, map_err_checked: true, map_err_reported: false, domain: "DEVICE", leak_reported: false, history: [],
});

// near 0, across a 16 MiB radix chunk boundary, and far up (an IOVA-like address)
const base = fc.constantFrom(0, 16 * 2 ** 20 - 20 * 4096, 2 ** 40);
const addr = fc.tuple(base, fc.oneof(fc.integer({ min: 0, max: 40 }).map((p) => p * 4096), fc.integer({ min: 0, max: 40 * 4096 }))).map(([b, o]) => b + o);
const size = fc.oneof(fc.constant(4096), fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 70_000, max: 200_000 }));
const op = fc.record({ add: fc.boolean(), dev: fc.integer({ min: 0, max: 1 }), addr, size, dir: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>, pick: fc.nat() });
const probe = fc.record({ dev: fc.integer({ min: 0, max: 1 }), addr, size: fc.integer({ min: 0, max: 9000 }), dir: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2> });

/** bucket_find_contain by a walk of the starts from addr down, oldest first per start. */
function refContaining(live: dma_debug_entry[], dev: device, a: number, sz: number, dir: number): dma_debug_entry | null {
  const cands = live.filter((e) => e.dev === dev && e.dev_addr <= a && (a < e.dev_addr + e.size || (e.size === 0 && a === e.dev_addr)));
  const order = cands.map((e, i) => ({ e, i })).sort((x, y) => y.e.dev_addr - x.e.dev_addr || x.i - y.i);
  let best: dma_debug_entry | null = null;
  let score = -1;
  for (const { e } of order) {
    const s = (a + sz <= e.dev_addr + e.size ? 2 : 0) + (e.direction === dir ? 1 : 0);
    if (s > score) {
      score = s;
      best = e;
    }
  }
  return best;
}

describe("DmaDebugTable on address buckets", () => {
  it("answers every look-up as a sorted walk would, and remembers the last removal per address", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.array(probe, { minLength: 1, maxLength: 30 }), (ops, probes) => {
        const t = new DmaDebugTable();
        const live: dma_debug_entry[] = [];
        const removed = new Map<string, dma_debug_entry>();
        for (const o of ops) {
          if (o.add || live.length === 0) {
            const e = entry(devs[o.dev], o.addr, o.size, o.dir);
            t.add(e);
            live.push(e);
          } else {
            const [e] = live.splice(o.pick % live.length, 1);
            t.remove(e);
            removed.set(`${e.dev.name}@${e.dev_addr}`, e);
          }
        }
        for (const d of devs) {
          const mine = live.filter((e) => e.dev === d);
          expect(t.count(d)).toBe(mine.length);
          expect(t.live(d)).toEqual(mine.map((e, i) => ({ e, i })).sort((x, y) => x.e.dev_addr - y.e.dev_addr || x.i - y.i).map((x) => x.e));
        }
        for (const p of probes) {
          const d = devs[p.dev];
          expect(t.findContaining(d, p.addr, p.size, p.dir)).toBe(refContaining(live, d, p.addr, p.size, p.dir));
          const at = live.filter((e) => e.dev === d && e.dev_addr === p.addr);
          expect(t.at(d, p.addr)).toEqual(at);
          const exact = at.length === 1 ? at[0] : (at.find((e) => e.size === p.size && e.direction === p.dir) ?? null);
          expect(t.findExact(d, p.addr, { type: "single", size: p.size, direction: p.dir })).toBe(at.length === 0 ? null : exact);
          const next = Math.min(p.addr + p.size, ...live.filter((e) => e.dev === d && e.dev_addr > p.addr).map((e) => e.dev_addr));
          expect(t.nextStart(d, p.addr, p.addr + p.size)).toBe(next);
          expect(t.lastRemoved(d, p.addr)).toBe(removed.get(`${d.name}@${p.addr}`) ?? null);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("soleHolder says yes only for the entry every look-up inside it would find", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 1, maxLength: 20 }), (ops, probes) => {
        const t = new DmaDebugTable();
        const live: DmaDebugEntry[] = [];
        const gone: DmaDebugEntry[] = [];
        for (const o of ops) {
          if (o.add || live.length === 0) {
            const e = new DmaDebugEntry(devs[o.dev], "sg", o.addr, o.addr, o.addr, o.size, o.dir, 0, "DEVICE", 1, 1, "", 0, "dma_map_sg", 0);
            t.add(e);
            live.push(e);
          } else {
            const [e] = live.splice(o.pick % live.length, 1);
            t.remove(e);
            gone.push(e);
          }
        }
        for (const e of gone) expect(t.soleHolder(e.dev, e, e.dev_addr, Math.max(e.size, 1))).toBe(false);
        for (const [pick, off, len] of probes) {
          if (live.length === 0) break;
          const e = live[pick % live.length];
          const a = e.dev_addr + (e.size === 0 ? 0 : off % e.size);
          const sz = 1 + (len % Math.max(e.size, 1));
          expect(t.soleHolder(devs[1 - devs.indexOf(e.dev)], e, a, sz)).toBe(false);
          if (!t.soleHolder(e.dev, e, a, sz)) continue;
          expect(a + sz).toBeLessThanOrEqual(e.dev_addr + e.size);
          for (const dir of [0, 1, 2] as const) expect(t.findContaining(e.dev, a, sz, dir)).toBe(e);
          expect(live.filter((x) => x.dev === e.dev && x !== e && x.dev_addr <= a && a < x.dev_addr + x.size)).toEqual([]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("counts the live items sharing a bucket (AddrBuckets.shared), through ghosts and reuse", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ add: fc.boolean(), key: fc.integer({ min: 0, max: 12 }).map((k) => k * 1024), pick: fc.nat() }), { maxLength: 150 }), fc.constantFrom(0, 4, 1024), (ops, ghosts) => {
        const b = new AddrBuckets<object>(ghosts);
        const live: { key: number; item: object }[] = [];
        for (const o of ops) {
          if (o.add || live.length === 0) {
            const x = { key: o.key, item: {} };
            b.add(x.key, x.item, 100);
            live.push(x);
          } else {
            const [x] = live.splice(o.pick % live.length, 1);
            expect(b.remove(x.key, x.item)).toBe(true);
          }
          const per = new Map<number, number>();
          for (const x of live) per.set(Math.floor(x.key / BUCKET_BYTES), (per.get(Math.floor(x.key / BUCKET_BYTES)) ?? 0) + 1);
          let shared = 0;
          for (const n of per.values()) shared += n - 1;
          expect(b.shared).toBe(shared);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("forgets the least recently removed address first, past 1024 addresses", () => {
    const t = new DmaDebugTable();
    const d = devs[0];
    const es: dma_debug_entry[] = [];
    for (let i = 0; i < 1100; i++) {
      const e = entry(d, i * 64, 64, 1);
      es.push(e);
      t.add(e);
      t.remove(e);
      if (i === 1000) {
        // address 0 removed again: now among the most recent
        const again = entry(d, 0, 64, 1);
        t.add(again);
        t.remove(again);
        es[0] = again;
      }
    }
    expect(t.lastRemoved(d, 0)).toBe(es[0]);
    expect(t.lastRemoved(d, 64)).toBeNull(); // among the 1100 - 1024 oldest
    expect(t.lastRemoved(d, 1099 * 64)).toBe(es[1099]);
  });
});

describe("PhysIndex on address buckets", () => {
  it("returns the overlapping records, by start descending and the later added first", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.array(probe, { minLength: 1, maxLength: 30 }), (ops, probes) => {
        const x = new PhysIndex(() => {
          throw new Error("no lazy entries here");
        });
        const live: san_record[] = [];
        const dummy = entry(devs[0], 0, 0, 1);
        for (const o of ops) {
          if (o.add || live.length === 0) {
            const r: san_record = { e: dummy, lo: o.addr, hi: o.addr + o.size, plo: o.addr, psize: o.size, poff: 0, main: null, more: null, state: 0, cpuWriteAt: -1 };
            x.add(r);
            live.push(r);
          } else x.remove(live.splice(o.pick % live.length, 1)[0]);
        }
        for (const p of probes) {
          const a = p.addr;
          const b = p.addr + p.size;
          const want = live
            .map((r, i) => ({ r, i }))
            .filter(({ r }) => r.lo <= b - 1 && r.hi > a)
            .sort((u, v) => v.r.lo - u.r.lo || v.i - u.i)
            .map(({ r }) => r);
          expect(x.query(a, b)).toBe(want.length);
          expect(x.hits).toEqual(want);
          expect(x.count).toBe(live.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});
