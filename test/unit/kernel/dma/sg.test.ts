/** dma_map_sg and friends on the direct path: what gets mapped, cache maintenance, failures. */
import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import {
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_NONE,
  DMA_TO_DEVICE,
  dma_map_sg,
  dma_map_sg_attrs,
  dma_map_sgtable,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_sync_sgtable_for_cpu,
  dma_sync_sgtable_for_device,
  dma_unmap_sg,
  dma_unmap_sg_attrs,
  dma_unmap_sgtable,
  sg_dma_address,
  sg_dma_len,
} from "../../../../kernel/include/dma-mapping.ts";
import {
  for_each_sgtable_dma_sg,
  sg_alloc_table,
  sg_array,
  sg_copy_from_buffer,
  sg_copy_to_buffer,
  sg_init_table,
  sg_set_buf,
  sg_set_page,
  sg_table,
  type scatterlist,
} from "../../../../kernel/include/scatterlist.ts";
import { SG_DMA_POISON } from "../../../../kernel/dma/mapping-sg.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { dma_stats } from "../../../../kernel/dma/state.ts";
import { kmalloc, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import { EINVAL } from "../../../../kernel/include/errno.ts";
import { GFP_KERNEL, PAGE_SIZE } from "../../../../kernel/include/types.ts";
import type { dma_data_direction } from "../../../../kernel/include/dma-mapping.ts";

function boot(profile: "arm64-noncoherent" | "x86-coherent" = "arm64-noncoherent") {
  const { kernel: k, board } = bareKernel(profile);
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = profile === "x86-coherent";
  dev.driver = { name: "testdrv" };
  const kinds = () => k.findings.list.map((f) => f.kind);
  /** A list over kmalloc buffers of the given sizes. */
  const list = (...sizes: number[]) => {
    const sg = sg_array(sizes.length);
    sg_init_table(sg, sizes.length);
    const bufs = sizes.map((n, i) => {
      const b = kmalloc(n, 0);
      sg_set_buf(sg[i], b, n);
      return b;
    });
    return { sg, bufs };
  };
  return { k, board, dev, kinds, list, coherent: profile === "x86-coherent" };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

describe("dma_map_sg on the direct path", () => {
  it("maps every entry, bus address = physical, never merging (count = nents)", () => {
    const { dev, kinds, list } = boot();
    const { sg, bufs } = list(512, 1024, 256);
    expect(dma_map_sg(dev, sg, 3, DMA_TO_DEVICE)).toBe(3);
    sg.forEach((s, i) => {
      expect(sg_dma_address(s)).toBe(virt_to_phys(bufs[i]));
      expect(sg_dma_len(s)).toBe(s.length);
    });
    const live = dma_debug_live(dev);
    expect(live.map((e) => e.size).sort((a, b) => a - b)).toEqual([256, 512, 1024]);
    expect(live.every((e) => e.type === "sg" && e.sg_call_ents === 3 && e.sg_mapped_ents === 3 && e.domain === "DEVICE")).toBe(true);
    dma_unmap_sg(dev, sg, 3, DMA_TO_DEVICE);
    expect(dma_debug_live()).toEqual([]);
    expect(kinds()).toEqual([]);
  });

  it("does not merge physically adjacent entries either", () => {
    const { dev, list } = boot();
    const { sg } = list(PAGE_SIZE, PAGE_SIZE);
    sg_set_page(sg[1], { pfn: sg[0].page!.pfn + 1 }, PAGE_SIZE, 0);
    expect(dma_map_sg(dev, sg, 2, DMA_BIDIRECTIONAL)).toBe(2);
    expect(sg_dma_address(sg[1]) - sg_dma_address(sg[0])).toBe(PAGE_SIZE);
    dma_unmap_sg(dev, sg, 2, DMA_BIDIRECTIONAL);
  });

  it("cleans each segment's lines on a non-coherent device, nothing on a coherent one", () => {
    const a = boot("arm64-noncoherent");
    const sa = a.list(512, 256).sg;
    const before = dma_stats(a.k).lines_cleaned;
    dma_map_sg(a.dev, sa, 2, DMA_TO_DEVICE);
    expect(dma_stats(a.k).lines_cleaned - before).toBe((512 + 256) / 64);
    dma_unmap_sg(a.dev, sa, 2, DMA_TO_DEVICE);
    const x = boot("x86-coherent");
    const sx = x.list(512, 256).sg;
    dma_map_sg(x.dev, sx, 2, DMA_TO_DEVICE);
    dma_unmap_sg(x.dev, sx, 2, DMA_TO_DEVICE);
    expect(dma_stats(x.k).cache_ops).toBe(0);
  });

  it("DMA_ATTR_SKIP_CPU_SYNC skips the maintenance on map and unmap", () => {
    const { k, dev, list } = boot();
    const { sg } = list(512, 512);
    dma_map_sg_attrs(dev, sg, 2, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    dma_unmap_sg_attrs(dev, sg, 2, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    expect(dma_stats(k).cache_ops).toBe(0);
  });

  it("maps a 300-entry chained table", () => {
    const { dev, kinds } = boot();
    const t = new sg_table();
    sg_alloc_table(t, 300, GFP_KERNEL);
    const base = Math.floor(virt_to_phys(kmalloc(300 * 256, 0)) / PAGE_SIZE);
    let i = 0;
    for (const [s] of for_each_sgtable_dma_sg(t)) sg_set_page(s, { pfn: base }, 256, (i++ % 16) * 256);
    expect(dma_map_sgtable(dev, t, DMA_TO_DEVICE, 0)).toBe(0);
    expect(t.nents).toBe(300);
    expect(dma_debug_live(dev)).toHaveLength(300);
    dma_unmap_sgtable(dev, t, DMA_TO_DEVICE, 0);
    expect(dma_debug_live(dev)).toHaveLength(0);
    expect(kinds()).toEqual([]);
  });
});

describe("data through sg mappings", () => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"] as const) {
    it(`the device reads what the CPU wrote and the CPU reads what the device wrote (${profile})`, () => {
      const { board, dev, kinds, list, coherent } = boot(profile);
      const tx = list(300, 700, 100).sg;
      sg_copy_from_buffer(tx, 3, bytes(1100, 1), 1100);
      expect(dma_map_sg(dev, tx, 3, DMA_TO_DEVICE)).toBe(3);
      const seen = new Uint8Array(1100);
      let off = 0;
      for (const s of tx) {
        board.mem.deviceRead(sg_dma_address(s), seen, off, sg_dma_len(s), coherent);
        off += sg_dma_len(s);
      }
      expect(seen).toEqual(bytes(1100, 1));
      dma_unmap_sg(dev, tx, 3, DMA_TO_DEVICE);

      const rx = list(500, 600).sg;
      sg_copy_from_buffer(rx, 2, new Uint8Array(1100), 1100); // the CPU's lines are now cached
      expect(dma_map_sg(dev, rx, 2, DMA_FROM_DEVICE)).toBe(2);
      board.mem.deviceWrite(sg_dma_address(rx[0]), bytes(1100, 9), 0, 500, coherent);
      board.mem.deviceWrite(sg_dma_address(rx[1]), bytes(1100, 9), 500, 600, coherent);
      dma_sync_sg_for_cpu(dev, rx, 2, DMA_FROM_DEVICE);
      const got = new Uint8Array(1100);
      sg_copy_to_buffer(rx, 2, got, 1100);
      expect(got).toEqual(bytes(1100, 9));
      dma_sync_sg_for_device(dev, rx, 2, DMA_FROM_DEVICE);
      dma_unmap_sg(dev, rx, 2, DMA_FROM_DEVICE);
      expect(kinds()).toEqual([]);
    });
  }

  it("without dma_sync_sg_for_cpu the CPU reads stale cached bytes on arm64", () => {
    const { board, dev, list } = boot("arm64-noncoherent");
    const rx = list(512).sg;
    sg_copy_from_buffer(rx, 1, new Uint8Array(512), 512);
    dma_map_sg(dev, rx, 1, DMA_FROM_DEVICE);
    board.mem.deviceWrite(sg_dma_address(rx[0]), bytes(512, 3), 0, 512, false);
    const got = new Uint8Array(512);
    sg_copy_to_buffer(rx, 1, got, 512); // the bug: read before sync
    expect(got.every((b) => b === 0)).toBe(true);
    dma_unmap_sg(dev, rx, 1, DMA_FROM_DEVICE);
  });

  it("the sgtable sync helpers use orig_nents", () => {
    const { dev, kinds, list } = boot();
    const t = new sg_table();
    sg_alloc_table(t, 2, GFP_KERNEL);
    const { bufs } = list(256, 256);
    sg_set_buf(t.sgl!, bufs[0], 256);
    sg_set_buf(t.sgl!.array[1], bufs[1], 256);
    expect(dma_map_sgtable(dev, t, DMA_BIDIRECTIONAL)).toBe(0);
    dma_sync_sgtable_for_cpu(dev, t, DMA_BIDIRECTIONAL);
    expect(dma_debug_live(dev).map((e) => e.domain)).toEqual(["CPU", "CPU"]);
    dma_sync_sgtable_for_device(dev, t, DMA_BIDIRECTIONAL);
    expect(dma_debug_live(dev).map((e) => e.domain)).toEqual(["DEVICE", "DEVICE"]);
    dma_unmap_sgtable(dev, t, DMA_BIDIRECTIONAL);
    expect(kinds()).toEqual([]);
  });
});

describe("failures", () => {
  it("an unmappable entry part way: 0, what was mapped is unmapped, every entry poisoned", () => {
    const { k, dev, kinds, list } = boot();
    const { sg } = list(256, 256, 256);
    sg[1].page = null;
    const cleaned = dma_stats(k).lines_invalidated;
    expect(dma_map_sg(dev, sg, 3, DMA_FROM_DEVICE)).toBe(0);
    expect(kinds()).toEqual(["map-invalid-memory"]);
    expect(dma_debug_live()).toEqual([]);
    expect(dma_stats(k).lines_invalidated).toBe(cleaned); // undone without cache maintenance
    expect(sg.map((s: scatterlist) => [s.dma_address, s.dma_length])).toEqual([0, 1, 2].map(() => [SG_DMA_POISON, 0]));
    expect(dma_stats(k).map_errors).toBe(1);
  });

  it("dma_map_sgtable returns -EINVAL and leaves nents alone", () => {
    const { dev, list } = boot();
    const t = new sg_table();
    sg_alloc_table(t, 1, GFP_KERNEL);
    expect(dma_map_sgtable(dev, t, DMA_TO_DEVICE)).toBe(-EINVAL);
    expect(t.nents).toBe(1);
    expect(dma_map_sgtable(dev, new sg_table(), DMA_TO_DEVICE)).toBe(-EINVAL);
    void list;
  });

  it("nents <= 0 returns 0 with a WARN", () => {
    const { dev, kinds, list } = boot();
    expect(dma_map_sg(dev, list(64).sg, 0, DMA_TO_DEVICE)).toBe(0);
    expect(kinds()).toEqual(["warn"]);
  });

  it("DMA_NONE, or nents longer than the list, is a BUG (Linux oopses)", () => {
    const { dev, list } = boot();
    const { sg } = list(64, 64);
    expect(() => dma_map_sg(dev, sg, 2, DMA_NONE as dma_data_direction)).toThrow(/invalid direction/);
    expect(() => dma_map_sg(dev, sg, 3, DMA_TO_DEVICE)).toThrow(/longer than the list/);
  });
});
