import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import type { Kernel } from "../../../../kernel/core/kernel.ts";
import {
  IRQF_NO_AUTOEN, IRQF_ONESHOT, IRQF_SHARED, IRQF_TRIGGER_RISING, IRQ_HANDLED, IRQ_NONE, IRQ_WAKE_THREAD,
  disable_irq, disable_irq_nosync, enable_irq, free_irq, irq_set_affinity, request_irq, request_threaded_irq,
  synchronize_irq, type irqreturn_t,
} from "../../../../kernel/include/interrupt.ts";
import { msleep } from "../../../../kernel/include/timer.ts";
import { EBUSY, EINVAL } from "../../../../kernel/include/errno.ts";
import { irq_core, irq_stats } from "../../../../kernel/irq/irqdesc.ts";

/** Run `fn` as driver `owner` would in probe (process context, attributed to it). */
function as<T>(k: Kernel, owner: string, fn: () => T): T {
  return k.exec.runOn(0, "process", owner, "probe", fn) as T;
}

function dmesg(k: Kernel): string {
  return k.printk.dmesg().join("\n");
}

function warnings(k: Kernel): string[] {
  return k.findings.ofKind("warn").map((f) => f.message);
}

describe("request_irq and the hardirq path", () => {
  it("calls the handler with its dev_id in hardirq context, attributed to its driver", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(5);
    const dev = { name: "dev5" };
    const seen: unknown[] = [];
    const handler = (irq: number, dev_id: unknown): irqreturn_t => {
      seen.push({ irq, dev_id, cpu: kernel.exec.cpu, ctx: kernel.exec.context, owner: kernel.exec.owner });
      line.lower();
      return IRQ_HANDLED;
    };
    expect(as(kernel, "drv", () => request_irq(5, handler, 0, "dev5", dev))).toBe(0);
    line.raise();
    await kernel.run();
    expect(seen).toEqual([{ irq: 5, dev_id: dev, cpu: 0, ctx: "hardirq", owner: "drv" }]);
    expect(irq_stats(kernel)).toEqual([{ irq: 5, names: ["dev5"], owners: ["drv"], count: 1, unhandled: 0, spurious_disabled: false }]);
    expect(kernel.warnings).toBe(0);
  });

  it("delivers on the CPU set by irq_set_affinity", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(6);
    const cpus: number[] = [];
    request_irq(6, () => (cpus.push(kernel.exec.cpu), line.lower(), IRQ_HANDLED), 0, "d", {});
    expect(irq_set_affinity(6, 1)).toBe(0);
    expect(irq_set_affinity(6, 7)).toBe(-EINVAL);
    line.raise();
    await kernel.run();
    expect(cpus).toEqual([1]);
  });

  it("re-fires a level line for as long as the device keeps it asserted", async () => {
    const { kernel, board, platform } = bareKernel();
    const line = board.intc.line(3);
    let calls = 0;
    request_irq(3, () => {
      if (++calls === 3) line.lower();
      return IRQ_HANDLED;
    }, 0, "lvl", {});
    line.raise();
    await kernel.run();
    expect(calls).toBe(3);
    // Each entry costs CPU time, so the three interrupts are spread over virtual time.
    expect(platform.now()).toBeGreaterThan(0);
  });

  it("takes MSI vectors as edges: one interrupt per message", async () => {
    const { kernel, board, platform } = bareKernel();
    const v = platform.msiFirst + 2;
    let calls = 0;
    request_irq(v, () => (calls++, IRQ_HANDLED), 0, "msi", {});
    board.intc.raiseEdge(v);
    board.intc.raiseEdge(v); // latched while pending: still one
    await kernel.run();
    expect(calls).toBe(1);
    board.intc.raiseEdge(v);
    await kernel.run();
    expect(calls).toBe(2);
  });

  it("calls every handler of a shared line and ORs their results", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(7);
    const order: string[] = [];
    as(kernel, "a", () => request_irq(7, () => (order.push(`a:${kernel.exec.owner}`), IRQ_NONE), IRQF_SHARED, "a", { id: "a" }));
    as(kernel, "b", () => request_irq(7, () => (order.push(`b:${kernel.exec.owner}`), line.lower(), IRQ_HANDLED), IRQF_SHARED, "b", { id: "b" }));
    line.raise();
    await kernel.run();
    expect(order).toEqual(["a:a", "b:b"]);
    expect(irq_stats(kernel)[0]).toMatchObject({ irq: 7, names: ["a", "b"], count: 1, unhandled: 0 });
  });
});

