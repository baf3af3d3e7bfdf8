import { describe, expect, it } from "vitest";
import { iommuRig } from "./iommu-dma-rig.ts";
import { GFP_KERNEL, PAGE_SIZE } from "../../../../kernel/include/types.ts";
import { __get_free_pages, free_pages, kfree, kmalloc, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import { kread8, memset } from "../../../../kernel/mm/access.ts";
import { sg_array, sg_init_table, sg_set_buf } from "../../../../kernel/lib/scatterlist.ts";
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_sg, dma_set_max_seg_size, dma_sync_sg_for_cpu, dma_unmap_sg } from "../../../../kernel/include/dma-mapping.ts";
import { SG_DMA_POISON } from "../../../../kernel/dma/mapping-sg.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { dma_state } from "../../../../kernel/dma/state.ts";

/** @n separate (non-contiguous) pages, each filled with its index + 1. */
function pages(n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const va = __get_free_pages(GFP_KERNEL, 0);
    __get_free_pages(GFP_KERNEL, 0); // a gap, so the pages are not physically contiguous
    memset(va, i + 1, PAGE_SIZE);
    out.push(va);
  }
  return out;
}

describe("dma_map_sg through the IOMMU", () => {
  it("merges page-aligned entries into one contiguous IOVA segment that reaches every page", () => {
    const { dev, read } = iommuRig("arm64-iommu");
    dma_set_max_seg_size(dev, 1 << 20);
    const ps = pages(4);
    const sgl = sg_array(4);
    sg_init_table(sgl, 4);
    ps.forEach((va, i) => sg_set_buf(sgl[i], va, PAGE_SIZE));
    const n = dma_map_sg(dev, sgl, 4, DMA_TO_DEVICE);
    expect(n).toBe(1);
    expect(sgl[0].dma_length).toBe(4 * PAGE_SIZE);
    expect(sgl[1].dma_address).toBe(SG_DMA_POISON);
    const all = read(sgl[0].dma_address, 4 * PAGE_SIZE)!;
    for (let i = 0; i < 4; i++) expect(all[i * PAGE_SIZE + 5]).toBe(i + 1);
    dma_unmap_sg(dev, sgl, 4, DMA_TO_DEVICE);
    expect(read(sgl[0].dma_address, 4)).toBeNull();
    expect(dma_debug_live()).toEqual([]);
  });

  it("respects max_segment_size and does not merge entries that do not meet on a granule", () => {
    const { dev } = iommuRig("arm64-iommu");
    dma_set_max_seg_size(dev, 2 * PAGE_SIZE);
    const ps = pages(4);
    const sgl = sg_array(4);
    sg_init_table(sgl, 4);
    ps.forEach((va, i) => sg_set_buf(sgl[i], va, PAGE_SIZE));
    expect(dma_map_sg(dev, sgl, 4, DMA_TO_DEVICE)).toBe(2);
    expect(sgl[0].dma_length).toBe(2 * PAGE_SIZE);
    expect(sgl[1].dma_address).toBe(sgl[0].dma_address + 2 * PAGE_SIZE);
    dma_unmap_sg(dev, sgl, 4, DMA_TO_DEVICE);

    const a = kmalloc(100, GFP_KERNEL);
    const b = kmalloc(100, GFP_KERNEL);
    const t = sg_array(2);
    sg_init_table(t, 2);
    sg_set_buf(t[0], a, 100);
    sg_set_buf(t[1], b, 100);
    expect(dma_map_sg(dev, t, 2, DMA_TO_DEVICE)).toBe(2);
    dma_unmap_sg(dev, t, 2, DMA_TO_DEVICE);
    kfree(a);
    kfree(b);
    expect(dma_debug_live()).toEqual([]);
  });

  it("FROM_DEVICE: the device fills the merged segment, the CPU sees every page after sync, no findings", () => {
    const { kernel, dev, write } = iommuRig("arm64-iommu");
    dma_set_max_seg_size(dev, 1 << 20);
    const ps = pages(3);
    const sgl = sg_array(3);
    sg_init_table(sgl, 3);
    ps.forEach((va, i) => sg_set_buf(sgl[i], va, PAGE_SIZE));
    // the CPU caches the old contents first, as a driver's earlier reads would
    for (const va of ps) kread8(va);
    expect(dma_map_sg(dev, sgl, 3, DMA_FROM_DEVICE)).toBe(1);
    expect(write(sgl[0].dma_address, new Uint8Array(3 * PAGE_SIZE).fill(0x77))).toBe(true);
    dma_sync_sg_for_cpu(dev, sgl, 3, DMA_FROM_DEVICE);
    for (const va of ps) expect(kread8(va + 100)).toBe(0x77);
    dma_unmap_sg(dev, sgl, 3, DMA_FROM_DEVICE);
    expect(kernel.findings.list.filter((f) => f.kind !== "warn")).toEqual([]);
    for (const va of ps) free_pages(va, 0);
  });
});

describe("dma_map_sg with the IOMMU in passthrough", () => {
  it("takes the direct path: bus address = physical, one segment per entry, recorded as a run and unmapped whole, no finding", () => {
    const { kernel, dev, read } = iommuRig("x86-iommu", (d) => (d.iommu!.policy = "passthrough"));
    const ps = pages(3);
    const sgl = sg_array(3);
    sg_init_table(sgl, 3);
    ps.forEach((va, i) => sg_set_buf(sgl[i], va, PAGE_SIZE));
    for (let round = 0; round < 2; round++) {
      // the first map hooks driver unbind the ordinary way; the second is kept as a run
      expect(dma_map_sg(dev, sgl, 3, DMA_TO_DEVICE)).toBe(3);
      expect(dma_state(kernel).table.pending).toBe(round);
      for (let i = 0; i < 3; i++) {
        expect(sgl[i].dma_address).toBe(virt_to_phys(ps[i]));
        expect(read(sgl[i].dma_address, PAGE_SIZE)![7]).toBe(i + 1);
      }
      dma_unmap_sg(dev, sgl, 3, DMA_TO_DEVICE);
    }
    expect(dma_debug_live()).toEqual([]);
    expect(kernel.findings.list).toEqual([]);
  });
});
