import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { EBUSY, EIO, ENODEV } from "../../../../kernel/include/errno.ts";
import { GFP_KERNEL } from "../../../../kernel/include/types.ts";
import { readl, writel } from "../../../../kernel/include/io.ts";
import { kmalloc } from "../../../../kernel/mm/slab-api.ts";
import { devm_add_action, devm_kzalloc } from "../../../../kernel/include/devres.ts";
import { dev_err, dev_info } from "../../../../kernel/include/printk.ts";
import {
  PCI_ANY_ID, PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_DEVICE, PCI_IRQ_MSI, pci_alloc_irq_vectors,
  pci_disable_device, pci_enable_device, pci_get_drvdata, pci_iomap, pci_iounmap, pci_name, pci_read_config_word,
  pci_register_driver, pci_release_regions, pci_request_regions, pci_set_drvdata, pci_set_master,
  pci_unregister_driver, pcim_enable_device, pcim_iomap, pcim_iomap_regions, pcim_iomap_table, to_pci_dev,
  wait_for_device_probe, type pci_dev, type pci_device_id, type pci_driver,
} from "../../../../kernel/include/pci.ts";
import { mem_region_owner } from "../../../../kernel/base/resource.ts";
import { driver_core_summary } from "../../../../kernel/base/driver.ts";
import { pci_state } from "../../../../kernel/pci/pci-dev.ts";

const EDU_ID = 0x00;
const EDU_LIVENESS = 0x04;

function boot(profile = "x86-coherent") {
  const board = new Board(getProfile(profile), { seed: 1 });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  return { board, k, edu: board.pciDevices[0].device };
}

function driver(name: string, probe: pci_driver["probe"], remove?: pci_driver["remove"], ids: pci_device_id[] = [PCI_DEVICE(0x1234, 0x11e8)]): pci_driver {
  return { name, id_table: ids, probe, remove };
}

describe("pci_register_driver", () => {
  it("binds a matching function: probe gets the id row, drvdata and names work", async () => {
    const { k } = boot();
    const seen: unknown[] = [];
    const drv = driver("edu", (pdev, id) => {
      seen.push(pci_name(pdev), id.driver_data, to_pci_dev(pdev.dev) === pdev, k.exec.owner);
      pci_set_drvdata(pdev, { n: 42 });
      return 0;
    }, undefined, [{ vendor: 0x1234, device: 0x11e8, driver_data: 5 }]);
    const done = pci_register_driver(drv);
    await wait_for_device_probe();
    expect(await done).toBe(0);
    expect(seen).toEqual(["0000:00:03.0", 5, true, "edu"]);
    const pdev = pci_state(k).devices[0];
    expect(pdev.driver).toBe(drv);
    expect(pci_get_drvdata<{ n: number }>(pdev).n).toBe(42);
    expect(driver_core_summary().drivers[0]).toMatchObject({ name: "edu", bus: "pci", bound: ["0000:00:03.0"] });
  });

  it("matches PCI_ANY_ID and skips non-matching tables", async () => {
    const { k } = boot();
    const probed: string[] = [];
    void pci_register_driver(driver("other", () => (probed.push("other"), 0), undefined, [PCI_DEVICE(0x8086, 0x100e)]));
    void pci_register_driver(driver("any", () => (probed.push("any"), 0), undefined, [{ vendor: 0x1234, device: PCI_ANY_ID }]));
    await k.run();
    expect(probed).toEqual(["any"]);
  });

  it("dev_* messages from the driver carry the \"edu 0000:00:03.0: \" prefix", async () => {
    const { k } = boot();
    void pci_register_driver(driver("edu", (pdev) => (dev_info(pdev.dev, "hello"), dev_err(pdev.dev, "oops"), -EIO)));
    await k.run();
    const lines = k.printk.records.map((r) => r.prefix + r.text);
    expect(lines).toContain("edu 0000:00:03.0: hello");
    expect(lines).toContain("edu 0000:00:03.0: oops");
    expect(lines).toContain("edu 0000:00:03.0: probe with driver edu failed with error -5");
  });

  it("a positive probe return is warned about and treated as success", async () => {
    const { k } = boot();
    void pci_register_driver(driver("edu", () => 1));
    await k.run();
    expect(pci_state(k).devices[0].dev.driver?.name).toBe("edu");
    expect(k.printk.records.some((r) => r.text === "Driver probe function unexpectedly returned 1")).toBe(true);
  });
});

