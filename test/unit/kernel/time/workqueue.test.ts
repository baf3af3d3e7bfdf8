import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import type { Kernel } from "../../../../kernel/core/kernel.ts";
import {
  INIT_DELAYED_WORK, INIT_WORK, alloc_workqueue, cancel_delayed_work_sync, cancel_work_sync,
  create_singlethread_workqueue, delayed_work, delayed_work_pending, destroy_workqueue, flush_delayed_work,
  flush_scheduled_work, flush_work, flush_workqueue, mod_delayed_work, queue_work, schedule_delayed_work,
  schedule_work, system_wq, work_pending, work_struct,
} from "../../../../kernel/include/workqueue.ts";
import { IRQ_HANDLED, request_irq } from "../../../../kernel/include/interrupt.ts";
import { ktime_get_ns, msecs_to_jiffies, msleep } from "../../../../kernel/include/timer.ts";

function as<T>(k: Kernel, owner: string, fn: () => T): T {
  return k.exec.runOn(0, "process", owner, "probe", fn) as T;
}

describe("work items", () => {
  it("run in process context in a kworker, attributed to their driver, and may sleep", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(5);
    const w = new work_struct();
    const log: string[] = [];
    as(kernel, "drv", () => {
      INIT_WORK(w, async (work) => {
        expect(work).toBe(w);
        log.push(`${kernel.exec.context} ${kernel.exec.thread?.name} ${kernel.exec.owner}`);
        const t0 = ktime_get_ns();
        await msleep(2);
        log.push(`slept ${ktime_get_ns() - t0 >= 2e6} ${kernel.exec.owner}`);
      });
      request_irq(5, () => (line.lower(), schedule_work(w), IRQ_HANDLED), 0, "d", {});
    });
    line.raise();
    await kernel.run();
    expect(log).toEqual(["process kworker/0:0 drv", "slept true drv"]);
    expect(kernel.findings.ofKind("oops")).toEqual([]);
    expect(kernel.warnings).toBe(0);
  });

  it("collapse: queueing a pending item returns false and it runs once", async () => {
    const { kernel } = bareKernel();
    const w = new work_struct();
    let runs = 0;
    INIT_WORK(w, () => void runs++);
    expect(schedule_work(w)).toBe(true);
    expect(work_pending(w)).toBe(true);
    expect(schedule_work(w)).toBe(false);
    await kernel.run();
    expect(runs).toBe(1);
    expect(work_pending(w)).toBe(false);
  });

  it("one item sleeping does not hold up the next", async () => {
    const { kernel } = bareKernel();
    const a = new work_struct();
    const b = new work_struct();
    const log: string[] = [];
    INIT_WORK(a, async () => {
      log.push("a start");
      await msleep(5);
      log.push("a end");
    });
    INIT_WORK(b, () => void log.push(`b @${ktime_get_ns() < 5e6}`));
    schedule_work(a);
    schedule_work(b);
    await kernel.run();
    expect(log).toEqual(["a start", "b @true", "a end"]);
  });

  it("an ordered workqueue runs one item at a time, in order", async () => {
    const { kernel } = bareKernel();
    const wq = create_singlethread_workqueue("ordered");
    const log: string[] = [];
    const items = ["x", "y", "z"].map((n) => {
      const w = new work_struct();
      INIT_WORK(w, async () => {
        log.push(`${n}+`);
        await msleep(1);
        log.push(`${n}-`);
      });
      return w;
    });
    for (const w of items) queue_work(wq, w);
    await kernel.run();
    expect(log).toEqual(["x+", "x-", "y+", "y-", "z+", "z-"]);
  });

  it("an item re-queued while running runs again afterwards, never concurrently", async () => {
    const { kernel } = bareKernel();
    const w = new work_struct();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    INIT_WORK(w, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      if (++runs === 1) schedule_work(w);
      await msleep(1);
      running--;
    });
    schedule_work(w);
    await kernel.run();
    expect(runs).toBe(2);
    expect(maxRunning).toBe(1);
  });
});

