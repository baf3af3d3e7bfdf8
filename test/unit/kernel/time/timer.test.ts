import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import {
  HZ, add_timer, add_timer_on, del_timer, del_timer_sync, jiffies, jiffies_to_msecs, ktime_get_ns, mdelay,
  mod_timer, msecs_to_jiffies, msleep, ndelay, schedule_timeout, time_after, time_after_eq, time_before,
  timer_list, timer_pending, timer_setup, timer_shutdown_sync, udelay, usecs_to_jiffies, usleep_range,
  wake_up_process, MAX_SCHEDULE_TIMEOUT,
} from "../../../../kernel/include/timer.ts";
import { IRQ_HANDLED, request_irq } from "../../../../kernel/include/interrupt.ts";
import { timers_pending_count } from "../../../../kernel/time/timer.ts";

describe("jiffies and conversions", () => {
  it("counts milliseconds of virtual time at HZ=1000", async () => {
    const { kernel, platform } = bareKernel();
    expect(HZ).toBe(1000);
    expect(jiffies()).toBe(0);
    let seen = -1;
    platform.at(25.5e6, "probe", () => (seen = jiffies()));
    await kernel.run();
    expect(seen).toBe(25);
    expect(ktime_get_ns()).toBe(25.5e6);
  });

  it("rounds conversions up as Linux does and compares the wrap-safe way", () => {
    bareKernel();
    expect(msecs_to_jiffies(10)).toBe(10);
    expect(msecs_to_jiffies(0)).toBe(0);
    expect(usecs_to_jiffies(1)).toBe(1);
    expect(usecs_to_jiffies(1500)).toBe(2);
    expect(jiffies_to_msecs(7)).toBe(7);
    expect(time_after(11, 10)).toBe(true);
    expect(time_after(10, 10)).toBe(false);
    expect(time_after_eq(10, 10)).toBe(true);
    expect(time_before(9, 10)).toBe(true);
  });
});

describe("timer_list", () => {
  it("fires at the expiry tick in softirq context on the arming CPU, attributed to its driver", async () => {
    const { kernel } = bareKernel();
    const t = new timer_list();
    const fired: string[] = [];
    kernel.exec.runOn(1, "process", "drv", "probe", () => {
      timer_setup(t, (tt) => {
        expect(tt).toBe(t);
        fired.push(`${ktime_get_ns()} ${kernel.exec.context} cpu${kernel.exec.cpu} ${kernel.exec.owner}`);
      }, 0);
      expect(mod_timer(t, jiffies() + msecs_to_jiffies(10))).toBe(0);
    });
    expect(timer_pending(t)).toBe(true);
    await kernel.run();
    expect(fired).toEqual(["10000000 softirq cpu1 drv"]);
    expect(timer_pending(t)).toBe(false);
    expect(timers_pending_count(kernel)).toBe(0);
  });

  it("del_timer cancels; mod_timer on a pending timer moves it and returns 1", async () => {
    const { kernel, platform } = bareKernel();
    const t = new timer_list();
    let when = -1;
    timer_setup(t, () => (when = platform.now()), 0);
    mod_timer(t, 5);
    expect(mod_timer(t, 8)).toBe(1);
    await kernel.run();
    expect(when).toBe(8e6);
    when = -1;
    mod_timer(t, jiffies() + 3);
    expect(del_timer(t)).toBe(1);
    expect(del_timer(t)).toBe(0);
    await kernel.run();
    expect(when).toBe(-1);
  });

  it("fires an expiry in the past at the next tick, and a timer can re-arm itself", async () => {
    const { kernel, platform } = bareKernel();
    const t = new timer_list();
    const times: number[] = [];
    timer_setup(t, (tt) => {
      times.push(platform.now());
      if (times.length < 3) mod_timer(tt, jiffies() + 2);
    }, 0);
    t.expires = 0;
    add_timer(t);
    await kernel.run();
    expect(times).toEqual([1e6, 3e6, 5e6]);
  });

  it("add_timer_on picks the CPU; del_timer_sync from the callback itself WARNs", async () => {
    const { kernel } = bareKernel();
    const t = new timer_list();
    let cpu = -1;
    timer_setup(t, () => {
      cpu = kernel.exec.cpu;
      del_timer_sync(t);
    }, 0);
    t.expires = 2;
    add_timer_on(t, 1);
    await kernel.run();
    expect(cpu).toBe(1);
    expect(kernel.findings.ofKind("warn")[0].message).toMatch(/del_timer_sync\(\) called from the callback/);
  });

  it("a shut-down timer is not re-armed", async () => {
    const { kernel } = bareKernel();
    const t = new timer_list();
    let runs = 0;
    timer_setup(t, () => runs++, 0);
    mod_timer(t, 4);
    expect(timer_shutdown_sync(t)).toBe(1);
    mod_timer(t, 6);
    await kernel.run();
    expect(runs).toBe(0);
  });

  it("a crashed driver's timers are cancelled", async () => {
    const { kernel } = bareKernel();
    const t = new timer_list();
    let runs = 0;
    kernel.exec.runOn(0, "process", "bad", "probe", () => {
      timer_setup(t, () => runs++, 0);
      mod_timer(t, 10);
    });
    kernel.oops(new Error("crash"), "test", "bad");
    expect(timer_pending(t)).toBe(false);
    await kernel.run();
    expect(runs).toBe(0);
  });
});

