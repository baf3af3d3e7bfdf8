/** dma-debug on sg mappings: each misuse gives exactly its finding, once per call. */
import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import {
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_map_sg,
  dma_map_sg_attrs,
  dma_map_single,
  dma_mapping_error,
  dma_set_max_seg_size,
  dma_set_seg_boundary,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_unmap_sg,
  dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { sg_array, sg_init_table, sg_set_buf, sg_set_page } from "../../../../kernel/include/scatterlist.ts";
import { with_stack_buffer } from "../../../../kernel/include/stack.ts";
import { dma_debug_device_unbind, dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { kmalloc } from "../../../../kernel/mm/slab-api.ts";
import { PAGE_SIZE } from "../../../../kernel/include/types.ts";

function boot(profile: "arm64-noncoherent" | "x86-coherent" = "arm64-noncoherent") {
  const { kernel: k } = bareKernel(profile);
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = profile === "x86-coherent";
  dev.driver = { name: "testdrv" };
  const kinds = () => k.findings.list.map((f) => f.kind);
  const list = (n: number, size = 256, slots = n) => {
    const sg = sg_array(slots);
    sg_init_table(sg, slots);
    for (let i = 0; i < n; i++) sg_set_buf(sg[i], kmalloc(size, 0), size);
    return sg;
  };
  return { k, dev, kinds, list };
}

describe("correct use", () => {
  it("map, syncs both ways, unmap: no findings, nothing live, ownership follows", () => {
    const { dev, kinds, list } = boot();
    const sg = list(3);
    dma_map_sg(dev, sg, 3, DMA_BIDIRECTIONAL);
    dma_sync_sg_for_cpu(dev, sg, 3, DMA_BIDIRECTIONAL);
    expect(dma_debug_live(dev).map((e) => e.domain)).toEqual(["CPU", "CPU", "CPU"]);
    dma_sync_sg_for_device(dev, sg, 3, DMA_BIDIRECTIONAL);
    expect(dma_debug_live(dev).every((e) => e.domain === "DEVICE")).toBe(true);
    expect(dma_debug_live(dev)[0].history.map((h) => h.op)).toEqual(["dma_map_sg[0/3]", "dma_sync_sg_for_cpu", "dma_sync_sg_for_device"]);
    dma_unmap_sg(dev, sg, 3, DMA_BIDIRECTIONAL);
    expect(kinds()).toEqual([]);
    expect(dma_debug_live()).toEqual([]);
  });

  it("sg mappings need no dma_mapping_error check (map returns a count)", () => {
    const { dev, kinds, list } = boot();
    const sg = list(1);
    dma_map_sg(dev, sg, 1, DMA_TO_DEVICE);
    dma_unmap_sg(dev, sg, 1, DMA_TO_DEVICE);
    expect(kinds()).toEqual([]);
  });
});

describe("unmap-wrong-nents", () => {
  it("unmapping with more entries than were mapped: one finding, every segment unmapped", () => {
    const { k, dev, kinds, list } = boot();
    const sg = list(3, 256, 4);
    expect(dma_map_sg(dev, sg, 3, DMA_TO_DEVICE)).toBe(3);
    dma_unmap_sg(dev, sg, 4, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-nents"]);
    expect(k.findings.list[0].message).toContain("frees DMA sg list with different entry count [map count=3] [unmap count=4]");
    expect(k.findings.list[0].details).toMatchObject({ map_nents: 3, call_nents: 4 });
    expect(dma_debug_live()).toEqual([]);
  });

  it("unmapping with fewer entries leaves the rest mapped (a leak at unbind, as in Linux)", () => {
    const { dev, kinds, list } = boot();
    const sg = list(3);
    dma_map_sg(dev, sg, 3, DMA_FROM_DEVICE);
    dma_unmap_sg(dev, sg, 2, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-nents"]);
    expect(dma_debug_live(dev)).toHaveLength(1);
    expect(dma_debug_device_unbind(dev)).toBe(1);
    expect(kinds()).toEqual(["unmap-wrong-nents", "mapping-leak"]);
  });

  it("syncing with a different nents", () => {
    const { k, dev, kinds, list } = boot();
    const sg = list(3);
    dma_map_sg(dev, sg, 3, DMA_FROM_DEVICE);
    dma_sync_sg_for_cpu(dev, sg, 2, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-nents"]);
    expect(k.findings.list[0].message).toContain("syncs DMA sg list with different entry count [map count=3] [sync count=2]");
    dma_unmap_sg(dev, sg, 3, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-nents"]);
  });
});

describe("the other unmap and sync checks, once per call", () => {
  it("unmap-not-mapped: a double dma_unmap_sg of three segments is one finding", () => {
    const { k, dev, kinds, list } = boot();
    const sg = list(3);
    dma_map_sg(dev, sg, 3, DMA_TO_DEVICE);
    dma_unmap_sg(dev, sg, 3, DMA_TO_DEVICE);
    dma_unmap_sg(dev, sg, 3, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
    expect(k.findings.list[0].details).toMatchObject({ double_unmap: true });
  });

  it("unmap-wrong-direction", () => {
    const { dev, kinds, list } = boot();
    const sg = list(2);
    dma_map_sg(dev, sg, 2, DMA_FROM_DEVICE);
    dma_unmap_sg(dev, sg, 2, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-direction"]);
    expect(dma_debug_live()).toEqual([]);
  });

  it("unmap-wrong-type: an sg segment unmapped with dma_unmap_single, and the reverse", () => {
    const { dev, kinds, list } = boot();
    const sg = list(1);
    dma_map_sg(dev, sg, 1, DMA_TO_DEVICE);
    dma_unmap_single(dev, sg[0].dma_address, 256, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-type"]);
    const buf = kmalloc(256, 0);
    const h = dma_map_single(dev, buf, 256, DMA_TO_DEVICE);
    dma_mapping_error(dev, h);
    const one = sg_array(1);
    sg_init_table(one, 1);
    sg_set_buf(one[0], buf, 256);
    one[0].dma_address = h;
    one[0].dma_length = 256;
    dma_unmap_sg(dev, one, 1, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["unmap-wrong-type", "unmap-wrong-type"]);
    expect(dma_debug_live()).toEqual([]);
  });

  it("sync-wrong-direction once for the whole list", () => {
    const { dev, kinds, list } = boot();
    const sg = list(3);
    dma_map_sg(dev, sg, 3, DMA_FROM_DEVICE);
    dma_sync_sg_for_cpu(dev, sg, 3, DMA_BIDIRECTIONAL);
    expect(kinds()).toEqual(["sync-wrong-direction"]);
  });

  it("sync-not-mapped: syncing a list that is not mapped (Linux checks nothing here)", () => {
    const { dev, kinds, list } = boot();
    const sg = list(2);
    dma_map_sg(dev, sg, 2, DMA_FROM_DEVICE);
    dma_unmap_sg(dev, sg, 2, DMA_FROM_DEVICE);
    dma_sync_sg_for_cpu(dev, sg, 2, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["sync-not-mapped"]);
  });

  it("sync-out-of-range: an entry whose DMA length grew after mapping", () => {
    const { dev, kinds, list } = boot();
    const sg = list(2);
    dma_map_sg(dev, sg, 2, DMA_TO_DEVICE);
    sg[1].dma_length = 512;
    dma_sync_sg_for_device(dev, sg, 2, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["sync-out-of-range"]);
  });
});

describe("checks at map time", () => {
  it("map-stack-memory for an sg entry over a stack buffer (mapped anyway, as Linux does)", () => {
    const { dev, kinds } = boot();
    const sg = sg_array(2);
    sg_init_table(sg, 2);
    with_stack_buffer(512, (buf) => {
      sg_set_buf(sg[0], buf, 256);
      sg_set_buf(sg[1], buf + 256, 256);
      expect(dma_map_sg(dev, sg, 2, DMA_TO_DEVICE)).toBe(2);
      dma_unmap_sg(dev, sg, 2, DMA_TO_DEVICE);
    });
    expect(kinds()).toEqual(["map-stack-memory"]);
  });

  it("map-invalid-memory for memory of the kernel image", () => {
    const { dev, kinds } = boot();
    const sg = sg_array(1);
    sg_init_table(sg, 1);
    sg_set_page(sg[0], { pfn: 16 }, 256, 0);
    expect(dma_map_sg(dev, sg, 1, DMA_TO_DEVICE)).toBe(1);
    dma_unmap_sg(dev, sg, 1, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["map-invalid-memory"]);
  });

  it("segments longer than dma_get_max_seg_size are reported, with the fix", () => {
    const { k, dev, kinds } = boot();
    dma_set_max_seg_size(dev, 4096);
    const sg = sg_array(2);
    sg_init_table(sg, 2);
    sg_set_buf(sg[0], kmalloc(8192, 0), 8192);
    sg_set_buf(sg[1], kmalloc(8192, 0), 8192);
    dma_map_sg(dev, sg, 2, DMA_TO_DEVICE);
    dma_unmap_sg(dev, sg, 2, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["warn"]);
    expect(k.findings.list[0].message).toContain("mapping sg segment longer than device claims to support [len=8192] [max=4096]");
    expect(k.findings.list[0].fix).toMatch(/dma_get_max_seg_size/);
  });

  it("segments crossing the segment boundary are reported", () => {
    const { k, dev, kinds } = boot();
    dma_set_seg_boundary(dev, PAGE_SIZE - 1);
    const buf = kmalloc(2 * PAGE_SIZE, 0);
    const sg = sg_array(1);
    sg_init_table(sg, 1);
    sg_set_buf(sg[0], buf + PAGE_SIZE - 128, 256);
    dma_map_sg(dev, sg, 1, DMA_TO_DEVICE);
    dma_unmap_sg(dev, sg, 1, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["warn"]);
    expect(k.findings.list[0].message).toContain("mapping sg segment across boundary");
  });

  it("cacheline-overlap between segments of one list; SKIP_CPU_SYNC silences it", () => {
    const { dev, kinds } = boot();
    const buf = kmalloc(256, 0);
    const sg = sg_array(2);
    sg_init_table(sg, 2);
    sg_set_buf(sg[0], buf, 32);
    sg_set_buf(sg[1], buf + 32, 32);
    dma_map_sg(dev, sg, 2, DMA_FROM_DEVICE);
    dma_unmap_sg(dev, sg, 2, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["cacheline-overlap"]);
    dma_map_sg_attrs(dev, sg, 2, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    dma_unmap_sg(dev, sg, 2, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["cacheline-overlap"]);
  });

  it("mapping-leak at unbind names every leaked segment", () => {
    const { dev, kinds, list } = boot();
    const sg = list(2);
    dma_map_sg(dev, sg, 2, DMA_TO_DEVICE);
    expect(dma_debug_device_unbind(dev)).toBe(2);
    expect(kinds()).toEqual(["mapping-leak", "mapping-leak"]);
  });
});
