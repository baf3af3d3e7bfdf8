/** dma-debug's active-cacheline tracker: cacheline-overlap (§7.2 rows 5 and 6). */
import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import {
  DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_addr_holder,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_map_single_attrs,
  dma_mapping_error,
  dma_unmap_single,
  type dma_data_direction,
} from "../../../../kernel/include/dma-mapping.ts";
import { dma_debug_cacheline_count, dma_debug_cacheline_size } from "../../../../kernel/dma/debug-cacheline.ts";
import { kmalloc } from "../../../../kernel/mm/slab-api.ts";
import { GFP_KERNEL } from "../../../../kernel/include/types.ts";
import { PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";

function boot(profile: "arm64-noncoherent" | "x86-coherent" = "arm64-noncoherent") {
  const { kernel: k } = bareKernel(profile);
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = profile === "x86-coherent";
  dev.driver = { name: "testdrv" };
  const kinds = () => k.findings.list.map((f) => f.kind);
  const map = (va: number, size: number, dir: dma_data_direction, attrs = 0) => {
    const h = dma_map_single_attrs(dev, va, size, dir, attrs);
    dma_mapping_error(dev, h);
    return h;
  };
  return { k, dev, kinds, map };
}

describe("cacheline-overlap", () => {
  it("a buffer mapped FROM_DEVICE while it is still mapped", () => {
    const { k, dev, kinds, map } = boot();
    const buf = kmalloc(256, 0);
    const a = map(buf, 256, DMA_FROM_DEVICE);
    const b = map(buf, 256, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["cacheline-overlap"]);
    const f = k.findings.list[0];
    expect(f.message).toContain("cacheline tracking EEXIST, overlapping mappings aren't supported");
    expect(f.details).toMatchObject({ cacheline_size: 128, overlapping: 2, other_size: 256, other_direction: "DMA_FROM_DEVICE" });
    expect(f.history!.map((h) => h.op)).toEqual(["dma_map_single", "dma_mapping_error", "dma_map_single"]);
    dma_unmap_single(dev, b, 256, DMA_FROM_DEVICE);
    dma_unmap_single(dev, a, 256, DMA_FROM_DEVICE);
    expect(dma_debug_cacheline_count(k)).toBe(0);
    map(buf, 256, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["cacheline-overlap"]);
  });

  it("TO_DEVICE mappings are not tracked", () => {
    const { kinds, map } = boot();
    const buf = kmalloc(256, 0);
    map(buf, 256, DMA_TO_DEVICE);
    map(buf, 256, DMA_TO_DEVICE);
    map(buf, 256, DMA_FROM_DEVICE);
    expect(kinds()).toEqual([]);
  });

  it("keys on the first line at the DMA granule: 128 bytes on arm64, 64 on x86", () => {
    const a = boot("arm64-noncoherent");
    expect(dma_debug_cacheline_size(a.k)).toBe(128);
    const ba = kmalloc(256, 0);
    a.map(ba, 64, DMA_FROM_DEVICE);
    a.map(ba + 64, 64, DMA_FROM_DEVICE);
    expect(a.kinds()).toEqual(["cacheline-overlap"]);
    const x = boot("x86-coherent");
    expect(dma_debug_cacheline_size(x.k)).toBe(64);
    const bx = kmalloc(256, 0);
    x.map(bx, 64, DMA_FROM_DEVICE);
    x.map(bx + 64, 64, DMA_BIDIRECTIONAL);
    expect(x.kinds()).toEqual([]);
    x.map(bx + 32, 16, DMA_BIDIRECTIONAL);
    expect(x.kinds()).toEqual(["cacheline-overlap"]);
  });

  it("DMA_ATTR_SKIP_CPU_SYNC on the new mapping silences it", () => {
    const { kinds, map } = boot();
    const buf = kmalloc(256, 0);
    map(buf, 256, DMA_FROM_DEVICE);
    map(buf, 256, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    expect(kinds()).toEqual([]);
  });

  it("DMA_ATTR_DEBUGGING_IGNORE_CACHELINES silences it only when both mappings carry it", () => {
    const { kinds, map } = boot();
    const buf = kmalloc(256, 0);
    map(buf, 128, DMA_FROM_DEVICE, DMA_ATTR_DEBUGGING_IGNORE_CACHELINES);
    map(buf, 128, DMA_FROM_DEVICE, DMA_ATTR_DEBUGGING_IGNORE_CACHELINES);
    expect(kinds()).toEqual([]);
    const other = kmalloc(256, 0);
    map(other, 128, DMA_FROM_DEVICE);
    map(other, 128, DMA_FROM_DEVICE, DMA_ATTR_DEBUGGING_IGNORE_CACHELINES);
    expect(kinds()).toEqual(["cacheline-overlap"]);
  });

  it("coherent allocations are tracked too", () => {
    const { dev, kinds, map } = boot();
    const h = dma_addr_holder();
    const va = dma_alloc_coherent(dev, 4096, h, GFP_KERNEL);
    map(PAGE_OFFSET + h.value, 256, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["cacheline-overlap"]);
    dma_free_coherent(dev, 4096, va, h.value);
  });

  it("more than 7 overlaps prints Linux's one-time leak hint", () => {
    const { k, kinds, map } = boot();
    const buf = kmalloc(128, 0);
    for (let i = 0; i < 10; i++) map(buf, 128, DMA_FROM_DEVICE);
    expect(kinds().filter((x) => x === "cacheline-overlap")).toHaveLength(9);
    expect(k.printk.dmesg().filter((l) => l.includes("exceeded 7 overlapping mappings of cacheline"))).toHaveLength(1);
  });
});
