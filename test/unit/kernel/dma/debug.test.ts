import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { GFP_KERNEL, PAGE_SIZE, type dma_addr_t } from "../../../../kernel/include/types.ts";
import { kmalloc, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  dma_addr_holder,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_map_page,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_unmap_page,
  dma_unmap_single,
  dmam_alloc_coherent,
} from "../../../../kernel/include/dma-mapping.ts";
import { debug_dma_dump_mappings, dma_debug_device_unbind, dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { DmaDebugTable } from "../../../../kernel/dma/debug-table.ts";
import type { dma_debug_entry } from "../../../../kernel/dma/debug-entry.ts";
import { IS_ERR } from "../../../../kernel/include/errno.ts";
import { devm_kzalloc } from "../../../../kernel/include/devres.ts";
import { platform_device_register_simple, platform_driver_register, type platform_driver } from "../../../../kernel/include/platform_device.ts";
import { device_release_driver, wait_for_device_probe } from "../../../../kernel/base/driver.ts";

function boot(profile: "x86-coherent" | "arm64-noncoherent" = "arm64-noncoherent") {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  const k = new Kernel(new Platform(new Board(desc, { seed: 1 })), { logLevel: "silent" });
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  dev.driver = { name: "testdrv" };
  const kinds = () => k.findings.list.map((f) => f.kind);
  /** A checked mapping of a fresh 512-byte buffer. */
  const mapped = (dir: 0 | 1 | 2 = DMA_FROM_DEVICE, size = 512) => {
    const buf = kmalloc(size, 0);
    const h = dma_map_single(dev, buf, size, dir);
    expect(dma_mapping_error(dev, h)).toBe(0);
    return { buf, h, size };
  };
  return { k, dev, kinds, mapped };
}

describe("correct sequences", () => {
  it("map, syncs both ways, partial syncs, unmap: no findings, nothing live", () => {
    const { dev, kinds, mapped } = boot();
    const { h } = mapped(DMA_BIDIRECTIONAL, 1024);
    dma_sync_single_for_cpu(dev, h, 1024, DMA_BIDIRECTIONAL);
    dma_sync_single_for_device(dev, h, 1024, DMA_BIDIRECTIONAL);
    dma_sync_single_range_for_cpu(dev, h, 256, 256, DMA_BIDIRECTIONAL);
    dma_sync_single_for_device(dev, (h + 768) as dma_addr_t, 256, DMA_BIDIRECTIONAL);
    dma_unmap_single(dev, h, 1024, DMA_BIDIRECTIONAL);
    expect(kinds()).toEqual([]);
    expect(dma_debug_live()).toEqual([]);
    expect(dma_debug_device_unbind(dev)).toBe(0);
  });

  it("the same buffer mapped twice is told apart by the best fit", () => {
    const { dev, kinds } = boot();
    const buf = kmalloc(512, 0);
    const a = dma_map_single(dev, buf, 512, DMA_TO_DEVICE);
    const b = dma_map_single(dev, buf, 256, DMA_FROM_DEVICE);
    expect(a).toBe(b);
    dma_mapping_error(dev, a);
    dma_mapping_error(dev, b);
    dma_unmap_single(dev, b, 256, DMA_FROM_DEVICE);
    expect(dma_debug_live(dev)).toMatchObject([{ size: 512, direction: DMA_TO_DEVICE }]);
    dma_unmap_single(dev, a, 512, DMA_TO_DEVICE);
    expect(kinds()).toEqual([]);
  });
});

describe("ownership", () => {
  it("map and sync_for_device give the buffer to the device; sync_for_cpu gives it back", () => {
    const { dev, mapped } = boot();
    const { h } = mapped(DMA_BIDIRECTIONAL);
    const e = () => dma_debug_live(dev)[0];
    expect(e().domain).toBe("DEVICE");
    dma_sync_single_for_cpu(dev, h, 512, DMA_BIDIRECTIONAL);
    expect(e().domain).toBe("CPU");
    dma_sync_single_for_device(dev, h, 512, DMA_BIDIRECTIONAL);
    expect(e().domain).toBe("DEVICE");
    expect(e().history.map((x) => x.op)).toEqual(["dma_map_single", "dma_mapping_error", "dma_sync_single_for_cpu", "dma_sync_single_for_device"]);
    expect(e()).toMatchObject({ owner: "testdrv", type: "single", map_err_checked: true, size: 512 });
  });

  it("coherent allocations are shared", () => {
    const { dev } = boot();
    dma_alloc_coherent(dev, 64, dma_addr_holder(), GFP_KERNEL);
    expect(dma_debug_live(dev)[0]).toMatchObject({ type: "coherent", domain: "COHERENT", direction: DMA_BIDIRECTIONAL });
  });
});

describe("each misuse produces exactly its finding", () => {
  it("unmap-not-mapped: an address never mapped", () => {
    const { k, dev, kinds } = boot();
    dma_unmap_single(dev, 0x123000 as dma_addr_t, 64, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
    const f = k.findings.list[0];
    expect(f.message).toBe("DMA-API: testdrv 0000:00:03.0: device driver tries to free DMA memory it has not allocated [device address=0x0000000000123000] [size=64 bytes]");
    expect(f).toMatchObject({ severity: "error", driver: "testdrv", device: "0000:00:03.0" });
    expect(f.fix).toMatch(/\.$/);
    expect(k.printk.dmesg().some((l) => l.includes("DMA-API: testdrv 0000:00:03.0: device driver tries to free"))).toBe(true);
  });

  it("unmap-not-mapped: a double unmap, with the history of the first mapping", () => {
    const { k, dev, kinds, mapped } = boot();
    const { h } = mapped();
    dma_unmap_single(dev, h, 512, DMA_FROM_DEVICE);
    dma_unmap_single(dev, h, 512, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
    expect(k.findings.list[0].details).toMatchObject({ double_unmap: true });
    expect(k.findings.list[0].history!.map((x) => x.op)).toEqual(["dma_map_single", "dma_mapping_error", "dma_unmap_single"]);
  });

  it("unmap-not-mapped: unmapping the error cookie", () => {
    const { k, dev, kinds } = boot();
    dma_unmap_single(dev, DMA_MAPPING_ERROR, 64, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
    expect(k.findings.list[0].message).toContain("tries to free an invalid DMA memory address");
  });

  it("unmap-not-mapped: unmapping on another device", () => {
    const { dev, kinds, mapped } = boot();
    const { h } = mapped();
    const other = new device("0000:00:04.0", "pci");
    dma_unmap_single(other, h, 512, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
    expect(dma_debug_live(dev)).toHaveLength(1);
  });

  it("unmap-wrong-size", () => {
    const { k, dev, kinds, mapped } = boot();
    const { h } = mapped();
    dma_unmap_single(dev, h, 256, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-size"]);
    expect(k.findings.list[0].message).toContain("[map size=512 bytes] [unmap size=256 bytes]");
    expect(dma_debug_live()).toEqual([]); // the entry is dropped, as in Linux
  });

  it("unmap-wrong-direction", () => {
    const { k, dev, kinds, mapped } = boot();
    const { h } = mapped(DMA_FROM_DEVICE);
    dma_unmap_single(dev, h, 512, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-direction"]);
    expect(k.findings.list[0].message).toContain("[mapped with DMA_FROM_DEVICE] [unmapped with DMA_TO_DEVICE]");
  });

  it("unmap-wrong-type: map_single undone with unmap_page, and the reverse", () => {
    const { k, dev, kinds, mapped } = boot();
    const { h } = mapped();
    dma_unmap_page(dev, h, 512, DMA_FROM_DEVICE);
    const buf = kmalloc(512, 0);
    const p = dma_map_page(dev, { pfn: Math.floor(virt_to_phys(buf) / PAGE_SIZE) }, virt_to_phys(buf) % PAGE_SIZE, 512, DMA_TO_DEVICE);
    dma_mapping_error(dev, p);
    dma_unmap_single(dev, p, 512, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-type", "unmap-wrong-type"]);
    expect(k.findings.list[0].message).toContain("[mapped as single] [unmapped as page]");
  });

  it("unmap-wrong-type: a coherent allocation unmapped as a streaming mapping (nothing is freed)", () => {
    const { dev, kinds } = boot();
    const h = dma_addr_holder();
    dma_alloc_coherent(dev, 4096, h, GFP_KERNEL);
    dma_unmap_single(dev, h.value, 4096, DMA_BIDIRECTIONAL);
    expect(kinds()).toEqual(["unmap-wrong-type"]);
  });

  it("mapping-error-not-checked, reported once, at the first sync or the unmap", () => {
    const { k, dev, kinds } = boot();
    const buf = kmalloc(512, 0);
    const h = dma_map_single(dev, buf, 512, DMA_FROM_DEVICE);
    dma_unmap_single(dev, h, 512, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["mapping-error-not-checked"]);
    expect(k.findings.list[0].message).toContain("device driver failed to check map error");
    const h2 = dma_map_single(dev, buf, 512, DMA_FROM_DEVICE);
    dma_sync_single_for_cpu(dev, h2, 512, DMA_FROM_DEVICE);
    dma_sync_single_for_device(dev, h2, 512, DMA_FROM_DEVICE);
    dma_unmap_single(dev, h2, 512, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["mapping-error-not-checked", "mapping-error-not-checked"]);
  });

  it("sync-not-mapped", () => {
    const { k, dev, kinds, mapped } = boot();
    const { h } = mapped();
    dma_sync_single_for_cpu(dev, (h + 4096) as dma_addr_t, 64, DMA_FROM_DEVICE);
    dma_unmap_single(dev, h, 512, DMA_FROM_DEVICE);
    dma_sync_single_for_device(dev, h, 64, DMA_FROM_DEVICE); // after unmap
    expect(kinds()).toEqual(["sync-not-mapped", "sync-not-mapped"]);
    expect(k.findings.list[0].message).toContain("device driver tries to sync DMA memory it has not allocated");
  });

  it("sync-out-of-range", () => {
    const { k, dev, kinds, mapped } = boot();
    const { h } = mapped();
    dma_sync_single_range_for_cpu(dev, h, 448, 128, DMA_FROM_DEVICE);
    dma_sync_single_for_cpu(dev, h, 1024, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["sync-out-of-range", "sync-out-of-range"]);
    expect(k.findings.list[0].message).toContain("[allocation size=512 bytes] [sync offset+size=576]");
  });

  it("sync-wrong-direction: a different direction, and read-only memory synced for the CPU as written", () => {
    const { k, dev, kinds, mapped } = boot();
    const rx = mapped(DMA_FROM_DEVICE);
    dma_sync_single_for_cpu(dev, rx.h, 512, DMA_BIDIRECTIONAL);
    expect(kinds()).toEqual(["sync-wrong-direction"]);
    const tx = mapped(DMA_TO_DEVICE);
    dma_sync_single_for_cpu(dev, tx.h, 512, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["sync-wrong-direction", "sync-wrong-direction", "sync-wrong-direction"]);
    expect(k.findings.list[2].message).toContain("syncs device read-only DMA memory for cpu");
  });

  it("a BIDIRECTIONAL mapping accepts any sync direction", () => {
    const { dev, kinds, mapped } = boot();
    const { h } = mapped(DMA_BIDIRECTIONAL);
    dma_sync_single_for_cpu(dev, h, 512, DMA_FROM_DEVICE);
    dma_sync_single_for_device(dev, h, 512, DMA_TO_DEVICE);
    expect(kinds()).toEqual([]);
  });

  it("mapping-leak: one per live mapping at unbind, reported once", () => {
    const { k, dev, kinds, mapped } = boot();
    mapped(DMA_FROM_DEVICE);
    mapped(DMA_TO_DEVICE, 128);
    dma_alloc_coherent(dev, 4096, dma_addr_holder(), GFP_KERNEL);
    expect(dma_debug_device_unbind(dev)).toBe(3);
    expect(kinds()).toEqual(["mapping-leak", "mapping-leak", "mapping-leak"]);
    expect(k.findings.list[0].message).toContain("device driver has pending DMA allocations while released from device [count=3]");
    expect(k.findings.list.map((f) => f.details!.type).sort()).toEqual(["coherent", "single", "single"]);
    expect(dma_debug_device_unbind(dev)).toBe(0);
    expect(dma_debug_live(dev)).toHaveLength(3); // still leaked
  });

  it("only the unbound device's leaks are reported", () => {
    const { dev, kinds, mapped } = boot();
    mapped();
    const other = new device("0000:00:04.0", "pci");
    expect(dma_debug_device_unbind(other)).toBe(0);
    expect(kinds()).toEqual([]);
    expect(dma_debug_live(other)).toEqual([]);
    expect(dma_debug_live(dev)).toHaveLength(1);
  });

  it("a correct coherent free and a NULL free leave no finding", () => {
    const { dev, kinds } = boot();
    const h = dma_addr_holder();
    const va = dma_alloc_coherent(dev, 4096, h, GFP_KERNEL);
    dma_free_coherent(dev, 4096, 0, h.value);
    dma_free_coherent(dev, 4096, va, h.value);
    expect(kinds()).toEqual([]);
  });
});

describe("with the driver core", () => {
  async function bindAndUnbind(leakStreaming: boolean) {
    const { k } = boot();
    const p = platform_device_register_simple("dmatest", []);
    if (IS_ERR(p)) throw new Error("register failed");
    let handle = 0 as dma_addr_t;
    const drv: platform_driver = {
      driver: { name: "dmatest" },
      probe(pdev) {
        const buf = devm_kzalloc(pdev.dev, 512, GFP_KERNEL);
        handle = dma_map_single(pdev.dev, buf, 512, DMA_FROM_DEVICE);
        if (dma_mapping_error(pdev.dev, handle)) return -12;
        const h = dma_addr_holder();
        return dmam_alloc_coherent(pdev.dev, 4096, h, GFP_KERNEL) ? 0 : -12; // released by devres
      },
      remove(pdev) {
        if (!leakStreaming) dma_unmap_single(pdev.dev, handle, 512, DMA_FROM_DEVICE);
      },
    };
    void platform_driver_register(drv);
    await wait_for_device_probe();
    expect(dma_debug_live(p.dev)).toHaveLength(2);
    void device_release_driver(p.dev);
    await wait_for_device_probe();
    return { k, dev: p.dev };
  }

  it("a clean remove() plus devres leaves nothing live and no finding", async () => {
    const { k, dev } = await bindAndUnbind(false);
    expect(dma_debug_live(dev)).toEqual([]);
    expect(k.findings.list.map((f) => f.kind)).toEqual([]);
  });

  it("a mapping left at unbind is reported as mapping-leak, blamed on the driver (dmam memory is not)", async () => {
    const { k, dev } = await bindAndUnbind(true);
    expect(k.findings.list.map((f) => f.kind)).toEqual(["mapping-leak"]);
    expect(k.findings.list[0]).toMatchObject({ driver: "dmatest", device: dev.name });
    expect(k.findings.list[0].details).toMatchObject({ type: "single", direction: "DMA_FROM_DEVICE", size: 512 });
  });
});

describe("dump", () => {
  it("prints one line per live mapping", () => {
    const { k, mapped } = boot();
    mapped();
    debug_dma_dump_mappings();
    const lines = k.printk.dmesg().filter((l) => l.includes("DMA-API: testdrv 0000:00:03.0: single idx 0"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("DMA_FROM_DEVICE DEVICE checked");
  });
});

describe("DmaDebugTable", () => {
  const dev = new device("d", "pci");
  const entry = (dev_addr: number, size: number, direction: 0 | 1 | 2 = 1): dma_debug_entry => ({
    dev, type: "single", dev_addr, phys: dev_addr, cpu_addr: dev_addr, size, direction, attrs: 0, owner: "",
    timeNs: 0, map_err_checked: true, map_err_reported: false, domain: "DEVICE", leak_reported: false, history: [],
  });

  it("finds the mapping containing an address, even behind a later-starting small one", () => {
    const t = new DmaDebugTable();
    const big = entry(0x1000, 0x10000);
    const small = entry(0x2000, 0x40);
    t.add(big);
    t.add(small);
    expect(t.findContaining(dev, 0x2010, 0x10, 1)).toBe(small);
    expect(t.findContaining(dev, 0x3000, 0x10, 1)).toBe(big);
    expect(t.findContaining(dev, 0x800, 0x10, 1)).toBeNull();
    expect(t.findContaining(dev, 0x11000, 0x10, 1)).toBeNull();
  });

  it("keeps addresses sorted through adds and removes", () => {
    const t = new DmaDebugTable();
    const es = [0x5000, 0x1000, 0x3000, 0x2000, 0x4000].map((a) => entry(a, 0x100));
    es.forEach((e) => t.add(e));
    expect(t.live().map((e) => e.dev_addr)).toEqual([0x1000, 0x2000, 0x3000, 0x4000, 0x5000]);
    t.remove(es[2]);
    t.remove(es[0]);
    expect(t.live().map((e) => e.dev_addr)).toEqual([0x1000, 0x2000, 0x4000]);
    expect(t.count(dev)).toBe(3);
    expect(t.findContaining(dev, 0x3050, 1, 1)).toBeNull();
    expect(t.lastRemoved(dev, 0x3000)).toBe(es[2]);
  });

  it("returns null for several imperfect candidates at one address (ambiguous)", () => {
    const t = new DmaDebugTable();
    t.add(entry(0x1000, 0x100, 1));
    t.add(entry(0x1000, 0x200, 2));
    expect(t.findExact(dev, 0x1000, { type: "single", size: 0x300, direction: 0 })).toBeNull();
    expect(t.findExact(dev, 0x1000, { type: "single", size: 0x200, direction: 2 })!.size).toBe(0x200);
  });
});
