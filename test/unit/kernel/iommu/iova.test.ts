import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { IOVA_GRANULE, IovaDomain, roundup_pow_of_two } from "../../../../kernel/iommu/iova.ts";

const PFN_4G = 2 ** 20;

describe("IovaDomain", () => {
  it("allocates top-down below the limit, never pfn 0", () => {
    const d = new IovaDomain();
    const a = d.alloc_iova(1, 0xff);
    expect(a).toBe(0xff);
    const b = d.alloc_iova(1, 0xff);
    expect(b).toBe(0xfe);
    const c = d.alloc_iova(4, 0xff);
    expect(c).toBe(0xf8);
    // fill the rest: pfn 0 is never handed out
    const got: number[] = [];
    for (;;) {
      const p = d.alloc_iova(1, 0xff);
      if (p < 0) break;
      got.push(p);
    }
    expect(Math.min(...got)).toBe(1);
    expect(got).not.toContain(0);
    expect(d.stats.failures).toBe(1);
  });

  it("rounds short requests to a power of two and aligns them naturally", () => {
    const d = new IovaDomain();
    const p = d.alloc_iova_fast(3, PFN_4G - 1);
    expect(d.size_at(p)).toBe(4);
    expect(p % 4).toBe(0);
    const q = d.alloc_iova_fast(17, PFN_4G - 1);
    expect(d.size_at(q)).toBe(32);
    expect(q % 32).toBe(0);
    // 40 granules are not rounded, but (as Linux's size_aligned) aligned to 64
    const r = d.alloc_iova_fast(40, PFN_4G - 1);
    expect(d.size_at(r)).toBe(40);
    expect(r % 64).toBe(0);
    expect(roundup_pow_of_two(5)).toBe(8);
  });

  it("never hands out a reserved range and merges reserved neighbours", () => {
    const d = new IovaDomain();
    expect(d.reserve_iova(0xfee00, 0xfeeff)).toBe(true);
    expect(d.reserve_iova(0xfef00, 0xfef0f)).toBe(true);
    expect(d.ranges()).toEqual([{ pfn_lo: 0xfee00, pfn_hi: 0xfef0f, reserved: true }]);
    // limit just above the window: allocation lands below it
    const p = d.alloc_iova(16, 0xfef0f);
    expect(p + 15).toBeLessThan(0xfee00);
    expect(d.free_iova(0xfee10)).toBe(0); // reserved ranges are never freed
    // an allocation overlapping a reservation is refused
    expect(d.reserve_iova(p, p)).toBe(false);
  });

  it("frees by any pfn inside the range and reuses the space", () => {
    const d = new IovaDomain();
    const a = d.alloc_iova(8, 0xfff);
    const b = d.alloc_iova(8, 0xfff);
    expect(d.free_iova(a + 3)).toBe(8);
    expect(d.free_iova(a)).toBe(0);
    expect(d.alloc_iova(8, 0xfff)).toBe(a);
    expect(d.find_iova(b + 7)).toEqual({ pfn_lo: b, pfn_hi: b + 7, reserved: false });
    expect(d.find_iova(b + 8)).toEqual({ pfn_lo: a, pfn_hi: a + 7, reserved: false });
  });

  it("exhausts a small limit, fails fast, and recovers after a free", () => {
    const d = new IovaDomain();
    const limit = 63; // pfns 1..63 usable
    const live: number[] = [];
    for (;;) {
      const p = d.alloc_iova(4, limit);
      if (p < 0) break;
      live.push(p);
    }
    expect(live.length).toBe(15); // 4..63 in blocks of 4; 0..3 holds pfn 0
    expect(d.alloc_iova(4, limit)).toBe(-1);
    d.free_iova(live[7]);
    expect(d.alloc_iova(4, limit)).toBe(live[7]);
  });

  it("respects the limit with the cached node above it (a 28-bit device after a 32-bit one)", () => {
    const d = new IovaDomain();
    const hi = d.alloc_iova(1, PFN_4G - 1);
    expect(hi).toBe(PFN_4G - 1);
    const lo = d.alloc_iova(1, 2 ** 16 - 1);
    expect(lo).toBe(2 ** 16 - 1);
    expect(d.alloc_iova(2, 2 ** 16 - 1)).toBe(2 ** 16 - 4 + 0 - 0);
  });

  it("refills a freed gap above the cached node (retry from the limit)", () => {
    const d = new IovaDomain();
    const ps = Array.from({ length: 10 }, () => d.alloc_iova(1, 0xfff));
    d.free_iova(ps[0]); // the highest
    expect(d.alloc_iova(1, 0xfff)).toBe(ps[0]);
  });

  it("stays fast and consistent with thousands of live ranges", () => {
    const d = new IovaDomain();
    const live = new Set<number>();
    for (let i = 0; i < 5000; i++) live.add(d.alloc_iova_fast(1 + (i % 7), PFN_4G - 1));
    let i = 0;
    for (const p of [...live]) if (i++ % 2 === 0) {
      d.free_iova(p);
      live.delete(p);
    }
    for (let j = 0; j < 3000; j++) live.add(d.alloc_iova_fast(1 + (j % 5), PFN_4G - 1));
    expect(d.count).toBe(live.size);
    const r = d.ranges();
    for (let j = 1; j < r.length; j++) expect(r[j].pfn_lo).toBeGreaterThan(r[j - 1].pfn_hi);
  });

  it("property: live ranges never overlap, stay below their limit and above pfn 0", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ op: fc.constant("a" as const), size: fc.integer({ min: 1, max: 40 }), limit: fc.integer({ min: 16, max: 600 }) }), fc.record({ op: fc.constant("f" as const), pick: fc.nat() })), { maxLength: 120 }),
        (ops) => {
          const d = new IovaDomain();
          d.reserve_iova(100, 120);
          const live: { p: number; n: number; limit: number }[] = [];
          for (const o of ops) {
            if (o.op === "a") {
              const p = d.alloc_iova_fast(o.size, o.limit);
              if (p >= 0) live.push({ p, n: d.size_at(p), limit: o.limit });
            } else if (live.length) {
              const [x] = live.splice(o.pick % live.length, 1);
              expect(d.free_iova(x.p)).toBe(x.n);
            }
          }
          const sorted = [...live].sort((a, b) => a.p - b.p);
          for (let i = 0; i < sorted.length; i++) {
            const x = sorted[i];
            expect(x.p).toBeGreaterThanOrEqual(1);
            expect(x.p + x.n - 1).toBeLessThanOrEqual(x.limit);
            expect(x.p + x.n - 1 < 100 || x.p > 120).toBe(true);
            if (i) expect(x.p).toBeGreaterThan(sorted[i - 1].p + sorted[i - 1].n - 1);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("granule helpers", () => {
    const d = new IovaDomain();
    expect(d.iova_pfn(0x12345)).toBe(0x12);
    expect(d.iova_offset(0x12345)).toBe(0x345);
    expect(d.iova_align(1)).toBe(IOVA_GRANULE);
  });
});
