import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { EEXIST, ENXIO, EBUSY, IS_ERR, PTR_ERR } from "../../../../kernel/include/errno.ts";
import {
  DEFINE_RES_IRQ, DEFINE_RES_MEM, IORESOURCE_IRQ, IORESOURCE_MEM, PLATFORM_DEVID_AUTO, devm_platform_ioremap_resource,
  platform_device_register_simple, platform_driver_register, platform_driver_unregister, platform_get_irq,
  platform_get_resource, resource_size, to_platform_device, type platform_device,
} from "../../../../kernel/include/platform_device.ts";
import { driver_init } from "../../../../kernel/base/init.ts";
import { driver_core_summary } from "../../../../kernel/base/driver.ts";
import { mem_region_owner } from "../../../../kernel/base/resource.ts";

function boot(platformDevs: { name: string; base: number; size: number; irq: number }[] = []) {
  const desc = getProfile("arm64-noncoherent");
  desc.pci.devices = [];
  desc.platform = platformDevs.map((d) => ({ ...d, model: "edu" }));
  const board = new Board(desc, { seed: 1 });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  return { board, k };
}

const UART = { name: "uart0", base: 0x9000_0000, size: 0x1000, irq: 33 };

describe("platform devices from the machine description", () => {
  it("driver_init creates one device per entry with its MEM and IRQ resources", () => {
    const { k } = boot([UART]);
    driver_init(k);
    const s = driver_core_summary(k);
    expect(s.devices).toMatchObject([{ name: "uart0", bus: "platform", driver: null }]);
  });

  it("matches a driver by device name, by model, or by id_table, and hands out resources", async () => {
    const { k } = boot([UART, { name: "uart1", base: 0x9000_1000, size: 0x1000, irq: 34 }]);
    const got: Record<string, unknown>[] = [];
    void platform_driver_register({
      driver: { name: "uart0" },
      probe(pdev) {
        const mem = platform_get_resource(pdev, IORESOURCE_MEM, 0)!;
        got.push({ dev: pdev.dev.name, start: mem.start, size: resource_size(mem), irq: platform_get_irq(pdev, 0), coherent: pdev.dev.dma_coherent });
        return 0;
      },
    });
    void platform_driver_register({
      driver: { name: "serial" },
      id_table: [{ name: "uart1", driver_data: 7 }],
      probe(pdev) {
        got.push({ dev: pdev.dev.name, data: pdev.id_entry?.driver_data });
        return 0;
      },
    });
    await k.run();
    expect(got).toEqual([
      { dev: "uart0", start: 0x9000_0000, size: 0x1000, irq: 33, coherent: false },
      { dev: "uart1", data: 7 },
    ]);
  });

  it("a driver named after the model binds every instance", async () => {
    const { k } = boot([UART, { name: "uart1", base: 0x9000_1000, size: 0x1000, irq: 34 }]);
    const seen: string[] = [];
    void platform_driver_register({ driver: { name: "edu" }, probe: (p) => (seen.push(p.dev.name), 0) });
    await k.run();
    expect(seen).toEqual(["uart0", "uart1"]);
  });
});

describe("platform_device_register_simple", () => {
  it("names devices name, name.id or name.N.auto and refuses duplicates", () => {
    const { k } = boot();
    k.enter();
    const a = platform_device_register_simple("dmac", [DEFINE_RES_MEM(0x1000_0000, 0x100)]) as platform_device;
    const b = platform_device_register_simple("dmac", 2, []) as platform_device;
    const c = platform_device_register_simple("dmac", PLATFORM_DEVID_AUTO, []) as platform_device;
    expect([a.dev.name, b.dev.name, c.dev.name]).toEqual(["dmac", "dmac.2", "dmac.0.auto"]);
    expect(to_platform_device(a.dev)).toBe(a);
    const dup = platform_device_register_simple("dmac", []);
    expect(IS_ERR(dup) && PTR_ERR(dup)).toBe(-EEXIST);
  });

  it("platform_get_irq reports a missing interrupt with -ENXIO", () => {
    const { k } = boot();
    const p = platform_device_register_simple("noirq", [DEFINE_RES_MEM(0x1000_0000, 0x100)]) as platform_device;
    expect(platform_get_irq(p, 0)).toBe(-ENXIO);
    expect(platform_get_resource(p, IORESOURCE_IRQ, 0)).toBeNull();
    expect(k.printk.dmesg().at(-1)).toMatch(/platform noirq: IRQ index 0 not found$/);
  });
});

describe("devm_platform_ioremap_resource", () => {
  it("claims and maps the region for the binding, and gives it back on unbind", async () => {
    const { k } = boot();
    const res = [DEFINE_RES_MEM(k.platform.pciEcamBase, 0x1000, "regs"), DEFINE_RES_IRQ(40)];
    platform_device_register_simple("mmiodev", res);
    platform_device_register_simple("mmiodev", 1, res);
    const results: (number | string)[] = [];
    const drv = {
      driver: { name: "mmiodev" },
      probe(pdev: platform_device) {
        const regs = devm_platform_ioremap_resource(pdev, 0);
        if (IS_ERR(regs)) {
          results.push(PTR_ERR(regs));
          return PTR_ERR(regs);
        }
        results.push("mapped");
        return 0;
      },
    };
    void platform_driver_register(drv);
    await k.run();
    // The second instance describes the same registers: its claim fails.
    expect(results).toEqual(["mapped", -EBUSY]);
    expect(mem_region_owner(k.platform.pciEcamBase)).toBe("mmiodev regs");
    void platform_driver_unregister(drv);
    await k.run();
    expect(mem_region_owner(k.platform.pciEcamBase)).toBeNull();
    expect(k.printk.dmesg().some((l) => l.includes("mmiodev mmiodev.1: can't request region for resource [mem 0xe0000000-0xe0000fff]"))).toBe(true);
  });
});
