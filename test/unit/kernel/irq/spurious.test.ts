import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import type { Kernel } from "../../../../kernel/core/kernel.ts";
import {
  IRQF_ONESHOT, IRQF_SHARED, IRQ_HANDLED, IRQ_NONE, request_irq, request_threaded_irq,
} from "../../../../kernel/include/interrupt.ts";
import { irq_set_spurious_thresholds, irq_stats } from "../../../../kernel/irq/irqdesc.ts";

function as<T>(k: Kernel, owner: string, fn: () => T): T {
  return k.exec.runOn(0, "process", owner, "probe", fn) as T;
}

describe("note_interrupt: stuck interrupt detection", () => {
  it("disables a level line stuck asserted with nobody handling it, reports it, and the run ends", async () => {
    const { kernel, board, platform } = bareKernel();
    irq_set_spurious_thresholds(kernel, { window: 1000, threshold: 990 });
    function storm_handler(): number {
      return IRQ_NONE; // never acknowledges the device
    }
    as(kernel, "stormdrv", () => request_irq(12, storm_handler, 0, "stormdev", {}));
    board.intc.line(12).raise();
    await kernel.run({ untilNs: 10e9 });
    expect(platform.peekTime()).toBe(Infinity); // nothing left to do: the storm is over
    const log = kernel.printk.dmesg().join("\n");
    expect(log).toContain('irq 12: nobody cared (try booting with the "irqpoll" option)');
    expect(log).toContain("handlers:");
    expect(log).toContain("[<storm_handler>] storm_handler [stormdrv]");
    expect(log).toContain("Disabling IRQ #12");
    const storms = kernel.findings.ofKind("irq-storm");
    expect(storms).toHaveLength(1);
    expect(storms[0]).toMatchObject({ driver: "stormdrv", device: "stormdev", severity: "error" });
    expect(storms[0].fix).toMatch(/Acknowledge the device's interrupt status/);
    expect(irq_stats(kernel)).toEqual([
      { irq: 12, names: ["stormdev"], owners: ["stormdrv"], count: 1000, unhandled: 1000, spurious_disabled: true },
    ]);
    expect(board.intc.masked[12]).toBe(1);
    // 1000 entries cost CPU time: virtual time moved on.
    expect(platform.now()).toBeGreaterThan(1000 * 50 - 1);
  });

  it("uses Linux's thresholds by default: 100,000 interrupts, more than 99,900 unhandled", async () => {
    const { kernel, board } = bareKernel();
    request_irq(12, () => IRQ_NONE, 0, "stuck", {});
    board.intc.line(12).raise();
    await kernel.run();
    expect(kernel.findings.ofKind("irq-storm")).toHaveLength(1);
    expect(irq_stats(kernel)[0]).toMatchObject({ count: 100_000, unhandled: 100_000, spurious_disabled: true });
  });

  it("names every driver on a shared stuck line", async () => {
    const { kernel, board } = bareKernel();
    irq_set_spurious_thresholds(kernel, { window: 200, threshold: 150 });
    as(kernel, "a", () => request_irq(20, () => IRQ_NONE, IRQF_SHARED, "deva", { n: 1 }));
    as(kernel, "b", () => request_irq(20, () => IRQ_NONE, IRQF_SHARED, "devb", { n: 2 }));
    board.intc.line(20).raise();
    await kernel.run();
    const f = kernel.findings.ofKind("irq-storm")[0];
    expect(f.driver).toBe("a, b");
    expect(f.device).toBe("deva, devb");
  });

  it("judges thread-only handlers by what their thread returned", async () => {
    const { kernel, board } = bareKernel();
    irq_set_spurious_thresholds(kernel, { window: 50, threshold: 40 });
    let runs = 0;
    as(kernel, "lazy", () => request_threaded_irq(23, null, () => (runs++, IRQ_NONE), IRQF_ONESHOT, "lazydev", {}));
    board.intc.line(23).raise();
    await kernel.run();
    expect(kernel.findings.ofKind("irq-storm")[0]).toMatchObject({ driver: "lazy" });
    // The first interrupt only arms the deferred check; the line died at the end of the next window.
    expect(irq_stats(kernel)[0]).toMatchObject({ count: 51, spurious_disabled: true });
    expect(runs).toBe(51);
  });

  it("does not count the odd spurious interrupt more than 100 ms apart", async () => {
    const { kernel, board, platform } = bareKernel();
    irq_set_spurious_thresholds(kernel, { window: 10, threshold: 5 });
    const line = board.intc.line(21);
    request_irq(21, () => (line.lower(), IRQ_NONE), 0, "odd", {});
    for (let i = 1; i <= 20; i++) platform.at(i * 200e6, "spurious", () => line.raise());
    await kernel.run();
    expect(kernel.findings.ofKind("irq-storm")).toHaveLength(0);
    expect(irq_stats(kernel)[0]).toMatchObject({ count: 20, unhandled: 20, spurious_disabled: false });
  });

  it("does count spurious interrupts that come close together", async () => {
    const { kernel, board, platform } = bareKernel();
    irq_set_spurious_thresholds(kernel, { window: 10, threshold: 5 });
    const line = board.intc.line(21);
    request_irq(21, () => (line.lower(), IRQ_NONE), 0, "odd", {});
    for (let i = 1; i <= 20; i++) platform.at(i * 1e6, "spurious", () => line.raise());
    await kernel.run();
    expect(kernel.findings.ofKind("irq-storm")).toHaveLength(1);
    expect(irq_stats(kernel)[0]).toMatchObject({ count: 10, spurious_disabled: true });
  });

  it("never disables a line whose handler handles most interrupts", async () => {
    const { kernel, board, platform } = bareKernel();
    irq_set_spurious_thresholds(kernel, { window: 10, threshold: 5 });
    const line = board.intc.line(22);
    let n = 0;
    request_irq(22, () => (line.lower(), ++n % 2 ? IRQ_HANDLED : IRQ_NONE), 0, "half", {});
    for (let i = 1; i <= 40; i++) platform.at(i * 1e5, "irq", () => line.raise());
    await kernel.run();
    expect(kernel.findings.ofKind("irq-storm")).toHaveLength(0);
    expect(irq_stats(kernel)[0]).toMatchObject({ count: 40, unhandled: 20 });
  });
});

describe("tracing", () => {
  it("marks each interrupt entry on the CPU track", async () => {
    const { kernel, board, platform } = bareKernel();
    platform.trace.enabled = true;
    const line = board.intc.line(5);
    request_irq(5, () => (line.lower(), IRQ_HANDLED), 0, "traced", {});
    line.raise();
    await kernel.run();
    const json = platform.trace.toJSON();
    expect(json).toContain('"name":"irq 5"');
    expect(json).toContain('"name":"irq/5-traced"');
  });
});
