/** The sorted indexes behind dma-debug's table and the sanitizer's physical index, against a plain sorted array. */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SortedKeys, SortedMultiMap } from "../../../../kernel/dma/sorted-keys.ts";

const ops = fc.array(fc.record({ add: fc.boolean(), key: fc.integer({ min: 0, max: 400 }) }), { maxLength: 600 });

describe("SortedKeys", () => {
  it("agrees with a sorted array through inserts and deletes, across chunk splits", () => {
    fc.assert(
      fc.property(ops, fc.integer({ min: -10, max: 410 }), fc.integer({ min: 0, max: 100 }), (list, probe, span) => {
        const s = new SortedKeys();
        const ref = new Set<number>();
        for (const { add, key } of list) {
          if (add && !ref.has(key)) {
            s.insert(key);
            ref.add(key);
          } else if (!add) {
            expect(s.delete(key)).toBe(ref.delete(key));
          }
        }
        const sorted = [...ref].sort((a, b) => a - b);
        expect(s.appendAll([])).toEqual(sorted);
        expect(s.size).toBe(sorted.length);
        expect(s.next(probe)).toBe(sorted.find((x) => x > probe) ?? Infinity);
        const out: number[] = [];
        expect(s.downFrom(probe, probe - span, out)).toBe(out.length);
        expect(out).toEqual(sorted.filter((x) => x <= probe && x >= probe - span).reverse());
        expect(SortedKeys.from(ref, ref.size).appendAll([])).toEqual(sorted);
      }),
    );
  });
});

describe("SortedMultiMap", () => {
  it("keeps per-key insertion order and ordered keys whether or not they were asked for between changes", () => {
    fc.assert(
      fc.property(ops, fc.array(fc.nat(600), { maxLength: 20 }), (list, askAt) => {
        const m = new SortedMultiMap<number>();
        const ref = new Map<number, number[]>();
        list.forEach(({ add, key }, i) => {
          if (askAt.includes(i)) m.keys();
          const l = ref.get(key) ?? [];
          if (add) {
            m.add(key, i);
            l.push(i);
            ref.set(key, l);
          } else if (l.length) {
            const v = l[Math.floor(l.length / 2)];
            expect(m.remove(key, v)).toBe(true);
            l.splice(l.indexOf(v), 1);
            if (!l.length) ref.delete(key);
          } else {
            expect(m.remove(key, i)).toBe(false);
          }
        });
        expect(m.keys().appendAll([])).toEqual([...ref.keys()].sort((a, b) => a - b));
        for (const [k, l] of ref) expect(m.get(k)).toEqual(l);
        expect(m.count).toBe([...ref.values()].reduce((n, l) => n + l.length, 0));
      }),
    );
  });
});
