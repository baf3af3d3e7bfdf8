import { describe, expect, it } from "vitest";
import { Scheduler } from "../../../../hw/core/scheduler.ts";

describe("Scheduler", () => {
  it("starts at time zero with nothing pending", () => {
    const s = new Scheduler();
    expect(s.now).toBe(0);
    expect(s.pending).toBe(0);
    expect(s.peekTime()).toBe(Infinity);
    expect(s.step()).toBe(false);
  });

  it("runs events in time order whatever order they were scheduled in", () => {
    const s = new Scheduler();
    const seen: string[] = [];
    for (const t of [50, 10, 40, 20, 30, 0]) s.after(t, `e${t}`, () => seen.push(`${t}@${s.now}`));
    s.runUntilIdle();
    expect(seen).toEqual(["0@0", "10@10", "20@20", "30@30", "40@40", "50@50"]);
    expect(s.now).toBe(50);
    expect(s.executed).toBe(6);
  });

  it("runs events due at the same instant in the order they were scheduled", () => {
    const s = new Scheduler();
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) s.at(100, `e${i}`, () => seen.push(i));
    s.after(5, "early", () => seen.push(-1));
    s.runUntilIdle();
    expect(seen).toEqual([-1, ...Array.from({ length: 50 }, (_, i) => i)]);
  });

  it("orders a large random mix of events by (time, seq)", () => {
    const s = new Scheduler();
    const seen: { t: number; i: number }[] = [];
    let x = 12345;
    for (let i = 0; i < 500; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const t = x % 37;
      s.at(t, "e", () => seen.push({ t, i }));
    }
    s.runUntilIdle();
    const sorted = [...seen].sort((a, b) => a.t - b.t || a.i - b.i);
    expect(seen).toEqual(sorted);
  });

  it("schedules a zero delay after what is already queued for this instant", () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.at(10, "a", () => {
      seen.push("a");
      s.after(0, "c", () => seen.push("c"));
    });
    s.at(10, "b", () => seen.push("b"));
    s.runUntilIdle();
    expect(seen).toEqual(["a", "b", "c"]);
  });

  it("does not run a cancelled event and excludes it from pending", () => {
    const s = new Scheduler();
    const seen: string[] = [];
    const a = s.after(10, "a", () => seen.push("a"));
    s.after(20, "b", () => seen.push("b"));
    expect(s.pending).toBe(2);
    s.cancel(a);
    expect(s.pending).toBe(1);
    s.runUntilIdle();
    expect(seen).toEqual(["b"]);
    expect(s.pending).toBe(0);
  });

  it("treats cancelling twice, after running, or null as harmless", () => {
    const s = new Scheduler();
    const a = s.after(1, "a", () => {});
    s.after(2, "b", () => {});
    s.cancel(a);
    s.cancel(a);
    expect(s.pending).toBe(1);
    s.runUntilIdle();
    const c = s.after(1, "c", () => {});
    s.step();
    s.cancel(c);
    s.cancel(null);
    s.cancel(undefined);
    expect(s.pending).toBe(0);
  });

  it("lets an event cancel a later one", () => {
    const s = new Scheduler();
    const seen: string[] = [];
    const later = s.after(20, "later", () => seen.push("later"));
    s.after(10, "canceller", () => s.cancel(later));
    expect(s.runUntilIdle()).toBe(1);
    expect(seen).toEqual([]);
  });

  it("skips cancelled events in peekTime", () => {
    const s = new Scheduler();
    const a = s.after(5, "a", () => {});
    const b = s.after(7, "b", () => {});
    s.after(9, "c", () => {});
    s.cancel(a);
    s.cancel(b);
    expect(s.peekTime()).toBe(9);
  });

  it("runFor runs what is due within the window and sets the clock exactly", () => {
    const s = new Scheduler();
    const seen: number[] = [];
    s.after(10, "a", () => seen.push(s.now));
    s.after(100, "b", () => seen.push(s.now));
    s.after(101, "c", () => seen.push(s.now));
    s.runFor(100);
    expect(seen).toEqual([10, 100]);
    expect(s.now).toBe(100);
    expect(s.pending).toBe(1);
    s.runFor(0);
    expect(s.now).toBe(100);
    s.runFor(50);
    expect(seen).toEqual([10, 100, 101]);
    expect(s.now).toBe(150);
  });

  it("runFor also runs events scheduled by events inside the window", () => {
    const s = new Scheduler();
    const seen: number[] = [];
    const tick = (): void => {
      seen.push(s.now);
      s.after(10, "tick", tick);
    };
    s.after(0, "tick", tick);
    s.runFor(35);
    expect(seen).toEqual([0, 10, 20, 30]);
    expect(s.now).toBe(35);
    expect(s.pending).toBe(1);
  });

  it("runUntilIdle stops after maxEvents and returns the number run", () => {
    const s = new Scheduler();
    for (let i = 0; i < 5; i++) s.after(i, "e", () => {});
    expect(s.runUntilIdle(3)).toBe(3);
    expect(s.pending).toBe(2);
    expect(s.runUntilIdle()).toBe(2);
    expect(s.runUntilIdle()).toBe(0);
  });

  it("rounds fractional delays to whole nanoseconds", () => {
    const s = new Scheduler();
    expect(s.after(2.4, "a", () => {}).time).toBe(2);
    expect(s.after(2.6, "b", () => {}).time).toBe(3);
  });

  it("rejects negative, NaN and infinite delays", () => {
    const s = new Scheduler();
    expect(() => s.after(-1, "neg", () => {})).toThrow(RangeError);
    expect(() => s.after(NaN, "nan", () => {})).toThrow(RangeError);
    expect(() => s.after(Infinity, "inf", () => {})).toThrow(RangeError);
    expect(s.pending).toBe(0);
  });

  it("rejects an absolute time in the past", () => {
    const s = new Scheduler();
    s.runFor(100);
    expect(() => s.at(99, "past", () => {})).toThrow(RangeError);
    expect(s.at(100, "now", () => {}).time).toBe(100);
  });

  // Regression test for a bug the hw tests found (fixed).
  it("rejects NaN as an absolute time", () => {
    const s = new Scheduler();
    expect(() => s.at(NaN, "nan", () => {})).toThrow(RangeError);
  });

  // Regression test for a bug the hw tests found (fixed).
  it("rejects a negative or NaN runFor duration instead of moving the clock", () => {
    const s = new Scheduler();
    s.runFor(100);
    expect(() => s.runFor(-5)).toThrow(RangeError);
    expect(() => s.runFor(NaN)).toThrow(RangeError);
    expect(s.now).toBe(100);
  });

  it("advanceTo moves the clock only when nothing is due before the target", () => {
    const s = new Scheduler();
    s.after(50, "e", () => {});
    s.advanceTo(50);
    expect(s.now).toBe(50);
    expect(() => s.advanceTo(51)).toThrow(RangeError);
    expect(() => s.advanceTo(10)).toThrow(RangeError);
  });

  it("counts pending correctly while an event is running", () => {
    const s = new Scheduler();
    let during = -1;
    s.after(1, "a", () => (during = s.pending));
    s.after(2, "b", () => {});
    s.step();
    expect(during).toBe(1);
  });
});
