/**
 * dma-debug's deferred sg runs (DmaDebugTable.addRun): a DMA_TO_DEVICE dma_map_sg on the
 * direct path is recorded whole and settled into the table only when something looks. Whatever
 * happens first, the table must answer as if every segment had been added one by one.
 */
import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { DMA_TO_DEVICE, dma_map_sg, dma_sync_sg_for_cpu, dma_sync_sg_for_device, dma_unmap_sg } from "../../../../kernel/include/dma-mapping.ts";
import { sg_array, sg_init_table, sg_set_page, type scatterlist } from "../../../../kernel/include/scatterlist.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { dma_state } from "../../../../kernel/dma/state.ts";
import { PAGE_SIZE } from "../../../../kernel/include/types.ts";

function boot() {
  const { kernel: k } = bareKernel("arm64-noncoherent");
  const dev = new device("0000:00:03.0", "pci");
  dev.driver = { name: "testdrv" };
  const kinds = () => k.findings.list.map((f) => f.kind);
  const list = (pages: number[]): scatterlist[] => {
    const sg = sg_array(pages.length);
    sg_init_table(sg, pages.length);
    pages.forEach((p, i) => sg_set_page(sg[i], { pfn: p / PAGE_SIZE }, PAGE_SIZE, 0));
    return sg;
  };
  const pages = (n: number) => Array.from({ length: n }, () => k.pages.alloc(0, 0));
  // the first map of a kernel hooks driver unbind the ordinary way: warm up
  const warm = list(pages(1));
  dma_map_sg(dev, warm, 1, DMA_TO_DEVICE);
  dma_unmap_sg(dev, warm, 1, DMA_TO_DEVICE);
  return { k, dev, kinds, list, pages };
}

describe("deferred sg runs", () => {
  it("are live, in order, owned by the device, before anything settles them", () => {
    const { k, dev, kinds, list, pages } = boot();
    const ps = pages(3);
    const sg = list(ps);
    expect(dma_map_sg(dev, sg, 3, DMA_TO_DEVICE)).toBe(3);
    expect(dma_state(k).table.pending).toBe(1);
    const live = dma_debug_live(dev);
    expect(live.map((e) => e.phys)).toEqual([...ps].sort((a, b) => a - b));
    expect(live.every((e) => e.domain === "DEVICE" && e.type === "sg")).toBe(true);
    dma_unmap_sg(dev, sg, 3, DMA_TO_DEVICE);
    expect(dma_debug_live(dev)).toEqual([]);
    expect(kinds()).toEqual([]);
  });

  it("a double unmap after the fast unmap is one unmap-not-mapped naming the earlier unmap", () => {
    const { dev, kinds, list, pages, k } = boot();
    const sg = list(pages(3));
    for (let round = 0; round < 3; round++) {
      dma_map_sg(dev, sg, 3, DMA_TO_DEVICE);
      dma_unmap_sg(dev, sg, 3, DMA_TO_DEVICE);
    }
    expect(kinds()).toEqual([]);
    dma_unmap_sg(dev, sg, 3, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
    const f = k.findings.list[0];
    expect(f.details?.double_unmap).toBe(true);
    expect((f.history ?? []).map((h) => h.op)).toEqual(["dma_map_sg[0/3]", "dma_unmap_sg"]);
  });

  it("two runs unmapped out of order, and a list holding one page twice: no findings", () => {
    const { dev, kinds, list, pages } = boot();
    const a = list(pages(4));
    const b = list(pages(2));
    dma_map_sg(dev, a, 4, DMA_TO_DEVICE);
    dma_map_sg(dev, b, 2, DMA_TO_DEVICE);
    dma_unmap_sg(dev, a, 4, DMA_TO_DEVICE);
    dma_unmap_sg(dev, b, 2, DMA_TO_DEVICE);
    const p = pages(1)[0];
    const twice = list([p, p]);
    dma_map_sg(dev, twice, 2, DMA_TO_DEVICE);
    dma_unmap_sg(dev, twice, 2, DMA_TO_DEVICE);
    expect(kinds()).toEqual([]);
    expect(dma_debug_live(dev)).toEqual([]);
  });

  it("a sync settles the run: ownership moves as with per-segment entries", () => {
    const { dev, kinds, list, pages } = boot();
    const sg = list(pages(2));
    dma_map_sg(dev, sg, 2, DMA_TO_DEVICE);
    dma_sync_sg_for_cpu(dev, sg, 2, DMA_TO_DEVICE);
    expect(dma_debug_live(dev).map((e) => e.domain)).toEqual(["CPU", "CPU"]);
    dma_sync_sg_for_device(dev, sg, 2, DMA_TO_DEVICE);
    dma_unmap_sg(dev, sg, 2, DMA_TO_DEVICE);
    expect(kinds()).toEqual([]);
    expect(dma_debug_live(dev)).toEqual([]);
  });

  it("an unmap with the wrong nents still reports it", () => {
    const { dev, kinds, list, pages } = boot();
    const sg = list(pages(3));
    dma_map_sg(dev, sg, 3, DMA_TO_DEVICE);
    dma_unmap_sg(dev, sg, 2, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-nents"]);
    expect(dma_debug_live(dev).length).toBe(1);
  });
});
