import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { ENOMEM, EPROBE_DEFER } from "../../../../kernel/include/errno.ts";
import {
  KERN_DEBUG, KERN_ERR, KERN_INFO, KERN_NOTICE, KERN_WARNING, dev_WARN, dev_dbg, dev_err, dev_err_probe, dev_info,
  dev_notice, dev_warn, dev_warn_once, pr_err, pr_info, printk,
} from "../../../../kernel/include/printk.ts";

function boot() {
  const desc = getProfile("x86-coherent");
  desc.pci.devices = [];
  const k = new Kernel(new Platform(new Board(desc, { seed: 1 })), { logLevel: "silent" });
  return k;
}

describe("dev_printk", () => {
  it('prefixes "<driver> <device>: " while bound and "<bus> <device>: " otherwise', () => {
    const k = boot();
    const dev = new device("0000:00:03.0", "pci");
    dev_info(dev, "no driver yet");
    dev.driver = { name: "edu" };
    dev_err(dev, "something broke\n");
    expect(k.printk.dmesg()).toEqual([
      "[    0.000000] pci 0000:00:03.0: no driver yet",
      "[    0.000000] edu 0000:00:03.0: something broke",
    ]);
  });

  it("logs at the Linux level of each helper", () => {
    const k = boot();
    const dev = new device("serial0", "platform");
    dev_err(dev, "e");
    dev_warn(dev, "w");
    dev_notice(dev, "n");
    dev_info(dev, "i");
    dev_dbg(dev, "d");
    expect(k.printk.records.map((r) => r.level)).toEqual([KERN_ERR, KERN_WARNING, KERN_NOTICE, KERN_INFO, KERN_DEBUG]);
    expect(k.printk.records[0].prefix).toBe("platform serial0: ");
  });

  it("dev_err_probe returns the error, logs it by name, and keeps deferrals at debug level", () => {
    const k = boot();
    const dev = new device("0000:00:03.0", "pci");
    dev.driver = { name: "edu" };
    expect(dev_err_probe(dev, -ENOMEM, "cannot map BAR0")).toBe(-ENOMEM);
    expect(dev_err_probe(dev, -EPROBE_DEFER, "supplier not ready")).toBe(-EPROBE_DEFER);
    const [a, b] = k.printk.records;
    expect([a.level, a.prefix + a.text]).toEqual([KERN_ERR, "edu 0000:00:03.0: error -ENOMEM: cannot map BAR0"]);
    expect([b.level, b.text]).toEqual([KERN_DEBUG, "error -EPROBE_DEFER: supplier not ready"]);
  });

  it("dev_WARN is a WARN naming the device: counted and reported", () => {
    const k = boot();
    const dev = new device("0000:00:03.0", "pci");
    dev.driver = { name: "edu" };
    dev_WARN(dev, "ring overflow");
    expect(k.warnings).toBe(1);
    expect(k.findings.ofKind("warn")[0]).toMatchObject({ device: "edu 0000:00:03.0", message: "ring overflow" });
    expect(k.printk.dmesg().at(-1)).toBe("[    0.000000] edu 0000:00:03.0: WARNING: ring overflow");
  });

  it("dev_warn_once logs a message once per device", () => {
    const k = boot();
    const a = new device("a", "platform");
    const b = new device("b", "platform");
    dev_warn_once(a, "x");
    dev_warn_once(a, "x");
    dev_warn_once(b, "x");
    expect(k.printk.records).toHaveLength(2);
  });
});

describe("printk and pr_*", () => {
  it("logs without a prefix; printk without a level uses KERN_DEFAULT (warning)", () => {
    const k = boot();
    pr_err("bad");
    pr_info("fine");
    printk("plain");
    printk(KERN_NOTICE, "explicit");
    expect(k.printk.records.map((r) => [r.level, r.prefix, r.text])).toEqual([
      [KERN_ERR, "", "bad"],
      [KERN_INFO, "", "fine"],
      [KERN_WARNING, "", "plain"],
      [KERN_NOTICE, "", "explicit"],
    ]);
  });
});