describe("request errors", () => {
  it("rejects bad numbers, missing handlers and shared requests without a cookie", () => {
    const { kernel } = bareKernel();
    const h = () => IRQ_HANDLED;
    expect(request_irq(-1, h, 0, "x", {})).toBe(-EINVAL);
    expect(request_irq(100000, h, 0, "x", {})).toBe(-EINVAL);
    expect(request_threaded_irq(5, null, null, 0, "x", {})).toBe(-EINVAL);
    expect(request_irq(5, h, IRQF_SHARED, "x", null)).toBe(-EINVAL);
    expect(request_irq(5, h, IRQF_SHARED | IRQF_NO_AUTOEN, "x", {})).toBe(-EINVAL);
    expect(kernel.warnings).toBe(0);
  });

  it("refuses a thread-only request without IRQF_ONESHOT on a wired line, with Linux's message", () => {
    const { kernel, platform } = bareKernel();
    expect(request_threaded_irq(9, null, () => IRQ_HANDLED, 0, "foo", {})).toBe(-EINVAL);
    expect(dmesg(kernel)).toContain("Threaded irq requested with handler=NULL and !ONESHOT for foo (irq 9)");
    // MSI is ONESHOT-safe: the same request is fine there.
    expect(request_threaded_irq(platform.msiFirst, null, () => IRQ_HANDLED, 0, "foo", {})).toBe(0);
  });

  it("returns -EBUSY with a flags-mismatch message when the line cannot be shared", () => {
    const { kernel } = bareKernel();
    const h = () => IRQ_HANDLED;
    expect(request_irq(7, h, IRQF_SHARED, "a", { n: 1 })).toBe(0);
    expect(request_irq(7, h, 0, "c", { n: 2 })).toBe(-EBUSY);
    expect(dmesg(kernel)).toContain("Flags mismatch irq 7. 00000004 (c) vs. 00000084 (a)");
    expect(request_irq(7, h, IRQF_SHARED | IRQF_TRIGGER_RISING, "d", { n: 3 })).toBe(-EBUSY);
    expect(request_threaded_irq(7, null, h, IRQF_SHARED | IRQF_ONESHOT, "e", { n: 4 })).toBe(-EBUSY);
    expect(request_irq(8, h, 0, "solo", { n: 5 })).toBe(0);
    expect(request_irq(8, h, IRQF_SHARED, "late", { n: 6 })).toBe(-EBUSY);
  });
});

describe("free_irq", () => {
  it("removes the action, masks the line and returns the name", async () => {
    const { kernel, board } = bareKernel();
    const dev = {};
    let calls = 0;
    request_irq(5, () => (calls++, IRQ_HANDLED), 0, "dev5", dev);
    expect(free_irq(5, dev)).toBe("dev5");
    expect(board.intc.masked[5]).toBe(1);
    board.intc.line(5).raise();
    await kernel.run();
    expect(calls).toBe(0);
  });

  it("WARNs for an unknown cookie and when called from IRQ context", async () => {
    const { kernel, board } = bareKernel();
    const dev = {};
    const line = board.intc.line(5);
    expect(free_irq(5, dev)).toBeNull();
    expect(warnings(kernel)).toEqual(["Trying to free already-free IRQ 5"]);
    request_irq(5, () => (line.lower(), free_irq(5, dev), IRQ_HANDLED), 0, "dev5", dev);
    line.raise();
    await kernel.run();
    expect(warnings(kernel)).toContain("Trying to free IRQ 5 from IRQ context!");
  });
});

