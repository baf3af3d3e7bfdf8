import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { kmalloc } from "../../../../kernel/include/slab.ts";
import { kread32 } from "../../../../kernel/include/string.ts";

describe("Exec", () => {
  it("charges CPU time for memory accesses and keeps the CPU busy that long", () => {
    const { kernel, platform } = bareKernel();
    const p = kernel.exec.runOn(0, "process", "", "alloc", () => kmalloc(64, 0))!;
    kernel.exec.runOn(0, "process", "", "touch", () => {
      for (let i = 0; i < 16; i++) kread32(p + i * 4);
    });
    expect(kernel.exec.busyNs[0]).toBeGreaterThan(0);
    expect(kernel.exec.freeAt(0)).toBeGreaterThan(platform.now());
  });

  it("runs kernel threads that sleep until woken, in order, and finish", async () => {
    const { kernel, platform } = bareKernel();
    const log: string[] = [];
    let waiter: ReturnType<typeof kernel.exec.spawn> | null = null;
    waiter = kernel.exec.spawn("waiter", 0, "t", async () => {
      log.push(`wait@${platform.now()}`);
      await kernel.exec.block();
      log.push(`woken@${platform.now()}`);
      expect(kernel.exec.context).toBe("process");
      expect(kernel.exec.thread).toBe(waiter);
    });
    platform.after(5000, "waker", () => {
      log.push("wake");
      kernel.exec.wake(waiter!);
    });
    await kernel.run();
    expect(log).toEqual(["wait@0", "wake", "woken@5000"]);
    expect(waiter.state).toBe("done");
  });

  it("turns an exception in a thread into an oops finding and carries on", async () => {
    const { kernel } = bareKernel();
    kernel.exec.spawn("crasher", 0, "baddrv", async () => {
      kread32(0x10);
    });
    let ranAfter = false;
    kernel.exec.spawn("next", 0, "", async () => {
      ranAfter = true;
    });
    await kernel.run();
    expect(ranAfter).toBe(true);
    const oops = kernel.findings.ofKind("oops");
    expect(oops).toHaveLength(1);
    expect(oops[0].driver).toBe("baddrv");
    expect(kernel.printk.dmesg().join("\n")).toMatch(/unable to handle page fault/);
  });

  it("refuses to sleep outside a thread", () => {
    const { kernel } = bareKernel();
    expect(() => kernel.exec.block()).toThrow(/invalid context/);
  });
});