describe("enable, master, regions, iomap", () => {
  it("enable and master bits land in the function's command register and read back", async () => {
    const { k, edu } = boot();
    const cmds: number[] = [];
    void pci_register_driver(driver("edu", (pdev) => {
      pci_enable_device(pdev);
      cmds.push(edu.command);
      pci_set_master(pdev);
      cmds.push(pci_read_config_word(pdev, PCI_COMMAND));
      return 0;
    }, (pdev) => pci_disable_device(pdev)));
    await k.run();
    expect(cmds).toEqual([PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER]);
    const pdev = pci_state(k).devices[0];
    expect(pdev.is_busmaster).toBe(true);
    expect(k.printk.records.some((r) => r.prefix + r.text === "edu 0000:00:03.0: enabling device (0000 -> 0002)")).toBe(true);
    void pci_unregister_driver(pdev.driver!);
    await k.run();
    expect(edu.command).toBe(0);
    expect(pdev.is_busmaster).toBe(false);
  });

  it("pci_disable_device on a disabled device warns", async () => {
    const { k } = boot();
    void pci_register_driver(driver("edu", (pdev) => (pci_disable_device(pdev), 0)));
    await k.run();
    expect(k.findings.ofKind("warn")[0].message).toBe("disabling already-disabled device");
  });

  it("pci_iomap maps BAR0 for readl/writel; pci_iounmap unmaps it", async () => {
    const { k } = boot();
    const got: number[] = [];
    void pci_register_driver(driver("edu", (pdev) => {
      pci_enable_device(pdev);
      const bar = pci_iomap(pdev, 0, 0);
      got.push(readl(bar + EDU_ID));
      writel(0x0f0f0f0f, bar + EDU_LIVENESS);
      got.push(readl(bar + EDU_LIVENESS));
      pci_iounmap(pdev, bar);
      got.push(pci_iomap(pdev, 1, 0)); // no BAR1: NULL
      pci_disable_device(pdev);
      return 0;
    }));
    await k.run();
    expect(got).toEqual([0x010000ed, 0xf0f0f0f0, 0]);
  });

  it("pci_request_regions claims BAR0; a second claim fails with -EBUSY until released", async () => {
    const { k } = boot();
    const rc: number[] = [];
    void pci_register_driver(driver("edu", (pdev) => {
      rc.push(pci_request_regions(pdev, "edu"));
      rc.push(pci_request_regions(pdev, "intruder"));
      pci_release_regions(pdev);
      rc.push(pci_request_regions(pdev, "again"));
      pci_release_regions(pdev);
      return 0;
    }));
    await k.run();
    expect(rc).toEqual([0, -EBUSY, 0]);
    expect(k.printk.records.some((r) => r.prefix + r.text === "edu 0000:00:03.0: BAR 0: can't reserve [mem 0xc0000000-0xc00fffff]")).toBe(true);
  });

  it("a driver that forgets pci_release_regions makes the next probe fail with -EBUSY", async () => {
    const { k } = boot();
    const first = driver("edu", (pdev) => pci_request_regions(pdev, "edu"));
    void pci_register_driver(first);
    await k.run();
    void pci_unregister_driver(first);
    await k.run();
    const rc: number[] = [];
    void pci_register_driver(driver("edu2", (pdev) => (rc.push(pci_request_regions(pdev, "edu2")), rc[0])));
    await k.run();
    expect(rc).toEqual([-EBUSY]);
  });

  it("pcim_* resources are released on unbind in reverse order", async () => {
    const { k, edu } = boot();
    const order: string[] = [];
    let pdev!: pci_dev;
    const drv = driver("edu", (p) => {
      pdev = p;
      if (pcim_enable_device(p)) return -EIO;
      devm_add_action(p.dev, () => order.push(`after enable: cmd=${edu.command}`), null);
      if (pcim_iomap_regions(p, 1 << 0, "edu")) return -EBUSY;
      devm_add_action(p.dev, () => order.push(`after iomap: region=${mem_region_owner(edu.bars[0]!.base)}`), null);
      order.push(`id=${readl(pcim_iomap_table(p)[0]).toString(16)}`);
      return 0;
    });
    void pci_register_driver(drv);
    await k.run();
    expect(driver_core_summary().devices[0].devres_names).toEqual([
      "pcim_disable_device", "<anonymous>", "devm_request_mem_region", "pcim_iomap_table_release", "pcim_iomap", "<anonymous>",
    ].map((n) => (n === "<anonymous>" ? expect.any(String) : n)));
    void pci_unregister_driver(drv);
    await k.run();
    expect(order).toEqual(["id=10000ed", "after iomap: region=edu", `after enable: cmd=${PCI_COMMAND_MEMORY}`]);
    expect(edu.command).toBe(0);
    expect(mem_region_owner(edu.bars[0]!.base)).toBeNull();
    expect(pdev.is_managed).toBe(false);
    expect(pdev.dev.devres).toHaveLength(0);
  });

  it("pcim_iomap mappings are gone after unbind", async () => {
    const { k } = boot();
    let bar = 0;
    const drv = driver("edu", (p) => (pcim_enable_device(p), (bar = pcim_iomap(p, 0, 0x1000)), 0));
    void pci_register_driver(drv);
    await k.run();
    expect(bar).not.toBe(0);
    void pci_unregister_driver(drv);
    await k.run();
    expect(() => k.aspace.translate(bar, { phys: 0, type: 0, mmio: false }, false)).toThrow(/page fault/);
  });
});