describe("delayed work", () => {
  it("runs after its delay; mod_delayed_work re-times it", async () => {
    const { kernel } = bareKernel();
    const d = new delayed_work();
    const at: number[] = [];
    INIT_DELAYED_WORK(d, () => void at.push(ktime_get_ns()));
    expect(schedule_delayed_work(d, msecs_to_jiffies(10))).toBe(true);
    expect(schedule_delayed_work(d, msecs_to_jiffies(1))).toBe(false);
    expect(mod_delayed_work(system_wq, d, msecs_to_jiffies(20))).toBe(true);
    expect(delayed_work_pending(d)).toBe(true);
    await kernel.run();
    expect(at).toHaveLength(1);
    expect(at[0]).toBeGreaterThanOrEqual(20e6);
    expect(at[0]).toBeLessThan(21e6);
  });

  it("cancel_delayed_work_sync cancels a pending item", async () => {
    const { kernel } = bareKernel();
    const d = new delayed_work();
    let runs = 0;
    INIT_DELAYED_WORK(d, () => void runs++);
    schedule_delayed_work(d, 5);
    kernel.exec.spawn("remover", 0, "", async () => {
      expect(await cancel_delayed_work_sync(d)).toBe(true);
      expect(await cancel_delayed_work_sync(d)).toBe(false);
    });
    await kernel.run();
    expect(runs).toBe(0);
    expect(kernel.findings.ofKind("oops")).toEqual([]);
  });

  it("flush_delayed_work runs a pending item now and waits for it", async () => {
    const { kernel } = bareKernel();
    const d = new delayed_work();
    let ranAt = -1;
    INIT_DELAYED_WORK(d, () => void (ranAt = ktime_get_ns()));
    schedule_delayed_work(d, 1000);
    let flushedAt = -1;
    kernel.exec.spawn("flusher", 0, "", async () => {
      expect(await flush_delayed_work(d)).toBe(true);
      flushedAt = ktime_get_ns();
    });
    await kernel.run();
    expect(ranAt).toBeGreaterThanOrEqual(0);
    expect(ranAt).toBeLessThan(1e6);
    expect(flushedAt).toBeGreaterThanOrEqual(ranAt);
    expect(kernel.findings.ofKind("oops")).toEqual([]);
  });
});

describe("waiting for work", () => {
  it("cancel_work_sync waits for a running instance; flush_work waits for completion", async () => {
    const { kernel } = bareKernel();
    const w = new work_struct();
    let endedAt = -1;
    INIT_WORK(w, async () => {
      await msleep(5);
      endedAt = ktime_get_ns();
    });
    schedule_work(w);
    const log: string[] = [];
    kernel.exec.spawn("canceller", 0, "", async () => {
      await msleep(1);
      expect(await cancel_work_sync(w)).toBe(false); // running, not pending
      log.push(`cancel returned after end: ${ktime_get_ns() >= endedAt && endedAt > 0}`);
      expect(schedule_work(w)).toBe(true);
      expect(await flush_work(w)).toBe(true);
      log.push("flushed");
      expect(await flush_work(w)).toBe(false);
    });
    await kernel.run();
    expect(log).toEqual(["cancel returned after end: true", "flushed"]);
    expect(kernel.findings.ofKind("oops")).toEqual([]);
  });

  it("flush_workqueue waits for everything queued before it; destroy_workqueue drains and closes it", async () => {
    const { kernel } = bareKernel();
    const wq = alloc_workqueue("mydrv-%d", 0, 0, 3);
    expect(wq.name).toBe("mydrv-3");
    let done = 0;
    const items = [1, 2, 3].map((ms) => {
      const w = new work_struct();
      INIT_WORK(w, async () => {
        await msleep(ms);
        done++;
      });
      return w;
    });
    for (const w of items) queue_work(wq, w);
    let seen = -1;
    kernel.exec.spawn("flusher", 0, "", async () => {
      await flush_workqueue(wq);
      seen = done;
      await flush_scheduled_work();
      await destroy_workqueue(wq);
      queue_work(wq, items[0]);
    });
    await kernel.run();
    expect(seen).toBe(3);
    expect(kernel.findings.ofKind("warn").map((f) => f.message)).toEqual([
      "workqueue mydrv-3: queueing work:anonymous on a destroyed workqueue",
    ]);
  });

  it("a work item flushing itself WARNs instead of deadlocking", async () => {
    const { kernel } = bareKernel();
    const w = new work_struct();
    INIT_WORK(w, async function self_flusher(work) {
      await flush_work(work);
    });
    schedule_work(w);
    await kernel.run();
    expect(kernel.findings.ofKind("warn")[0].message).toBe(
      "flush_work() of work:self_flusher from its own work function: would deadlock",
    );
  });

  it("a crashed driver's pending work is dropped and the oops is attributed to it", async () => {
    const { kernel } = bareKernel();
    const crash = new work_struct();
    const later = new delayed_work();
    let laterRuns = 0;
    as(kernel, "bad", () => {
      INIT_WORK(crash, () => {
        throw new Error("work boom");
      });
      INIT_DELAYED_WORK(later, () => void laterRuns++);
      schedule_delayed_work(later, 10);
      schedule_work(crash);
    });
    await kernel.run();
    expect(laterRuns).toBe(0);
    expect(kernel.findings.ofKind("oops")[0].driver).toBe("bad");
    expect(delayed_work_pending(later)).toBe(false);
  });
});
