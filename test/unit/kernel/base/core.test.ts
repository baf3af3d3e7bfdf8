import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { EBUSY, EIO, ENODEV, ENOMEM, EPROBE_DEFER, IS_ERR } from "../../../../kernel/include/errno.ts";
import { GFP_KERNEL } from "../../../../kernel/include/types.ts";
import { kfree, kmalloc } from "../../../../kernel/mm/slab-api.ts";
import { devm_add_action, devm_kzalloc } from "../../../../kernel/include/devres.ts";
import { DECLARE_COMPLETION, complete, wait_for_completion } from "../../../../kernel/include/completion.ts";
import {
  platform_device_register_simple, platform_device_unregister, platform_driver_register, platform_driver_unregister,
  platform_get_drvdata, platform_set_drvdata, type platform_device, type platform_driver,
} from "../../../../kernel/include/platform_device.ts";
import {
  device_release_driver, driver_core_summary, driver_probe_done, on_driver_unbind, wait_for_device_probe,
  type unbind_reason,
} from "../../../../kernel/base/driver.ts";

function boot() {
  const desc = getProfile("x86-coherent");
  desc.pci.devices = [];
  const board = new Board(desc, { seed: 1 });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  return { board, k };
}

function addDevice(name: string): platform_device {
  const p = platform_device_register_simple(name, []);
  if (IS_ERR(p)) throw new Error("register failed");
  return p;
}

/** A driver whose probe acquires `steps` managed resources and fails at step `failAt` (0: never). */
function ladderDriver(name: string, steps: number, failAt: number, log: string[]): platform_driver {
  return {
    driver: { name },
    probe(pdev) {
      // Step steps+1 is a last check that can fail after every resource was taken.
      for (let i = 1; i <= steps + 1; i++) {
        if (i === failAt) return -ENOMEM;
        if (i <= steps) devm_add_action(pdev.dev, (n: number) => log.push(`release ${n}`), i);
      }
      log.push("probed");
      return 0;
    },
    remove() {
      log.push("remove");
    },
  };
}

describe("binding", () => {
  it("probes a matching device in a kernel thread owned by the driver and binds it", async () => {
    const { k } = boot();
    const pdev = addDevice("widget");
    let owner = "";
    let inThread = false;
    const drv: platform_driver = {
      driver: { name: "widget" },
      probe(p) {
        owner = k.exec.owner;
        inThread = k.exec.thread !== null;
        platform_set_drvdata(p, { hello: 1 });
        return 0;
      },
    };
    const done = platform_driver_register(drv);
    expect(driver_probe_done()).toBe(-EBUSY);
    await wait_for_device_probe();
    expect(await done).toBe(0);
    expect(driver_probe_done()).toBe(0);
    expect(owner).toBe("widget");
    expect(inThread).toBe(true);
    expect(pdev.dev.driver?.name).toBe("widget");
    expect(platform_get_drvdata<{ hello: number }>(pdev).hello).toBe(1);
    const s = driver_core_summary();
    expect(s.drivers).toEqual([{ name: "widget", bus: "platform", bound: ["widget"], crashed: false }]);
    expect(s.devices[0]).toMatchObject({ name: "widget", driver: "widget", state: "bound", devres: 0 });
  });

  it("a second driver of the same name is refused with -EBUSY", async () => {
    const { k } = boot();
    const a: platform_driver = { driver: { name: "dup" }, probe: () => 0 };
    const b: platform_driver = { driver: { name: "dup" }, probe: () => 0 };
    void platform_driver_register(a);
    expect(await platform_driver_register(b)).toBe(-EBUSY);
    await k.run();
  });

  it("probes a device added after its driver registered", async () => {
    const { k } = boot();
    const seen: string[] = [];
    void platform_driver_register({ driver: { name: "late" }, probe: (p) => (seen.push(p.dev.name), 0) });
    await k.run();
    addDevice("late");
    await k.run();
    expect(seen).toEqual(["late"]);
  });

  it("a probe that returns neither 0 nor an errno is warned about and treated as bound", async () => {
    const { k } = boot();
    const pdev = addDevice("sloppy");
    void platform_driver_register({ driver: { name: "sloppy" }, probe: (() => undefined) as never });
    await k.run();
    expect(pdev.dev.driver?.name).toBe("sloppy");
    expect(k.findings.ofKind("warn")).toHaveLength(1);
  });
});

