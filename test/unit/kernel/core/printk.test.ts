import { describe, expect, it } from "vitest";
import { Printk, dmesgStamp, KERN_ERR, KERN_INFO, KERN_DEBUG } from "../../../../kernel/core/printk.ts";

describe("printk", () => {
  it("formats virtual timestamps like dmesg", () => {
    expect(dmesgStamp(0)).toBe("[    0.000000] ");
    expect(dmesgStamp(1_234_000)).toBe("[    0.001234] ");
    expect(dmesgStamp(12_345_678_901_000)).toBe("[12345.678901] ");
  });

  it("keeps every record and sends lines at or above the level to the sink", () => {
    let now = 0;
    const lines: string[] = [];
    const p = new Printk(() => now, "info", (l) => lines.push(l));
    p.log(KERN_INFO, "hello", "edu 0000:00:03.0: ");
    now = 2_500_000;
    p.log(KERN_DEBUG, "quiet");
    p.log(KERN_ERR, "bad");
    expect(lines).toEqual(["[    0.000000] edu 0000:00:03.0: hello", "[    0.002500] bad"]);
    expect(p.dmesg()).toHaveLength(3);
    expect(p.dmesg(KERN_ERR)).toEqual(["[    0.002500] bad"]);
  });

  it("is deterministic: the same calls give the same bytes", () => {
    const run = (): string[] => {
      const out: string[] = [];
      const p = new Printk(() => 42_000, "debug", (l) => out.push(l));
      p.log(KERN_DEBUG, "x");
      p.log(KERN_ERR, "y");
      return out;
    };
    expect(run()).toEqual(run());
  });
});
