/**
 * The DMA API's questions about a device (kernel/dma/mapping-query.ts) answered for the path
 * its mappings take: the direct path, or IOVAs through a translating IOMMU domain.
 */
import { describe, expect, it } from "vitest";
import { iommuRig } from "./iommu-dma-rig.ts";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import {
  DMA_BIDIRECTIONAL, DMA_BIT_MASK, DMA_TO_DEVICE, dma_addressing_limited, dma_get_required_mask, dma_map_single, dma_mapping_error, dma_max_mapping_size,
  dma_need_sync, dma_set_mask_and_coherent, dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { SIZE_MAX } from "../../../../kernel/dma/defs.ts";
import { kfree, kmalloc } from "../../../../kernel/mm/slab-api.ts";

describe("behind a translating IOMMU", () => {
  it("x86-iommu (coherent): no syncs needed, 32 bits required, only a narrower mask is limited, no size limit", () => {
    const { dev } = iommuRig("x86-iommu");
    expect(dma_get_required_mask(dev)).toBe(DMA_BIT_MASK(32));
    expect(dma_set_mask_and_coherent(dev, DMA_BIT_MASK(28))).toBe(0);
    expect(dma_addressing_limited(dev)).toBe(true);
    expect(dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32))).toBe(0);
    expect(dma_addressing_limited(dev)).toBe(false); // RAM above 4 GiB is reached through IOVAs
    expect(dma_max_mapping_size(dev)).toBe(SIZE_MAX);
    const b = kmalloc(4096, 0);
    const h = dma_map_single(dev, b, 4096, DMA_TO_DEVICE);
    expect(dma_mapping_error(dev, h)).toBe(0);
    expect(dma_need_sync(dev, h)).toBe(false);
    dma_unmap_single(dev, h, 4096, DMA_TO_DEVICE);
    kfree(b);
  });

  it("arm64-iommu (non-coherent): every mapping needs its syncs", () => {
    const { dev } = iommuRig("arm64-iommu");
    const b = kmalloc(4096, 0);
    const h = dma_map_single(dev, b, 4096, DMA_TO_DEVICE);
    expect(dma_need_sync(dev, h)).toBe(true);
    dma_unmap_single(dev, h, 4096, DMA_TO_DEVICE);
    kfree(b);
  });

  it("an untrusted coherent device: a bounced sub-page mapping needs syncs, a whole page does not; mappings are capped at the bounce size", () => {
    const { dev } = iommuRig("x86-iommu", (d) => (d.pci.devices[0].untrusted = true));
    expect(dma_max_mapping_size(dev)).toBe(256 * 1024);
    const small = kmalloc(256, 0);
    const page = kmalloc(4096, 0);
    const hs = dma_map_single(dev, small, 256, DMA_BIDIRECTIONAL);
    const hp = dma_map_single(dev, page, 4096, DMA_BIDIRECTIONAL);
    expect(dma_need_sync(dev, hs)).toBe(true);
    expect(dma_need_sync(dev, hp)).toBe(false);
    dma_unmap_single(dev, hs, 256, DMA_BIDIRECTIONAL);
    dma_unmap_single(dev, hp, 4096, DMA_BIDIRECTIONAL);
    kfree(small);
    kfree(page);
  });
});

describe("on the direct path", () => {
  it("the required mask reaches all RAM, and a 32-bit device on a machine with RAM above 4 GiB is limited", () => {
    const { kernel: k } = bareKernel("x86-coherent");
    k.enter();
    const dev = new device("0000:00:04.0", "pci");
    dev.dma_coherent = true;
    expect(dma_get_required_mask(dev)).toBe(DMA_BIT_MASK(33));
    expect(dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32))).toBe(0);
    expect(dma_addressing_limited(dev)).toBe(true);
  });
});