describe("disable_irq / enable_irq", () => {
  it("nests, disables lazily and replays a level interrupt that arrived while disabled", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(5);
    let calls = 0;
    request_irq(5, () => (calls++, line.lower(), IRQ_HANDLED), 0, "d", {});
    disable_irq_nosync(5);
    disable_irq_nosync(5);
    expect(board.intc.masked[5]).toBe(0); // lazy: not masked yet
    line.raise();
    await kernel.run();
    expect(calls).toBe(0);
    expect(board.intc.masked[5]).toBe(1); // masked when it arrived
    enable_irq(5);
    await kernel.run();
    expect(calls).toBe(0);
    enable_irq(5);
    await kernel.run();
    expect(calls).toBe(1);
    enable_irq(5);
    expect(warnings(kernel)).toEqual(["Unbalanced enable for IRQ 5"]);
  });

  it("resends an MSI that arrived while disabled", async () => {
    const { kernel, board, platform } = bareKernel();
    const v = platform.msiFirst + 3;
    let calls = 0;
    request_irq(v, () => (calls++, IRQ_HANDLED), 0, "msi", {});
    await disable_irq(v);
    board.intc.raiseEdge(v);
    await kernel.run();
    expect(calls).toBe(0);
    enable_irq(v);
    await kernel.run();
    expect(calls).toBe(1);
  });

  it("leaves an IRQF_NO_AUTOEN line off until enable_irq", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(4);
    let calls = 0;
    request_irq(4, () => (calls++, line.lower(), IRQ_HANDLED), IRQF_NO_AUTOEN, "d", {});
    line.raise();
    await kernel.run();
    expect(calls).toBe(0);
    enable_irq(4);
    await kernel.run();
    expect(calls).toBe(1);
    expect(kernel.warnings).toBe(0);
  });

  it("WARNs when a handler disables its own IRQ synchronously (a deadlock on hardware)", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(5);
    request_irq(5, () => (line.lower(), void disable_irq(5), IRQ_HANDLED), 0, "d", {});
    line.raise();
    await kernel.run();
    expect(warnings(kernel)[0]).toMatch(/disable_irq\(5\) called from IRQ 5's own handler: would deadlock/);
  });
});

describe("threaded handlers", () => {
  it("runs thread_fn later in process context and keeps a ONESHOT level line masked until it returns", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(9);
    const log: string[] = [];
    const thread_fn = async (irq: number, dev: unknown): Promise<irqreturn_t> => {
      log.push(`thread ${irq} ${(dev as { n: string }).n} ${kernel.exec.context} ${kernel.exec.thread?.name} owner=${kernel.exec.owner} masked=${board.intc.masked[9]}`);
      await msleep(1);
      line.lower();
      return IRQ_HANDLED;
    };
    expect(as(kernel, "thr", () => request_threaded_irq(9, null, thread_fn, IRQF_ONESHOT, "thrdev", { n: "d" }))).toBe(0);
    line.raise();
    await kernel.run();
    expect(log).toEqual(["thread 9 d process irq/9-thrdev owner=thr masked=1"]);
    expect(board.intc.masked[9]).toBe(0);
    expect(kernel.warnings).toBe(0);
  });

  it("runs the primary handler first and the thread only when it returns IRQ_WAKE_THREAD", async () => {
    const { kernel, board, platform } = bareKernel();
    const line = board.intc.line(10);
    const log: string[] = [];
    let wake = false;
    request_threaded_irq(10, () => {
      log.push(`hard ${kernel.exec.context}`);
      line.lower();
      return wake ? IRQ_WAKE_THREAD : IRQ_HANDLED;
    }, () => (log.push(`thread ${kernel.exec.context}`), IRQ_HANDLED), IRQF_ONESHOT, "d", {});
    line.raise();
    await kernel.run();
    wake = true;
    line.raise();
    await kernel.run();
    expect(log).toEqual(["hard hardirq", "hard hardirq", "thread process"]);
    expect(platform.now()).toBeGreaterThan(0);
  });

  it("lets synchronize_irq wait for a sleeping thread handler", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(11);
    let finished = -1;
    request_threaded_irq(11, null, async () => {
      await msleep(5);
      finished = kernel.exec.now();
      line.lower();
      return IRQ_HANDLED;
    }, IRQF_ONESHOT, "d", {});
    let synced = -1;
    line.raise();
    kernel.exec.spawn("syncer", 0, "", async () => {
      await msleep(1);
      await synchronize_irq(11);
      synced = kernel.exec.now();
    });
    await kernel.run();
    expect(finished).toBeGreaterThan(5e6);
    expect(synced).toBeGreaterThanOrEqual(finished);
  });

  it("warns once about IRQ_WAKE_THREAD without a thread function", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(12);
    let n = 0;
    request_irq(12, () => (++n === 2 && line.lower(), IRQ_WAKE_THREAD), 0, "nothr", {});
    line.raise();
    await kernel.run();
    expect(n).toBe(2);
    expect(warnings(kernel)).toEqual(["IRQ 12 device nothr returned IRQ_WAKE_THREAD but no thread function available."]);
  });
});

