import { describe, expect, it } from "vitest";
import { iommuRig } from "./iommu-dma-rig.ts";
import { GFP_KERNEL, PAGE_SIZE } from "../../../../kernel/include/types.ts";
import { __get_free_pages, free_pages } from "../../../../kernel/mm/slab-api.ts";
import { kread8, kread32 } from "../../../../kernel/mm/access.ts";
import { sg_array, sg_init_table, sg_set_buf } from "../../../../kernel/lib/scatterlist.ts";
import { DMA_FROM_DEVICE, dma_map_sg, dma_map_single, dma_mapping_error, dma_set_max_seg_size, dma_sync_single_for_cpu, dma_unmap_sg, dma_unmap_single } from "../../../../kernel/include/dma-mapping.ts";

describe("coherence sanitizer with IOVAs (arm64-iommu)", () => {
  it("a missing sync_for_cpu is still a stale-cpu-read, with offsets in the mapping", () => {
    const { kernel, dev, write } = iommuRig("arm64-iommu");
    const va = __get_free_pages(GFP_KERNEL, 0);
    kread32(va + 256); // the CPU holds the line
    const a = dma_map_single(dev, va + 192, 512, DMA_FROM_DEVICE);
    expect(dma_mapping_error(dev, a)).toBe(0);
    expect(write(a + 64, new Uint8Array(16).fill(0x3c))).toBe(true); // mapping bytes 64..79 = page bytes 256..271
    kread32(va + 256); // no sync_for_cpu: stale
    const f = kernel.findings.ofKind("stale-cpu-read");
    expect(f).toHaveLength(1);
    expect(f[0].message).toMatch(/\[offset=64\.\.67\]/);
    expect(f[0].details).toMatchObject({ dev_addr: expect.stringMatching(/^0x/) });
    dma_sync_single_for_cpu(dev, a, 512, DMA_FROM_DEVICE);
    expect(kread8(va + 256)).toBe(0x3c);
    dma_unmap_single(dev, a, 512, DMA_FROM_DEVICE);
    // the cause is reported too: the CPU read while the device owned the buffer
    expect(kernel.findings.list.map((x) => x.kind).sort()).toEqual(["cpu-access-device-owned", "stale-cpu-read"]);
    free_pages(va, 0);
  });

  it("a correct round trip through a merged sg segment gives no finding; CPU access to its second page while mapped is caught", () => {
    const { kernel, dev, write } = iommuRig("arm64-iommu");
    dma_set_max_seg_size(dev, 1 << 20);
    const p0 = __get_free_pages(GFP_KERNEL, 0);
    __get_free_pages(GFP_KERNEL, 0);
    const p1 = __get_free_pages(GFP_KERNEL, 0);
    const sgl = sg_array(2);
    sg_init_table(sgl, 2);
    sg_set_buf(sgl[0], p0, PAGE_SIZE);
    sg_set_buf(sgl[1], p1, PAGE_SIZE);
    expect(dma_map_sg(dev, sgl, 2, DMA_FROM_DEVICE)).toBe(1);
    expect(write(sgl[0].dma_address + PAGE_SIZE + 8, new Uint8Array(8).fill(9))).toBe(true);
    expect(kernel.findings.list).toEqual([]);
    kread8(p1 + 8); // device owns it
    const f = kernel.findings.ofKind("cpu-access-device-owned");
    expect(f).toHaveLength(1);
    expect(f[0].message).toContain(`[offset=${PAGE_SIZE + 8}]`);
    dma_unmap_sg(dev, sgl, 2, DMA_FROM_DEVICE);
    expect(kread8(p1 + 8)).toBe(9);
    expect(kernel.findings.count).toBe(1);
  });
});
