import { describe, expect, it } from "vitest";
import { CacheLevel, CLEAN, DIRTY, INVALID, LINE_SIZE } from "../../../../hw/cpu/cache.ts";

/** Counters recomputed from the state array, to compare with the cached ones. */
function recount(c: CacheLevel): { valid: number; dirty: number } {
  let valid = 0;
  let dirty = 0;
  for (const s of c.state) {
    if (s !== INVALID) valid++;
    if (s === DIRTY) dirty++;
  }
  return { valid, dirty };
}

function expectCounters(c: CacheLevel): void {
  expect({ valid: c.validLines, dirty: c.dirtyLines }).toEqual(recount(c));
}

describe("CacheLevel", () => {
  it("derives sets from size, ways and the 64-byte line", () => {
    const c = new CacheLevel("L1", { size: 32768, ways: 8 });
    expect(LINE_SIZE).toBe(64);
    expect(c.sets).toBe(64);
    expect(c.ways).toBe(8);
    expect(c.tags.length).toBe(512);
    expect(c.data.length).toBe(32768);
    expect([...c.tags].every((t) => t === -1)).toBe(true);
    expect(c.validLines).toBe(0);
  });

  it("rejects geometry that does not give a power-of-two set count", () => {
    expect(() => new CacheLevel("x", { size: 3 * 64 * 2, ways: 2 })).toThrow(RangeError); // 3 sets
    expect(() => new CacheLevel("x", { size: 100, ways: 1 })).toThrow(RangeError);
    expect(() => new CacheLevel("x", { size: 64, ways: 2 })).toThrow(RangeError); // half a set
    expect(() => new CacheLevel("x", { size: 0, ways: 1 })).toThrow(RangeError);
    expect(() => new CacheLevel("x", { size: 128, ways: 0 })).toThrow(RangeError);
    expect(() => new CacheLevel("x", { size: 128, ways: -1 })).toThrow(RangeError);
    expect(new CacheLevel("x", { size: 64, ways: 1 }).sets).toBe(1);
  });

  // Regression test for a bug the hw tests found (fixed).
  it("rejects a fractional number of ways", () => {
    expect(() => new CacheLevel("x", { size: 192, ways: 1.5 })).toThrow(RangeError);
  });

  it("finds installed lines only in their own set", () => {
    const c = new CacheLevel("c", { size: 4 * 2 * LINE_SIZE, ways: 2 }); // 4 sets
    expect(c.find(5)).toBe(-1);
    const s = c.victimFor(5);
    expect(Math.floor(s / c.ways)).toBe(5 % 4);
    c.install(s, 5, CLEAN);
    expect(c.find(5)).toBe(s);
    expect(c.find(9)).toBe(-1); // same set, other tag
    expect(c.find(6)).toBe(-1);
    expect(c.dataOffset(s)).toBe(s * LINE_SIZE);
  });

  it("chooses an invalid way before evicting anything", () => {
    const c = new CacheLevel("c", { size: 4 * LINE_SIZE, ways: 4 }); // one set
    const slots = [0, 1, 2, 3].map((line) => {
      const s = c.victimFor(line);
      expect(c.state[s]).toBe(INVALID);
      c.install(s, line, CLEAN);
      return s;
    });
    expect(new Set(slots).size).toBe(4);
    c.drop(slots[2]);
    expect(c.victimFor(99)).toBe(slots[2]);
  });

  it("evicts in least-recently-used order, with touch refreshing a line", () => {
    const c = new CacheLevel("c", { size: 4 * LINE_SIZE, ways: 4 });
    for (const line of [10, 11, 12, 13]) c.install(c.victimFor(line), line, CLEAN);
    expect(c.tags[c.victimFor(14)]).toBe(10);
    c.touch(c.find(10));
    expect(c.tags[c.victimFor(14)]).toBe(11);
    c.touch(c.find(11));
    c.touch(c.find(12));
    expect(c.tags[c.victimFor(14)]).toBe(13);
    // Replacing the victim makes the new line most recent.
    const v = c.victimFor(14);
    c.drop(v);
    c.install(v, 14, CLEAN);
    expect(c.tags[c.victimFor(15)]).toBe(10);
  });

  it("keeps valid and dirty counters right through install, setState and drop", () => {
    const c = new CacheLevel("c", { size: 8 * LINE_SIZE, ways: 2 });
    const a = c.victimFor(0);
    c.install(a, 0, CLEAN);
    const b = c.victimFor(1);
    c.install(b, 1, DIRTY);
    expectCounters(c);
    expect([c.validLines, c.dirtyLines]).toEqual([2, 1]);
    c.setState(a, DIRTY);
    c.setState(a, DIRTY); // no double count
    expect([c.validLines, c.dirtyLines]).toEqual([2, 2]);
    c.setState(b, CLEAN);
    expect([c.validLines, c.dirtyLines]).toEqual([2, 1]);
    c.drop(a); // dirty line dropped
    expect([c.validLines, c.dirtyLines]).toEqual([1, 0]);
    expect(c.tags[a]).toBe(-1);
    expect(c.find(0)).toBe(-1);
    c.drop(a); // dropping an invalid slot changes nothing
    expect([c.validLines, c.dirtyLines]).toEqual([1, 0]);
    c.setState(b, INVALID);
    expect([c.validLines, c.dirtyLines]).toEqual([0, 0]);
    expectCounters(c);
  });

  it("keeps counters right through a long random sequence", () => {
    const c = new CacheLevel("c", { size: 4 * 2 * LINE_SIZE, ways: 2 });
    let x = 7;
    const rnd = (n: number): number => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    for (let i = 0; i < 2000; i++) {
      const line = rnd(20);
      const op = rnd(4);
      let s = c.find(line);
      if (s < 0) {
        s = c.victimFor(line);
        c.drop(s);
        c.install(s, line, op === 0 ? DIRTY : CLEAN);
      } else if (op === 1) c.setState(s, DIRTY);
      else if (op === 2) c.setState(s, CLEAN);
      else if (op === 3) c.drop(s);
      else c.touch(s);
      expectCounters(c);
    }
  });
});
