import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import {
  IRQ_HANDLED, request_irq, tasklet_disable, tasklet_enable, tasklet_init, tasklet_kill, tasklet_schedule,
  tasklet_setup, tasklet_struct,
} from "../../../../kernel/include/interrupt.ts";

describe("tasklets", () => {
  it("run once in softirq context on the scheduling CPU after the hardirq, however often scheduled", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(5);
    const t = new tasklet_struct();
    const log: string[] = [];
    let hardEnd = 0;
    kernel.exec.runOn(0, "process", "drv", "probe", () => {
      tasklet_setup(t, (tt) => {
        expect(tt).toBe(t);
        log.push(`tasklet ${kernel.exec.context} cpu${kernel.exec.cpu} ${kernel.exec.owner} after=${kernel.exec.now() >= hardEnd}`);
      });
      request_irq(5, () => {
        tasklet_schedule(t);
        tasklet_schedule(t);
        tasklet_schedule(t);
        line.lower();
        log.push("hardirq");
        hardEnd = kernel.exec.now();
        return IRQ_HANDLED;
      }, 0, "d", {});
    });
    line.raise();
    await kernel.run();
    expect(log).toEqual(["hardirq", "tasklet softirq cpu0 drv after=true"]);
  });

  it("passes data to old-style tasklet_init functions", async () => {
    const { kernel } = bareKernel();
    const t = new tasklet_struct();
    const got: unknown[] = [];
    tasklet_init(t, (d) => got.push(d), 42);
    tasklet_schedule(t);
    await kernel.run();
    expect(got).toEqual([42]);
  });

  it("can be rescheduled from its own callback; each run is a later softirq", async () => {
    const { kernel } = bareKernel();
    const t = new tasklet_struct();
    let runs = 0;
    tasklet_setup(t, () => {
      if (++runs < 3) tasklet_schedule(t);
    });
    tasklet_schedule(t);
    await kernel.run();
    expect(runs).toBe(3);
  });

  it("do not run while disabled and run once enabled", async () => {
    const { kernel } = bareKernel();
    const t = new tasklet_struct();
    let runs = 0;
    tasklet_setup(t, () => runs++);
    tasklet_disable(t);
    tasklet_schedule(t);
    await kernel.run();
    expect(runs).toBe(0);
    expect(tasklet_enable(t)).toBe(true);
    await kernel.run();
    expect(runs).toBe(1);
    tasklet_enable(t);
    expect(kernel.findings.ofKind("warn").map((f) => f.message)).toEqual([expect.stringMatching(/Unbalanced tasklet_enable/)]);
  });

  it("tasklet_kill drops a pending run", async () => {
    const { kernel } = bareKernel();
    const t = new tasklet_struct();
    let runs = 0;
    tasklet_setup(t, () => runs++);
    tasklet_schedule(t);
    tasklet_kill(t);
    await kernel.run();
    expect(runs).toBe(0);
    tasklet_schedule(t);
    await kernel.run();
    expect(runs).toBe(1);
  });

  it("an oops in one tasklet does not stop the others, and the crashed driver's tasklets are dropped", async () => {
    const { kernel } = bareKernel();
    const bad = new tasklet_struct();
    const bad2 = new tasklet_struct();
    const good = new tasklet_struct();
    let goodRuns = 0;
    let bad2Runs = 0;
    kernel.exec.runOn(0, "process", "bad", "probe", () => {
      tasklet_setup(bad, () => {
        throw new Error("tasklet boom");
      });
      tasklet_setup(bad2, () => bad2Runs++);
    });
    kernel.exec.runOn(0, "process", "good", "probe", () => tasklet_setup(good, () => goodRuns++));
    tasklet_schedule(bad);
    tasklet_schedule(bad2);
    tasklet_schedule(good);
    await kernel.run();
    expect(goodRuns).toBe(1);
    expect(bad2Runs).toBe(0);
    expect(kernel.findings.ofKind("oops")[0].driver).toBe("bad");
  });
});