describe("probe failure unwinding", () => {
  it.each([1, 2, 3, 4])("failing at step %i releases the steps before it in reverse order", async (failAt) => {
    const { k } = boot();
    const pdev = addDevice("ladder");
    const log: string[] = [];
    void platform_driver_register(ladderDriver("ladder", 3, failAt, log));
    await k.run();
    const expected = [];
    for (let i = failAt - 1; i >= 1; i--) expected.push(`release ${i}`);
    expect(log).toEqual(expected);
    expect(pdev.dev.driver).toBeNull();
    expect(pdev.dev.devres).toHaveLength(0);
    expect(driver_core_summary().devices[0].state).toBe("unbound");
    expect(k.printk.dmesg().some((l) => l.includes("ladder ladder: probe with driver ladder failed with error -12"))).toBe(true);
  });

  it("-ENODEV is a silent rejection (debug only)", async () => {
    const { k } = boot();
    addDevice("picky");
    void platform_driver_register({ driver: { name: "picky" }, probe: () => -ENODEV });
    await k.run();
    expect(k.printk.dmesg(4).filter((l) => l.includes("probe with driver"))).toEqual([]);
  });

  it("-EPROBE_DEFER is retried after another driver binds", async () => {
    const { k } = boot();
    const consumer = addDevice("consumer");
    addDevice("supplier");
    let supplierReady = false;
    let tries = 0;
    void platform_driver_register({ driver: { name: "consumer" }, probe: () => (tries++, supplierReady ? 0 : -EPROBE_DEFER) });
    await k.run();
    expect(consumer.dev.driver).toBeNull();
    void platform_driver_register({ driver: { name: "supplier" }, probe: () => ((supplierReady = true), 0) });
    await k.run();
    expect(tries).toBe(2);
    expect(consumer.dev.driver?.name).toBe("consumer");
  });
});

describe("sleeping probe", () => {
  it("a probe may sleep until an event wakes it; registration settles after it", async () => {
    const { k } = boot();
    const pdev = addDevice("sleepy");
    let wokeAt = 0;
    const drv: platform_driver = {
      driver: { name: "sleepy" },
      async probe() {
        const me = k.exec.thread!;
        k.platform.after(5000, "wake", () => k.exec.wake(me));
        await k.exec.block();
        wokeAt = k.exec.now();
        return 0;
      },
    };
    let settled = false;
    void platform_driver_register(drv).then(() => (settled = true));
    await wait_for_device_probe();
    await Promise.resolve();
    expect(settled).toBe(true);
    expect(wokeAt).toBeGreaterThanOrEqual(5000);
    expect(pdev.dev.driver?.name).toBe("sleepy");
  });

  it("a probe may wait_for_completion() on something completed from an event", async () => {
    const { k } = boot();
    const pdev = addDevice("waiter");
    const done = DECLARE_COMPLETION();
    void platform_driver_register({
      driver: { name: "waiter" },
      async probe() {
        k.platform.after(20_000, "device-ready", () => complete(done));
        await wait_for_completion(done);
        return k.exec.now() >= 20_000 ? 0 : -EIO;
      },
    });
    await wait_for_device_probe();
    expect(pdev.dev.driver?.name).toBe("waiter");
  });

  it("binds and unbinds are serialised: unregister waits for a sleeping probe", async () => {
    const { k } = boot();
    addDevice("slow");
    const log: string[] = [];
    const drv: platform_driver = {
      driver: { name: "slow" },
      async probe() {
        const me = k.exec.thread!;
        k.platform.after(1000, "wake", () => k.exec.wake(me));
        await k.exec.block();
        log.push("probe done");
        return 0;
      },
      remove: () => void log.push("remove"),
    };
    void platform_driver_register(drv);
    await k.run({ untilNs: 500 }); // the probe is asleep now
    expect(driver_core_summary().devices[0].state).toBe("probing");
    void platform_driver_unregister(drv);
    await wait_for_device_probe();
    expect(log).toEqual(["probe done", "remove"]);
    expect(driver_core_summary().drivers).toEqual([]);
  });
});

