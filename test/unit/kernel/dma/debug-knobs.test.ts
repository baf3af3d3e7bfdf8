/** The §7.3 knobs: printing like err_printk, counting always, findings always (unless disabled). */
import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { DMA_TO_DEVICE, dma_map_single, dma_unmap_single } from "../../../../kernel/include/dma-mapping.ts";
import { dma_debug_get_options, dma_debug_set_options } from "../../../../kernel/dma/debug-knobs.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { EINVAL, EPERM } from "../../../../kernel/include/errno.ts";
import { kmalloc } from "../../../../kernel/mm/slab-api.ts";
import type { dma_addr_t } from "../../../../kernel/include/types.ts";

function boot() {
  const { kernel: k } = bareKernel("x86-coherent");
  const mk = (drv: string, name: string) => {
    const d = new device(name, "pci");
    d.driver = { name: drv };
    return d;
  };
  const a = mk("alpha", "0000:00:03.0");
  const b = mk("beta", "0000:00:04.0");
  /** One unmap-not-mapped error from @dev. */
  const err = (dev: device) => dma_unmap_single(dev, 0x100000 as dma_addr_t, 64, DMA_TO_DEVICE);
  const lines = () => k.printk.dmesg().filter((l) => l.includes("DMA-API: ") && l.includes("tries to free"));
  return { k, a, b, err, lines };
}

describe("printing", () => {
  it("defaults to Linux's: the first error is printed, later ones only counted (and still findings)", () => {
    const { k, a, err, lines } = boot();
    expect(dma_debug_get_options(k)).toEqual({ all_errors: false, num_errors: 1, driver_filter: null, disabled: false, error_count: 0 });
    err(a);
    err(a);
    err(a);
    expect(lines()).toHaveLength(1);
    expect(k.findings.count).toBe(3);
    expect(dma_debug_get_options(k).error_count).toBe(3);
  });

  it("all_errors prints every error", () => {
    const { k, a, err, lines } = boot();
    expect(dma_debug_set_options(k, { all_errors: true })).toBe(0);
    err(a);
    err(a);
    expect(lines()).toHaveLength(2);
  });

  it("num_errors restarts the countdown", () => {
    const { k, a, err, lines } = boot();
    err(a);
    err(a);
    dma_debug_set_options(k, { num_errors: 2 });
    err(a);
    err(a);
    err(a);
    expect(lines()).toHaveLength(3);
  });

  it("driver_filter prints one driver's errors only; counting and findings are unaffected", () => {
    const { k, a, b, err, lines } = boot();
    dma_debug_set_options(k, { all_errors: true, driver_filter: "beta" });
    err(a);
    err(b);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toContain("beta 0000:00:04.0");
    expect(k.findings.count).toBe(2);
    dma_debug_set_options(k, { driver_filter: "" });
    err(a);
    expect(lines()).toHaveLength(2);
  });
});

describe("disabled", () => {
  it("stops checks and findings but keeps the bookkeeping; it cannot be undone", () => {
    const { k, a, err, lines } = boot();
    expect(dma_debug_set_options(k, { disabled: true })).toBe(0);
    err(a);
    const buf = kmalloc(64, 0);
    const h = dma_map_single(a, buf, 64, DMA_TO_DEVICE);
    expect(dma_debug_live(a)).toHaveLength(1);
    dma_unmap_single(a, h, 64, DMA_TO_DEVICE); // never checked: no report while disabled
    expect(k.findings.count).toBe(0);
    expect(lines()).toEqual([]);
    expect(dma_debug_set_options(k, { disabled: false })).toBe(-EPERM);
    expect(dma_debug_get_options(k).disabled).toBe(true);
  });
});

describe("validation", () => {
  it("refuses bad values and changes nothing", () => {
    const { k } = boot();
    expect(dma_debug_set_options(k, { num_errors: -1, all_errors: true })).toBe(-EINVAL);
    expect(dma_debug_set_options(k, { num_errors: 1.5 })).toBe(-EINVAL);
    expect(dma_debug_set_options(k, { driver_filter: "no spaces" })).toBe(-EINVAL);
    expect(dma_debug_get_options(k).all_errors).toBe(false);
  });
});
