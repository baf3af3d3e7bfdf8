/** dma-debug's memory-area checks (§7.2 rows 1-2) and the entry-pool growth log (row 23). */
import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { DMA_TO_DEVICE, dma_map_page, dma_map_single, dma_mapping_error, dma_unmap_page, dma_unmap_single } from "../../../../kernel/include/dma-mapping.ts";
import { vmalloc_to_page } from "../../../../kernel/include/scatterlist.ts";
import { with_stack_buffer } from "../../../../kernel/include/stack.ts";
import { dma_debug_in_kernel_image, dma_debug_on_stack } from "../../../../kernel/dma/debug-areas.ts";
import { DMA_DEBUG_ENTRIES, dma_debug_count_entries } from "../../../../kernel/dma/debug-knobs.ts";
import { PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";
import { PAGE_SIZE } from "../../../../kernel/include/types.ts";

function boot() {
  const { kernel: k } = bareKernel("arm64-noncoherent");
  const dev = new device("0000:00:03.0", "pci");
  dev.driver = { name: "testdrv" };
  const kinds = () => k.findings.list.map((f) => f.kind);
  return { k, dev, kinds };
}

describe("kernel text and rodata", () => {
  it("the reserved kernel image is where the page allocator never hands out memory", () => {
    const { k } = boot();
    expect(dma_debug_in_kernel_image(k, 0x1000, 16)).toBe(true);
    expect(dma_debug_in_kernel_image(k, (1 << 20) - 8, 64)).toBe(true);
    expect(dma_debug_in_kernel_image(k, 1 << 20, 64)).toBe(false);
  });

  it("dma_map_single of a pointer into the kernel image: mapped, and reported", () => {
    const { dev, kinds, k } = boot();
    const h = dma_map_single(dev, PAGE_OFFSET + 0x2000, 64, DMA_TO_DEVICE);
    expect(dma_mapping_error(dev, h)).toBe(0);
    dma_unmap_single(dev, h, 64, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["map-invalid-memory"]);
    expect(k.findings.list[0].message).toContain("maps memory from kernel text or rodata");
  });
});

describe("stack pages reaching the DMA API as pages", () => {
  it("dma_map_page of a stack page is map-stack-memory", () => {
    const { k, dev, kinds } = boot();
    with_stack_buffer(128, (buf) => {
      const pg = vmalloc_to_page(buf)!;
      expect(dma_debug_on_stack(k, pg.pfn * PAGE_SIZE, 128)).toBe(true);
      const h = dma_map_page(dev, pg, 0, 128, DMA_TO_DEVICE);
      dma_mapping_error(dev, h);
      dma_unmap_page(dev, h, 128, DMA_TO_DEVICE);
    });
    expect(kinds()).toEqual(["map-stack-memory"]);
  });

  it("dma_map_single of a stack address is reported once (by the address check)", () => {
    const { dev, kinds } = boot();
    with_stack_buffer(128, (buf) => {
      const h = dma_map_single(dev, buf, 128, DMA_TO_DEVICE);
      dma_mapping_error(dev, h);
      dma_unmap_single(dev, h, 128, DMA_TO_DEVICE);
    });
    expect(kinds()).toEqual(["map-stack-memory"]);
  });
});

describe("dma_debug_entry pool grown", () => {
  it("logs each step past the preallocation, as Linux does for a long leak", () => {
    const { k } = boot();
    dma_debug_count_entries(k, DMA_DEBUG_ENTRIES);
    dma_debug_count_entries(k, DMA_DEBUG_ENTRIES + 1);
    dma_debug_count_entries(k, DMA_DEBUG_ENTRIES + 2);
    dma_debug_count_entries(k, 2 * DMA_DEBUG_ENTRIES + 1);
    expect(k.printk.dmesg().filter((l) => l.includes("dma_debug_entry pool grown to"))).toEqual([
      expect.stringContaining("DMA-API: dma_debug_entry pool grown to 131072 (200%)"),
      expect.stringContaining("DMA-API: dma_debug_entry pool grown to 196608 (300%)"),
    ]);
  });
});
