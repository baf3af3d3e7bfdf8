import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { ENOENT } from "../../../../kernel/include/errno.ts";
import { GFP_KERNEL } from "../../../../kernel/include/types.ts";
import { kread32, kwrite32 } from "../../../../kernel/mm/access.ts";
import {
  devres_add, devres_close_group, devres_count, devres_names, devres_open_group, devres_release_all,
  devres_release_group, devres_remove_group, devm_add_action, devm_add_action_or_reset, devm_kcalloc,
  devm_kfree, devm_kmalloc, devm_kzalloc, devm_release_action, devm_remove_action,
} from "../../../../kernel/include/devres.ts";
import { devm_ioremap, devm_ioremap_resource, devm_iounmap } from "../../../../kernel/base/devres-io.ts";
import { DEFINE_RES_IRQ, DEFINE_RES_MEM, mem_region_owner } from "../../../../kernel/base/resource.ts";
import { IS_ERR, PTR_ERR, EBUSY, EINVAL } from "../../../../kernel/include/errno.ts";

function boot() {
  const desc = getProfile("x86-coherent");
  desc.pci.devices = [];
  const board = new Board(desc, { seed: 1 });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  return { board, k, dev: new device("testdev", "platform") };
}

describe("devres list", () => {
  it("releases resources in reverse order of acquisition and empties the list", () => {
    const { dev } = boot();
    const order: string[] = [];
    devres_add(dev, { name: "a", release: () => order.push("a") });
    devm_add_action(dev, (x: string) => order.push(x), "b");
    devres_add(dev, { name: "c", release: () => order.push("c") });
    expect(devres_count(dev)).toBe(3);
    expect(devres_release_all(dev)).toBe(3);
    expect(order).toEqual(["c", "b", "a"]);
    expect(devres_count(dev)).toBe(0);
  });

  it("names action nodes after the action function, as Linux's #action does", () => {
    const { dev } = boot();
    function my_cleanup(_d: number): void {}
    devm_add_action(dev, my_cleanup, 1);
    expect(devres_names(dev)).toEqual(["my_cleanup"]);
  });

  it("keeps releasing after a release action throws, reporting an oops", async () => {
    const { k, dev } = boot();
    const order: string[] = [];
    devres_add(dev, { name: "first", release: () => order.push("first") });
    devres_add(dev, { name: "bad", release: () => { throw new Error("boom"); } });
    devres_add(dev, { name: "last", release: () => order.push("last") });
    k.exec.runOn(0, "process", "drv", "t", () => devres_release_all(dev));
    expect(order).toEqual(["last", "first"]);
    expect(k.findings.ofKind("oops")).toHaveLength(1);
  });

  it("devm_release_action runs one action now and forgets it; devm_remove_action only forgets", () => {
    const { k, dev } = boot();
    const ran: number[] = [];
    const act = (n: number): void => void ran.push(n);
    devm_add_action(dev, act, 1);
    devm_add_action(dev, act, 2);
    devm_release_action(dev, act, 1);
    expect(ran).toEqual([1]);
    devm_remove_action(dev, act, 2);
    expect(devres_count(dev)).toBe(0);
    devres_release_all(dev);
    expect(ran).toEqual([1]);
    devm_release_action(dev, act, 3);
    expect(k.findings.ofKind("warn")).toHaveLength(1);
  });

  it("devm_add_action_or_reset returns 0 and defers the action", () => {
    const { dev } = boot();
    let n = 0;
    expect(devm_add_action_or_reset(dev, () => n++, null)).toBe(0);
    expect(n).toBe(0);
    devres_release_all(dev);
    expect(n).toBe(1);
  });

  it("releases plain {name, release} nodes pushed by other subsystems", () => {
    const { dev } = boot();
    let n = 0;
    dev.devres.push({ name: "dmam_release", release: () => n++ });
    expect(devres_count(dev)).toBe(1);
    devres_release_all(dev);
    expect(n).toBe(1);
  });
});