describe("delays", () => {
  it("udelay / ndelay / mdelay busy-wait: they charge the CPU and move time for the caller", () => {
    const { kernel } = bareKernel();
    const before = kernel.exec.busyNs[0];
    let t0 = 0;
    let t1 = 0;
    kernel.exec.runOn(0, "process", "", "spin", () => {
      t0 = ktime_get_ns();
      udelay(5);
      ndelay(300);
      mdelay(1);
      t1 = ktime_get_ns();
    });
    expect(t1 - t0).toBe(5000 + 300 + 1_000_000);
    expect(kernel.exec.busyNs[0] - before).toBeGreaterThanOrEqual(1_005_300);
  });

  it("msleep sleeps at least the time asked (and at most one more tick)", async () => {
    const { kernel } = bareKernel();
    let slept = -1;
    kernel.exec.spawn("sleeper", 0, "", async () => {
      const t0 = ktime_get_ns();
      await msleep(10);
      slept = ktime_get_ns() - t0;
    });
    await kernel.run();
    expect(slept).toBeGreaterThanOrEqual(10e6);
    expect(slept).toBeLessThanOrEqual(11e6);
  });

  it("usleep_range sleeps until the end of the range", async () => {
    const { kernel } = bareKernel();
    let slept = -1;
    kernel.exec.spawn("sleeper", 0, "", async () => {
      const t0 = ktime_get_ns();
      await usleep_range(100, 200);
      slept = ktime_get_ns() - t0;
    });
    await kernel.run();
    expect(slept).toBeGreaterThanOrEqual(200e3);
    expect(slept).toBeLessThan(201e3);
  });

  it("schedule_timeout returns 0 when the time ran out and the jiffies left when woken early", async () => {
    const { kernel, platform } = bareKernel();
    const results: number[] = [];
    const th = kernel.exec.spawn("st", 0, "", async () => {
      results.push(await schedule_timeout(5));
      results.push(await schedule_timeout(100));
      results.push(await schedule_timeout(MAX_SCHEDULE_TIMEOUT));
    });
    platform.at(20e6, "waker", () => wake_up_process(th));
    platform.at(30e6, "waker", () => wake_up_process(th));
    await kernel.run();
    expect(results).toEqual([0, 85, MAX_SCHEDULE_TIMEOUT]);
  });

  it("sleeping in hardirq context WARNs and returns at once instead of crashing", async () => {
    const { kernel, board } = bareKernel();
    const line = board.intc.line(5);
    let returned = false;
    request_irq(5, () => {
      void msleep(10).then(() => (returned = true));
      line.lower();
      return IRQ_HANDLED;
    }, 0, "d", {});
    line.raise();
    await kernel.run();
    expect(returned).toBe(true);
    const w = kernel.findings.ofKind("warn");
    expect(w.map((f) => f.message)).toEqual(["BUG: sleeping function called from invalid context at msleep"]);
    expect(kernel.findings.ofKind("oops")).toHaveLength(0);
  });

  it("sleeping outside a kernel thread WARNs too", async () => {
    const { kernel } = bareKernel();
    await msleep(1);
    expect(kernel.findings.ofKind("warn")[0].message).toBe("BUG: sleeping function called from invalid context at msleep");
  });
});