describe("bad handlers", () => {
  it("reports a bogus return value and lists the handlers", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(13);
    request_irq(13, function weird_handler() {
      line.lower();
      return 7;
    }, 0, "weird", {});
    line.raise();
    await kernel.run();
    expect(warnings(kernel)).toEqual(["irq event 13: bogus return value 7"]);
    expect(dmesg(kernel)).toContain("[<weird_handler>] weird_handler");
  });

  it("turns an exception in a handler into that driver's oops, frees its IRQ and keeps the sharers", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(14);
    let bCalls = 0;
    as(kernel, "bad", () => request_irq(14, () => {
      throw new Error("boom");
    }, IRQF_SHARED, "bad", { n: 1 }));
    as(kernel, "good", () => request_irq(14, () => (bCalls++, line.lower(), IRQ_HANDLED), IRQF_SHARED, "good", { n: 2 }));
    line.raise();
    await kernel.run();
    line.raise();
    await kernel.run();
    expect(bCalls).toBe(2);
    const oops = kernel.findings.ofKind("oops");
    expect(oops).toHaveLength(1);
    expect(oops[0].driver).toBe("bad");
    expect(irq_stats(kernel)[0].names).toEqual(["good"]);
  });
});

describe("crash cleanup", () => {
  it("frees a crashed driver's IRQs, masks its lines and stops its IRQ threads", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(15);
    let calls = 0;
    as(kernel, "bad", () => {
      request_irq(15, () => (calls++, IRQ_HANDLED), 0, "bad15", {});
      request_threaded_irq(16, null, () => IRQ_HANDLED, IRQF_ONESHOT, "bad16", {});
    });
    as(kernel, "good", () => request_irq(17, () => IRQ_HANDLED, 0, "good17", {}));
    await kernel.run(); // the IRQ thread starts and parks
    const thread = irq_core(kernel).descs[16].actions[0].thread!;
    expect(thread.state).toBe("blocked");
    kernel.oops(new Error("crash"), "test", "bad");
    await kernel.run();
    expect(thread.state).toBe("done");
    expect(irq_stats(kernel).map((s) => s.names)).toEqual([["good17"]]);
    expect(board.intc.masked[15]).toBe(1);
    expect(board.intc.masked[16]).toBe(1);
    line.raise();
    await kernel.run();
    expect(calls).toBe(0);
  });

  it("free_irq ends the IRQ thread", async () => {
    const { kernel } = bareKernel();
    const dev = {};
    request_threaded_irq(18, null, () => IRQ_HANDLED, IRQF_ONESHOT, "t18", dev);
    await kernel.run();
    const thread = irq_core(kernel).descs[18].actions[0].thread!;
    expect(thread.name).toBe("irq/18-t18");
    expect(free_irq(18, dev)).toBe("t18");
    await kernel.run();
    expect(thread.state).toBe("done");
  });
});
