import { describe, expect, it } from "vitest";
import { iommuRig } from "./iommu-dma-rig.ts";
import { GFP_KERNEL, PAGE_SIZE } from "../../../../kernel/include/types.ts";
import { kmalloc, kfree, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import { kread8, kwrite8, memset } from "../../../../kernel/mm/access.ts";
import {
  DMA_BIDIRECTIONAL,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_addr_holder,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_map_single,
  dma_mapping_error,
  dma_set_mask_and_coherent,
  dma_sync_single_for_cpu,
  dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { iommu_dma_cookie_of, iommu_dma_domain } from "../../../../kernel/dma/iommu-dma.ts";
import { IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_DMA_FQ } from "../../../../kernel/iommu/iommu.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { iommu_release_device } from "../../../../kernel/iommu/init.ts";

function buf(size: number, fill: number): number {
  const va = kmalloc(size, GFP_KERNEL);
  memset(va, fill, size);
  return va;
}

describe("dma_map_single through the IOMMU", () => {
  it("hands out an IOVA (not the physical address), keeps the page offset, and reaches exactly the buffer", () => {
    const { dev, read, write, port } = iommuRig("arm64-iommu");
    const dom = iommu_dma_domain(dev)!;
    expect(dom.type).toBe(IOMMU_DOMAIN_DMA);
    const va = buf(4096, 0x5a) + 0; // page-sized kmalloc: page aligned
    const addr = dma_map_single(dev, va + 100, 200, DMA_TO_DEVICE);
    expect(dma_mapping_error(dev, addr)).toBe(0);
    expect(addr).not.toBe(virt_to_phys(va + 100));
    expect(addr % PAGE_SIZE).toBe(100);
    expect(addr).toBeLessThan(2 ** 32); // PCI: below 4 GiB first
    expect(read(addr, 200)).toEqual(new Uint8Array(200).fill(0x5a));
    // TO_DEVICE is read-only for the device
    const aborts = port.iommuAborts;
    expect(write(addr, new Uint8Array(4))).toBe(false);
    expect(port.iommuAborts).toBe(aborts + 1);
    dma_unmap_single(dev, addr, 200, DMA_TO_DEVICE);
    // strict: unreachable as soon as unmap returns
    expect(read(addr, 4)).toBeNull();
    kfree(va);
  });

  it("allocates IOVAs below the device's mask", () => {
    const { dev } = iommuRig("x86-iommu");
    expect(dma_set_mask_and_coherent(dev, DMA_BIT_MASK(28))).toBe(0);
    const va = buf(8192, 1);
    const a = dma_map_single(dev, va, 8192, DMA_BIDIRECTIONAL);
    expect(a + 8192).toBeLessThanOrEqual(2 ** 28);
    dma_unmap_single(dev, a, 8192, DMA_BIDIRECTIONAL);
    const h = dma_addr_holder();
    const cpu = dma_alloc_coherent(dev, 4096, h, GFP_KERNEL);
    expect(h.value + 4096).toBeLessThanOrEqual(2 ** 28);
    expect(h.value).not.toBe(virt_to_phys(cpu));
    dma_free_coherent(dev, 4096, cpu, h.value);
    kfree(va);
  });

  it("lazy (x86-iommu): an unmapped IOVA stays reachable through the IOTLB until the flush queue drains after 10 ms", async () => {
    const { kernel, dev, read } = iommuRig("x86-iommu");
    const dom = iommu_dma_domain(dev)!;
    expect(dom.type).toBe(IOMMU_DOMAIN_DMA_FQ);
    const va = buf(4096, 7);
    const a = dma_map_single(dev, va, 4096, DMA_TO_DEVICE);
    expect(read(a, 8)).not.toBeNull(); // the IOTLB caches the translation
    dma_unmap_single(dev, a, 4096, DMA_TO_DEVICE);
    const c = iommu_dma_cookie_of(kernel, dom);
    expect(c.fq!.length).toBe(1);
    expect(read(a, 8)).not.toBeNull(); // the security window of §9.4
    // the IOVA is not reused before the flush
    const b = dma_map_single(dev, va, 4096, DMA_TO_DEVICE);
    expect(b).not.toBe(a);
    dma_unmap_single(dev, b, 4096, DMA_TO_DEVICE);
    await kernel.run({ untilNs: kernel.exec.now() + 11e6 });
    kernel.enter();
    expect(c.fq!.length).toBe(0);
    expect(read(a, 8)).toBeNull();
    expect(c.iovad.count).toBe(1); // only the reserved MSI range remains (the 4 KiB window merged into the x86 1 MiB one)
    kfree(va);
  });

  it("lazy: releasing the device frees its default domain, and the domain's flush queue with it (no timer fires later)", async () => {
    const { kernel, dev } = iommuRig("x86-iommu");
    const dom = iommu_dma_domain(dev)!;
    const va = buf(4096, 7);
    const a = dma_map_single(dev, va, 4096, DMA_TO_DEVICE);
    dma_unmap_single(dev, a, 4096, DMA_TO_DEVICE);
    const fq = iommu_dma_cookie_of(kernel, dom).fq!;
    expect(fq.timer_armed).toBe(true);
    iommu_release_device(dev, kernel);
    expect(dom.iova_cookie).toBeNull();
    expect(fq.timer_armed).toBe(false);
    expect(fq.length).toBe(0);
    await kernel.run({ untilNs: kernel.exec.now() + 20e6 });
    expect(fq.stats.flushes_timer).toBe(0);
    kfree(va);
  });

  it("FROM_DEVICE: the device writes through the IOVA, the CPU reads it after sync/unmap on a non-coherent machine", () => {
    const { dev, write } = iommuRig("arm64-iommu");
    const va = buf(256, 0);
    const a = dma_map_single(dev, va, 256, DMA_FROM_DEVICE);
    expect(write(a, new Uint8Array(256).fill(0xab))).toBe(true);
    dma_sync_single_for_cpu(dev, a, 256, DMA_FROM_DEVICE);
    expect(kread8(va + 17)).toBe(0xab);
    dma_unmap_single(dev, a, 256, DMA_FROM_DEVICE);
    kfree(va);
    expect(dma_debug_live()).toEqual([]);
  });
});

describe("untrusted devices: sub-page buffers are bounced", () => {
  it("exposes only the buffer and zeros, never the rest of the page; copies back at unmap", () => {
    const { kernel, dev, read, write } = iommuRig("arm64-iommu", (d) => (d.pci.devices[0].untrusted = true));
    const page = buf(4096, 0);
    for (let i = 0; i < 4096; i++) kwrite8(page + i, 0x11); // a "secret" everywhere
    const a = dma_map_single(dev, page + 512, 256, DMA_BIDIRECTIONAL);
    expect(dma_mapping_error(dev, a)).toBe(0);
    expect(iommu_dma_cookie_of(kernel, iommu_dma_domain(dev)!).stats.bounced).toBe(1);
    const base = a - (a % PAGE_SIZE);
    const whole = read(base, 4096)!;
    expect(whole).not.toBeNull();
    const inside = whole.subarray(a - base, a - base + 256);
    expect(inside).toEqual(new Uint8Array(256).fill(0x11));
    let leaked = 0;
    whole.forEach((b, i) => {
      if ((i < a - base || i >= a - base + 256) && b !== 0) leaked++;
    });
    expect(leaked).toBe(0);
    expect(write(a, new Uint8Array(4).fill(0xee))).toBe(true);
    dma_unmap_single(dev, a, 256, DMA_BIDIRECTIONAL);
    expect(kread8(page + 512)).toBe(0xee);
    expect(kread8(page + 511)).toBe(0x11);
    expect(read(a, 4)).toBeNull();
    kfree(page);
  });
});
