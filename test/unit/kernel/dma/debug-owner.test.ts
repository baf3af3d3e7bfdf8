/**
 * Byte ranges of ownership (kernel/dma/debug-owner.ts): partial syncs hand over ranges, and
 * the entry must say, byte for byte, what a model of one owner per byte says.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { dma_debug_hand_over, dma_debug_owned_part, dma_debug_owner_text } from "../../../../kernel/dma/debug-owner.ts";
import type { dma_debug_entry } from "../../../../kernel/dma/debug-entry.ts";

function entry(size: number): dma_debug_entry {
  return { size, domain: "DEVICE", cpu_owned: null } as unknown as dma_debug_entry;
}

/** What the entry says of byte @i: true when the CPU owns it. */
function cpuOwns(e: dma_debug_entry, i: number): boolean {
  const r = e.cpu_owned;
  if (!r) return e.domain === "CPU";
  for (let j = 0; j < r.length; j += 2) if (i >= r[j] && i < r[j + 1]) return true;
  return false;
}

describe("ownership ranges", () => {
  it("a partial sync for the CPU splits the mapping; syncing the rest back makes it whole again", () => {
    const e = entry(4096);
    dma_debug_hand_over(e, 0, 128, true);
    expect(e.domain).toBe("CPU");
    expect(e.cpu_owned).toEqual([0, 128]);
    expect(dma_debug_owner_text(e)).toBe("0-127");
    dma_debug_hand_over(e, 1024, 2048, true);
    expect(e.cpu_owned).toEqual([0, 128, 1024, 2048]);
    dma_debug_hand_over(e, 0, 4096, false);
    expect(e.domain).toBe("DEVICE");
    expect(e.cpu_owned).toBeNull();
    dma_debug_hand_over(e, 0, 4096, true);
    dma_debug_hand_over(e, 64, 128, false);
    expect(e.cpu_owned).toEqual([0, 64, 128, 4096]);
    dma_debug_hand_over(e, 64, 128, true);
    expect(e.domain).toBe("CPU");
    expect(e.cpu_owned).toBeNull();
  });

  it("coherent allocations have no owner to hand over", () => {
    const e = { size: 64, domain: "COHERENT", cpu_owned: null } as unknown as dma_debug_entry;
    dma_debug_hand_over(e, 0, 32, true);
    expect(e.domain).toBe("COHERENT");
    expect(dma_debug_owned_part(e, 0, 64, true, { lo: 0, hi: 0 })).toBe(false);
    expect(dma_debug_owned_part(e, 0, 64, false, { lo: 0, hi: 0 })).toBe(false);
  });

  it("agrees with a byte model after any sequence of hand-overs, and owned_part finds each side's extent", () => {
    const SIZE = 64;
    const op = fc.record({ from: fc.integer({ min: -8, max: SIZE + 8 }), len: fc.integer({ min: 0, max: SIZE + 8 }), cpu: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), fc.integer({ min: 0, max: SIZE }), fc.integer({ min: 0, max: SIZE }), (ops, q0, q1) => {
        const e = entry(SIZE);
        const model = new Array<boolean>(SIZE).fill(false);
        for (const o of ops) {
          dma_debug_hand_over(e, o.from, o.from + o.len, o.cpu);
          for (let i = Math.max(0, o.from); i < Math.min(SIZE, o.from + o.len); i++) model[i] = o.cpu;
          expect(Array.from({ length: SIZE }, (_, i) => cpuOwns(e, i))).toEqual(model);
          const r = e.cpu_owned;
          const uniform = model.every((x) => x === model[0]);
          expect(r === null).toBe(uniform);
          if (r) {
            expect(e.domain).toBe("CPU");
            for (let j = 0; j < r.length; j += 2) {
              expect(r[j]).toBeLessThan(r[j + 1]);
              if (j > 0) expect(r[j]).toBeGreaterThan(r[j - 1]); // disjoint and not touching
            }
          } else expect(e.domain).toBe(model[0] ? "CPU" : "DEVICE");
        }
        const [from, to] = q0 <= q1 ? [q0, q1] : [q1, q0];
        for (const cpu of [true, false]) {
          const owned = [];
          for (let i = from; i < to; i++) if (model[i] === cpu) owned.push(i);
          const x = { lo: -1, hi: -1 };
          expect(dma_debug_owned_part(e, from, to, cpu, x)).toBe(owned.length > 0);
          if (owned.length > 0) expect([x.lo, x.hi]).toEqual([owned[0], owned.at(-1)! + 1]);
        }
      }),
      { numRuns: 500, seed: 7 },
    );
  });
});
