import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { NumMap } from "../../../../kernel/dma/num-map.ts";

describe("NumMap", () => {
  it("agrees with a Map through random set / setIfAbsent / delete sequences (growth and backward-shift deletion included)", () => {
    // page-aligned keys, some above 2^32, so the hash's high half matters
    const key = fc.integer({ min: 0, max: 300 }).map((n) => (n % 3 === 0 ? 2 ** 33 : 0) + n * 4096);
    const op = fc.tuple(fc.constantFrom("set", "setIfAbsent", "delete"), key, fc.integer());
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const m = new NumMap<number>();
        const ref = new Map<number, number>();
        for (const [what, k, v] of ops) {
          if (what === "set") {
            m.set(k, v);
            ref.set(k, v);
          } else if (what === "setIfAbsent") {
            expect(m.setIfAbsent(k, v)).toBe(ref.get(k));
            if (!ref.has(k)) ref.set(k, v);
          } else expect(m.delete(k)).toBe(ref.delete(k));
        }
        expect(m.size).toBe(ref.size);
        for (const [k, v] of ref) expect(m.get(k)).toBe(v);
        const seen = new Map<number, number>();
        m.forEach((v, k) => seen.set(k, v));
        expect(seen).toEqual(ref);
        const keys = new Float64Array(m.size);
        expect(m.copyKeys(keys)).toBe(ref.size);
        m.clear();
        expect(m.size).toBe(0);
        expect(m.has(ops[0]?.[1] ?? 0)).toBe(false);
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});