describe("unbind", () => {
  it("calls remove, then releases devres in reverse, then the unbind hooks", async () => {
    const { k } = boot();
    const pdev = addDevice("ladder");
    const log: string[] = [];
    on_driver_unbind((dev, name, why) => log.push(`hook ${dev.name} ${name} ${why} devres=${dev.devres.length}`));
    const drv = ladderDriver("ladder", 3, 0, log);
    void platform_driver_register(drv);
    await k.run();
    expect(driver_core_summary().devices[0].devres).toBe(3);
    const done = platform_driver_unregister(drv);
    await k.run();
    await done;
    expect(log).toEqual(["probed", "remove", "release 3", "release 2", "release 1", "hook ladder ladder remove devres=0"]);
    expect(pdev.dev.driver).toBeNull();
    expect(driver_core_summary().drivers).toEqual([]);
  });

  it("device_release_driver unbinds one device; platform_device_unregister deletes it", async () => {
    const { k } = boot();
    const a = addDevice("twin");
    const b = platform_device_register_simple("twin", 1, []) as platform_device;
    const removed: string[] = [];
    void platform_driver_register({ driver: { name: "twin" }, probe: () => 0, remove: (p) => void removed.push(p.dev.name) });
    await k.run();
    expect(b.dev.name).toBe("twin.1");
    void device_release_driver(a.dev);
    await k.run();
    expect(removed).toEqual(["twin"]);
    void platform_device_unregister(b);
    await k.run();
    expect(removed).toEqual(["twin", "twin.1"]);
    expect(driver_core_summary().devices.map((d) => d.name)).toEqual(["twin"]);
  });

  it("reports kmalloc memory the binding never freed as a memory-leak finding", async () => {
    const { k } = boot();
    addDevice("leaky");
    let kept = 0;
    const drv: platform_driver = {
      driver: { name: "leaky" },
      probe(p) {
        kmalloc(100, GFP_KERNEL); // leaked
        kept = kmalloc(40, GFP_KERNEL); // freed in remove
        devm_kzalloc(p.dev, 24, GFP_KERNEL); // managed: fine
        return 0;
      },
      remove: () => kfree(kept),
    };
    void platform_driver_register(drv);
    await k.run();
    void platform_driver_unregister(drv);
    await k.run();
    const leaks = k.findings.ofKind("memory-leak");
    expect(leaks).toHaveLength(1);
    expect(leaks[0]).toMatchObject({ driver: "leaky", device: "leaky", fix: "kfree() what probe allocated, or use devm_kzalloc()." });
    expect(leaks[0].details).toMatchObject({ objects: 1, bytes: 100, sizes: "100" });
    expect(leaks[0].history?.[0].op).toBe("kmalloc");
    expect(leaks[0].history?.[0].detail).toMatch(/^100 bytes at 0x/);
  });

  it("a failed probe's unfreed kmalloc is a leak too; memory from before the binding is not", async () => {
    const { k } = boot();
    addDevice("bad");
    k.exec.runOn(0, "process", "bad", "module_init", () => kmalloc(8, GFP_KERNEL));
    void platform_driver_register({ driver: { name: "bad" }, probe: () => (kmalloc(64, GFP_KERNEL), -EIO) });
    await k.run();
    const leaks = k.findings.ofKind("memory-leak");
    expect(leaks).toHaveLength(1);
    expect(leaks[0].details?.bytes).toBe(64);
  });
});

describe("driver crash", () => {
  it("an exception in probe is an oops: devres released, remove not called, device dead", async () => {
    const { k } = boot();
    const pdev = addDevice("crashy");
    const log: string[] = [];
    const reasons: unbind_reason[] = [];
    on_driver_unbind((_d, _n, why) => reasons.push(why));
    const drv: platform_driver = {
      driver: { name: "crashy" },
      probe(p) {
        devm_add_action(p.dev, () => log.push("release a"), null);
        devm_add_action(p.dev, () => log.push("release b"), null);
        kmalloc(32, GFP_KERNEL);
        throw new TypeError("null pointer dereference");
      },
      remove: () => void log.push("remove"),
    };
    void platform_driver_register(drv);
    await k.run();
    expect(k.findings.ofKind("oops")).toHaveLength(1);
    expect(k.findings.ofKind("oops")[0].driver).toBe("crashy");
    expect(log).toEqual(["release b", "release a"]);
    expect(pdev.dev.dead).toBe(true);
    expect(pdev.dev.driver).toBeNull();
    expect(reasons).toEqual(["crash"]);
    expect(k.findings.ofKind("memory-leak")).toHaveLength(0);
    expect(driver_core_summary().drivers[0].crashed).toBe(true);
    // A crashed driver binds nothing more.
    addDevice("crashy.2");
    void platform_driver_unregister(drv);
    await k.run();
    expect(log).toEqual(["release b", "release a"]);
  });

  it("a crash outside probe unbinds the driver's devices without remove", async () => {
    const { k } = boot();
    const pdev = addDevice("irqcrash");
    const log: string[] = [];
    const drv: platform_driver = {
      driver: { name: "irqcrash" },
      probe(p) {
        devm_add_action(p.dev, () => log.push("released"), null);
        return 0;
      },
      remove: () => void log.push("remove"),
    };
    void platform_driver_register(drv);
    await k.run();
    k.platform.after(100, "fake-irq", () => {
      k.exec.runOn(1, "hardirq", "irqcrash", "irqcrash_isr", () => {
        throw new Error("bad access in handler");
      });
    });
    await k.run();
    expect(pdev.dev.dead).toBe(true);
    expect(pdev.dev.driver).toBeNull();
    expect(log).toEqual(["released"]);
    expect(k.printk.dmesg().some((l) => l.includes("irqcrash irqcrash: driver irqcrash crashed"))).toBe(true);
    void platform_driver_unregister(drv);
    await k.run();
    expect(log).toEqual(["released"]);
  });
});

describe("nested registration", () => {
  it("a probe may add a child device, probed right after the parent", async () => {
    boot();
    addDevice("parent");
    const log: string[] = [];
    void platform_driver_register({ driver: { name: "child" }, probe: () => (log.push("child probed"), 0) });
    void platform_driver_register({
      driver: { name: "parent" },
      probe() {
        platform_device_register_simple("child", []);
        log.push("parent probed");
        return 0;
      },
    });
    await wait_for_device_probe();
    expect(log).toEqual(["parent probed", "child probed"]);
  });
});