describe("devres groups", () => {
  it("releases only the group's resources, newest first, including nested groups", () => {
    const { dev } = boot();
    const order: string[] = [];
    const add = (s: string): void => devres_add(dev, { name: s, release: () => order.push(s) });
    add("outside");
    const g = devres_open_group(dev);
    add("g1");
    const inner = devres_open_group(dev);
    add("inner");
    devres_close_group(dev, inner);
    add("g2");
    devres_close_group(dev, g);
    add("after");
    expect(devres_release_group(dev, g)).toBe(3);
    expect(order).toEqual(["g2", "inner", "g1"]);
    expect(devres_names(dev)).toEqual(["outside", "after"]);
  });

  it("an unclosed group extends to the end of the list", () => {
    const { dev } = boot();
    const order: string[] = [];
    devres_add(dev, { name: "x", release: () => order.push("x") });
    devres_open_group(dev, "grp");
    devres_add(dev, { name: "y", release: () => order.push("y") });
    devres_add(dev, { name: "z", release: () => order.push("z") });
    expect(devres_release_group(dev, null)).toBe(2);
    expect(order).toEqual(["z", "y"]);
  });

  it("devres_remove_group keeps the resources; a missing group warns and returns -ENOENT", () => {
    const { k, dev } = boot();
    const g = devres_open_group(dev, "g");
    devres_add(dev, { name: "kept", release: () => {} });
    devres_close_group(dev, g);
    devres_remove_group(dev, g);
    expect(devres_names(dev)).toEqual(["kept"]);
    expect(dev.devres).toHaveLength(1);
    expect(devres_release_group(dev, "nope")).toBe(-ENOENT);
    expect(k.warnings).toBe(1);
  });
});

describe("managed kmalloc", () => {
  it("devm_kzalloc memory is zeroed, usable, and freed at release", () => {
    const { k, dev } = boot();
    k.exec.runOn(0, "process", "drv", "t", () => {
      const p = devm_kzalloc(dev, 64, GFP_KERNEL);
      expect(p).not.toBe(0);
      expect(kread32(p + 60)).toBe(0);
      kwrite32(p, 0x1234);
      expect(kread32(p)).toBe(0x1234);
      const q = devm_kcalloc(dev, 4, 16, GFP_KERNEL);
      expect(q).not.toBe(0);
      expect(k.slab.liveBy("drv")).toHaveLength(2);
      devres_release_all(dev);
      expect(k.slab.liveBy("drv")).toHaveLength(0);
    });
  });

  it("devm_kfree frees one object early; a foreign pointer warns", () => {
    const { k, dev } = boot();
    k.exec.runOn(0, "process", "drv", "t", () => {
      const p = devm_kmalloc(dev, 32, GFP_KERNEL);
      const q = devm_kmalloc(dev, 32, GFP_KERNEL);
      devm_kfree(dev, p);
      expect(devres_count(dev)).toBe(1);
      expect(k.slab.liveBy("drv").map((o) => o.size)).toEqual([32]);
      devm_kfree(dev, p);
      expect(k.warnings).toBe(1);
      devm_kfree(dev, q);
      expect(k.slab.liveBy("drv")).toHaveLength(0);
    });
  });

  it("devm_kcalloc refuses an overflowing size", () => {
    const { dev } = boot();
    expect(devm_kcalloc(dev, 2 ** 40, 2 ** 20, GFP_KERNEL)).toBe(0);
    expect(devres_count(dev)).toBe(0);
  });
});

describe("managed MMIO", () => {
  it("devm_ioremap mappings are unmapped at release; devm_iounmap unmaps early", () => {
    const { k, dev } = boot();
    const ecam = k.platform.pciEcamBase;
    const a = devm_ioremap(dev, ecam, 4096);
    const b = devm_ioremap(dev, ecam + 4096, 4096);
    expect(a).not.toBe(0);
    expect(devres_names(dev)).toEqual(["devm_ioremap", "devm_ioremap"]);
    devm_iounmap(dev, a);
    expect(devres_count(dev)).toBe(1);
    devres_release_all(dev);
    expect(() => k.aspace.translate(b, { phys: 0, type: 0, mmio: false }, false)).toThrow(/page fault/);
  });

  it("devm_ioremap_resource claims the region; a second claim gets -EBUSY; release frees it", () => {
    const { k, dev } = boot();
    const other = new device("other", "platform");
    const res = DEFINE_RES_MEM(k.platform.pciEcamBase, 0x1000, "regs");
    const addr = devm_ioremap_resource(dev, res);
    expect(IS_ERR(addr)).toBe(false);
    expect(mem_region_owner(res.start)).toBe("testdev regs");
    const again = devm_ioremap_resource(other, res);
    expect(IS_ERR(again) && PTR_ERR(again)).toBe(-EBUSY);
    expect(devres_count(other)).toBe(0);
    devres_release_all(dev);
    expect(mem_region_owner(res.start)).toBeNull();
    const bad = devm_ioremap_resource(dev, DEFINE_RES_IRQ(5));
    expect(IS_ERR(bad) && PTR_ERR(bad)).toBe(-EINVAL);
  });
});
