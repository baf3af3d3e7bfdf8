import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import {
  complete, complete_all, completion, completion_done, init_completion, reinit_completion,
  try_wait_for_completion, wait_for_completion, wait_for_completion_timeout,
} from "../../../../kernel/include/completion.ts";
import { IRQ_HANDLED, request_irq } from "../../../../kernel/include/interrupt.ts";
import { ktime_get_ns, msecs_to_jiffies, timer_list, timer_setup, mod_timer } from "../../../../kernel/include/timer.ts";

describe("completions", () => {
  it("wake a waiting thread when an interrupt handler completes them", async () => {
    const { kernel, board, platform } = bareKernel();
    const line = board.intc.line(5);
    const done = new completion();
    init_completion(done);
    request_irq(5, () => (line.lower(), complete(done), IRQ_HANDLED), 0, "d", {});
    let wokeAt = -1;
    kernel.exec.spawn("waiter", 0, "drv", async () => {
      await wait_for_completion(done);
      wokeAt = ktime_get_ns();
      expect(kernel.exec.context).toBe("process");
    });
    platform.at(3e6, "device", () => line.raise());
    await kernel.run();
    expect(wokeAt).toBeGreaterThan(3e6);
    expect(completion_done(done)).toBe(false);
    expect(kernel.findings.ofKind("oops")).toEqual([]);
  });

  it("wait_for_completion_timeout returns 0 on timeout, the jiffies left otherwise", async () => {
    const { kernel, platform } = bareKernel();
    const c = new completion();
    const results: number[] = [];
    let timedOutAt = -1;
    kernel.exec.spawn("waiter", 0, "", async () => {
      results.push(await wait_for_completion_timeout(c, msecs_to_jiffies(10)));
      timedOutAt = ktime_get_ns();
      results.push(await wait_for_completion_timeout(c, msecs_to_jiffies(100)));
    });
    platform.at(30e6, "completer", () => complete(c));
    await kernel.run();
    expect(results).toEqual([0, 80]);
    expect(timedOutAt).toBe(10e6);
  });

  it("a completion signalled before the wait does not sleep; complete_all releases everyone", async () => {
    const { kernel, platform } = bareKernel();
    const c = new completion();
    complete(c);
    expect(completion_done(c)).toBe(true);
    expect(try_wait_for_completion(c)).toBe(true);
    expect(try_wait_for_completion(c)).toBe(false);
    const woke: string[] = [];
    for (const n of ["a", "b", "c"]) {
      kernel.exec.spawn(n, 0, "", async () => {
        await wait_for_completion(c);
        woke.push(n);
      });
    }
    platform.at(1e6, "all", () => complete_all(c));
    await kernel.run();
    expect(woke).toEqual(["a", "b", "c"]);
    expect(try_wait_for_completion(c)).toBe(true); // complete_all stays done
    reinit_completion(c);
    expect(completion_done(c)).toBe(false);
  });

  it("complete wakes exactly one waiter per call", async () => {
    const { kernel, platform } = bareKernel();
    const c = new completion();
    const woke: string[] = [];
    for (const n of ["a", "b"]) {
      kernel.exec.spawn(n, 0, "", async () => {
        await wait_for_completion(c);
        woke.push(`${n}@${ktime_get_ns()}`);
      });
    }
    platform.at(1e6, "one", () => complete(c));
    platform.at(2e6, "two", () => complete(c));
    await kernel.run();
    expect(woke).toEqual(["a@1000000", "b@2000000"]);
  });

  it("waiting from a timer callback (softirq) WARNs and does not sleep", async () => {
    const { kernel } = bareKernel();
    const c = new completion();
    const t = new timer_list();
    let result = -1;
    timer_setup(t, () => {
      void wait_for_completion_timeout(c, 5).then((r) => (result = r));
    }, 0);
    mod_timer(t, 1);
    await kernel.run();
    expect(result).toBe(0);
    expect(kernel.findings.ofKind("warn")[0].message).toBe(
      "BUG: sleeping function called from invalid context at wait_for_completion_timeout",
    );
  });
});
