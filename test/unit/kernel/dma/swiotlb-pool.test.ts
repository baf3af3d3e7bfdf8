/** The swiotlb slot allocator on its own: geometry, alignment, boundaries, merging, fullness. */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { INVALID_PHYS_ADDR, IO_TLB_SEGSIZE, IO_TLB_SIZE, IoTlbPool, type slot_request } from "../../../../kernel/dma/swiotlb-pool.ts";

const START = 0x4000000;
const NONE = Number.MAX_SAFE_INTEGER;

function req(size: number, extra: Partial<slot_request> = {}): slot_request {
  return { orig_addr: 0x100000000, alloc_size: size, alloc_align_mask: 0, min_align_mask: 0, boundary_mask: NONE, offset: 0, ...extra };
}

/** What `list` must hold, recomputed from which slots are used. */
function expectedLists(p: IoTlbPool): number[] {
  const out = new Array<number>(p.nslabs).fill(0);
  for (let i = p.nslabs - 1; i >= 0; i--) {
    if (p.list[i] === 0) continue;
    const endOfSeg = (i + 1) % IO_TLB_SEGSIZE === 0;
    out[i] = 1 + (endOfSeg ? 0 : out[i + 1]);
  }
  return out;
}

describe("IoTlbPool geometry", () => {
  it("starts with every segment free and counts 128..1 in each", () => {
    const p = new IoTlbPool(START, 256);
    expect(p.end - p.start).toBe(256 * IO_TLB_SIZE);
    expect([p.list[0], p.list[127], p.list[128], p.list[255]]).toEqual([128, 1, 128, 1]);
    expect(p.orig_addr.every((a) => a === INVALID_PHYS_ADDR)).toBe(true);
  });

  it("refuses a slot count that is not whole segments", () => {
    expect(() => new IoTlbPool(START, 100)).toThrow(RangeError);
    expect(() => new IoTlbPool(START, 0)).toThrow(RangeError);
  });

  it("allocates contiguous 2 KiB slots and records the original each slot shadows", () => {
    const p = new IoTlbPool(START, 128);
    const i = p.find(req(5000));
    expect(i).toBe(0);
    expect(p.slots_of(i)).toBe(3);
    expect([...p.orig_addr.subarray(0, 4)]).toEqual([0x100000000, 0x100000800, 0x100001000, INVALID_PHYS_ADDR]);
    expect([...p.alloc_size.subarray(0, 3)]).toEqual([5000, 5000 - 2048, 5000 - 4096]);
    expect(p.used).toBe(3);
    expect(p.hiwater).toBe(3);
  });

  it("gives a zero-length mapping one slot of its own", () => {
    const p = new IoTlbPool(START, 128);
    const i = p.find(req(0));
    expect(p.slots_of(i)).toBe(1);
    expect(p.find(req(0))).toBe(i + 1);
  });

  it("page-aligns allocations of a page or more, not smaller ones", () => {
    const p = new IoTlbPool(START, 128);
    expect(p.find(req(100))).toBe(0);
    const big = p.find(req(4096));
    expect(big).toBe(2); // slot 1 is not page aligned
    expect(p.slot_addr(big) % 4096).toBe(0);
    expect(p.find(req(100))).toBe(4); // next fit goes on from where the last search stopped
  });

  it("never lets an allocation leave its 128-slot segment (256 KiB is the most)", () => {
    const p = new IoTlbPool(START, 256);
    expect(p.find(req(IO_TLB_SIZE))).toBe(0);
    const full = p.find(req(128 * IO_TLB_SIZE));
    expect(full).toBe(128);
    expect(p.find(req(128 * IO_TLB_SIZE + 1))).toBe(-1);
    const q = new IoTlbPool(START, 256);
    q.index = 100;
    expect(q.find(req(40 * IO_TLB_SIZE))).toBe(128); // 100..139 would cross into segment 2
  });

  it("honours the device's segment boundary", () => {
    const p = new IoTlbPool(START, 128);
    p.index = 30;
    // 64 KiB boundary = 32 slots: slots 30..33 would straddle it
    const i = p.find(req(4 * IO_TLB_SIZE - 100, { boundary_mask: 0xffff, alloc_align_mask: 0 }));
    const a = p.slot_addr(i);
    expect(Math.floor(a / 0x10000)).toBe(Math.floor((a + 4 * IO_TLB_SIZE - 1) / 0x10000));
    expect(i).toBe(32);
  });

  it("keeps the min_align_mask bits of the original above the slot size", () => {
    const p = new IoTlbPool(START, 128);
    const orig = 0x100000a00; // bit 11 set, 0x200 below the slot size
    const i = p.find(req(100 + 0x200, { orig_addr: orig, min_align_mask: 0xfff, offset: 0x200 }));
    const tlb = p.slot_addr(i) + 0x200;
    expect(tlb & 0xfff).toBe(orig & 0xfff);
    expect(p.alloc_size[i]).toBe(100);
  });

  it("is full when no run fits, and free slots come back merged", () => {
    const p = new IoTlbPool(START, 128);
    const a = p.find(req(64 * IO_TLB_SIZE));
    const b = p.find(req(64 * IO_TLB_SIZE));
    expect(p.find(req(1))).toBe(-1);
    expect(p.used).toBe(128);
    expect(p.release(a)).toBe(64);
    expect(p.find(req(65 * IO_TLB_SIZE))).toBe(-1);
    expect(p.release(b)).toBe(64);
    expect(p.used).toBe(0);
    expect(p.hiwater).toBe(128);
    expect([...p.list]).toEqual(expectedLists(new IoTlbPool(START, 128)));
    expect(p.find(req(128 * IO_TLB_SIZE))).toBe(0);
  });

  it("frees only at the head of a live allocation, once", () => {
    const p = new IoTlbPool(START, 128);
    const a = p.find(req(3 * IO_TLB_SIZE));
    expect(p.release(a + 1)).toBe(0); // the middle of a mapping
    expect(p.release(a)).toBe(3);
    expect(p.release(a)).toBe(0); // double free
    expect(p.release(-1)).toBe(0);
    expect(p.used).toBe(0);
  });

  it("keeps list consistent, runs disjoint and usage exact under random alloc/free", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ op: fc.constant("alloc" as const), size: fc.integer({ min: 1, max: 40 * IO_TLB_SIZE }) }), fc.record({ op: fc.constant("free" as const), pick: fc.nat() })), { maxLength: 60 }),
        (ops) => {
          const p = new IoTlbPool(START, 256);
          const live: number[] = [];
          for (const o of ops) {
            if (o.op === "alloc") {
              const i = p.find(req(o.size));
              if (i >= 0) {
                expect(p.slots_of(i)).toBe(Math.ceil(o.size / IO_TLB_SIZE));
                expect(Math.floor(i / IO_TLB_SEGSIZE)).toBe(Math.floor((i + p.slots_of(i) - 1) / IO_TLB_SEGSIZE));
                if (o.size >= 4096) expect(p.slot_addr(i) % 4096).toBe(0);
                live.push(i);
              }
            } else if (live.length) {
              const [i] = live.splice(o.pick % live.length, 1);
              expect(p.release(i)).toBeGreaterThan(0);
            }
            const owned = new Array<number>(p.nslabs).fill(0);
            for (const i of live) for (let s = i; s < i + p.slots_of(i); s++) owned[s]++;
            expect(owned.every((n) => n <= 1)).toBe(true);
            expect(p.used).toBe(owned.reduce((a, b) => a + b, 0));
            expect(owned.every((n, s) => (n === 1) === (p.list[s] === 0))).toBe(true);
            expect([...p.list]).toEqual(expectedLists(p));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