describe("failure, leaks and crashes on PCI", () => {
  it.each([1, 2, 3, 4])("a probe failing after step %i leaves the function as it found it", async (failAfter) => {
    const { k, board, edu } = boot();
    const vec0 = k.platform.msiFirst;
    void pci_register_driver(driver("edu", (p) => {
      if (pcim_enable_device(p) || failAfter === 1) return -EIO;
      if (pcim_iomap_regions(p, 1, "edu") || failAfter === 2) return -EIO;
      pci_set_master(p);
      if (pci_alloc_irq_vectors(p, 1, 1, PCI_IRQ_MSI) < 0 || failAfter === 3) return -EIO;
      devm_kzalloc(p.dev, 128, GFP_KERNEL);
      return -ENODEV;
    }));
    await k.run();
    expect(edu.command).toBe(0);
    expect(edu.msiEnabled).toBe(false);
    expect(pci_state(k).msiUsed.has(vec0)).toBe(false);
    expect(mem_region_owner(edu.bars[0]!.base)).toBeNull();
    expect(k.slab.liveBy("edu")).toHaveLength(0);
    expect(k.findings.count).toBe(0);
    expect(board.log.errors).toEqual([]);
  });

  it("kmalloc memory left behind at unbind is a memory-leak finding naming the device", async () => {
    const { k } = boot();
    const drv = driver("edu", () => (kmalloc(256, GFP_KERNEL), 0));
    void pci_register_driver(drv);
    await k.run();
    void pci_unregister_driver(drv);
    await k.run();
    const [leak] = k.findings.ofKind("memory-leak");
    expect(leak).toMatchObject({ driver: "edu", device: "0000:00:03.0", details: { objects: 1, bytes: 256 } });
  });

  it("an exception in probe is an oops: pcim resources released, remove not called, device dead", async () => {
    const { k, edu } = boot();
    let removed = false;
    const drv = driver("edu", (p) => {
      pcim_enable_device(p);
      pcim_iomap_regions(p, 1, "edu");
      const bad = 0 as number;
      return readl(bad); // NULL dereference
    }, () => void (removed = true));
    void pci_register_driver(drv);
    await k.run();
    const pdev = pci_state(k).devices[0];
    expect(k.findings.ofKind("oops")).toHaveLength(1);
    expect(removed).toBe(false);
    expect(pdev.dev.dead).toBe(true);
    expect(pdev.driver).toBeNull();
    expect(edu.command).toBe(0);
    expect(mem_region_owner(edu.bars[0]!.base)).toBeNull();
    void pci_unregister_driver(drv);
    await k.run();
    expect(removed).toBe(false);
  });
});
