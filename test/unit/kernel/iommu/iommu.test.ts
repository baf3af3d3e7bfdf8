/**
 * The IOMMU core on the x86-iommu and arm64-iommu machines: boot, default domains, the map /
 * unmap contract (alignment, -EEXIST, rollback, 2 MiB leaves, holes), iova_to_phys, attach and
 * detach as the device's own DMA port sees them, page-table accounting, and the policies.
 */

import { describe, expect, it } from "vitest";
import { iommuRig } from "./helpers.ts";
import { device_del } from "../../../../kernel/base/driver.ts";
import {
  IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_DMA_FQ, IOMMU_DOMAIN_IDENTITY, IOMMU_DOMAIN_UNMANAGED, IOMMU_READ, IOMMU_WRITE,
  iommu_attach_device, iommu_detach_device, iommu_domain, iommu_domain_alloc, iommu_domain_free, iommu_get_dma_domain,
  iommu_get_domain_for_dev, iommu_iova_to_phys, iommu_map, iommu_map_sg, iommu_paging_domain_alloc, iommu_unmap,
  dev_iommu_requester_id, dev_is_untrusted,
} from "../../../../kernel/include/iommu.ts";
import { iommu_state } from "../../../../kernel/iommu/iommu.ts";
import { IS_ERR, EEXIST, EINVAL, ENOMEM, ENODEV, PTR_ERR } from "../../../../kernel/include/errno.ts";
import { sg_array, sg_init_table, sg_set_page } from "../../../../kernel/lib/scatterlist.ts";

const P = 4096;
const M2 = 2 * 1024 * 1024;
const RW = IOMMU_READ | IOMMU_WRITE;

function unmanaged(r: ReturnType<typeof iommuRig>): iommu_domain {
  const d = iommu_paging_domain_alloc(r.dev);
  if (IS_ERR(d)) throw new Error(`alloc failed ${PTR_ERR(d)}`);
  return d;
}

describe("bring-up and default domains", () => {
  it("x86-iommu: lazy policy, DMA_FQ default domain, boot lines", () => {
    const r = iommuRig("x86-iommu");
    const log = r.dmesg().join("\n");
    expect(log).toContain("DMAR: IOMMU enabled");
    expect(log).toContain("iommu: Default domain type: Translated");
    expect(log).toContain("iommu: DMA domain TLB invalidation policy: lazy mode");
    expect(log).toMatch(/pci 0000:00:03.0: Adding to iommu group 0/);
    const d = iommu_get_dma_domain(r.dev)!;
    expect(d.type).toBe(IOMMU_DOMAIN_DMA_FQ);
    expect(iommu_get_domain_for_dev(r.dev)).toBe(d);
    expect(d.geometry).toEqual({ aperture_start: 0, aperture_end: 2 ** 48 - 1, force_aperture: true });
    expect(d.pgsize_bitmap).toBe(P | M2);
    expect(d.iova_cookie).toBeNull();
    expect(dev_iommu_requester_id(r.dev)).toBe(3 << 3);
    expect(dev_is_untrusted(r.dev)).toBe(false);
    // Translating: the device cannot reach physical memory by its address any more.
    expect(r.devWrite(r.page(), 1)).toBe(false);
  });

  it("arm64-iommu: strict policy, DMA default domain", () => {
    const r = iommuRig("arm64-iommu");
    expect(r.dmesg().join("\n")).toContain("iommu: DMA domain TLB invalidation policy: strict mode");
    expect(iommu_get_dma_domain(r.dev)!.type).toBe(IOMMU_DOMAIN_DMA);
  });

  it("untrusted devices are strict even on a lazy machine", () => {
    const r = iommuRig("x86-iommu", (d) => {
      d.pci.devices[0]!.untrusted = true;
    });
    expect(dev_is_untrusted(r.dev)).toBe(true);
    expect(iommu_get_dma_domain(r.dev)!.type).toBe(IOMMU_DOMAIN_DMA);
  });

  it("policy off: translation never enabled, devices reach physical memory", () => {
    const r = iommuRig("x86-iommu", (d) => {
      (d.iommu as { policy: string }).policy = "off";
    });
    expect(r.dmesg().join("\n")).toContain("DMAR: IOMMU disabled");
    expect(iommu_get_dma_domain(r.dev)).toBeNull();
    expect(r.dev.iommu).toBeNull();
    expect(PTR_ERR(iommu_paging_domain_alloc(r.dev) as never)).toBe(-ENODEV);
    expect(iommu_domain_alloc()).toBeNull();
    expect(r.k.platform.mmioRead(0, 0xfed90000 + 0x14, 4)).toBe(0); // GSTS.TES
    const phys = r.page();
    expect(r.devWrite(phys, 0x1234)).toBe(true);
    expect(r.ram64(phys)).toBe(0x1234);
    expect(r.port.iommuAborts).toBe(0);
  });

  it("policy passthrough: identity default domain, IOVA == phys", () => {
    const r = iommuRig("x86-iommu", (d) => {
      (d.iommu as { policy: string }).policy = "passthrough";
    });
    expect(r.dmesg().join("\n")).toContain("iommu: Default domain type: Passthrough");
    const d = iommu_get_dma_domain(r.dev)!;
    expect(d.type).toBe(IOMMU_DOMAIN_IDENTITY);
    expect(iommu_iova_to_phys(d, 0x123456)).toBe(0x123456);
    const phys = r.page();
    expect(r.devWrite(phys, 77)).toBe(true);
    expect(r.ram64(phys)).toBe(77);
  });
});

describe("iommu_map / iommu_unmap", () => {
  it("rejects unaligned arguments with Linux's message, and non-paging domains", () => {
    const r = iommuRig();
    const d = unmanaged(r);
    expect(d.type).toBe(IOMMU_DOMAIN_UNMANAGED);
    expect(iommu_map(d, 0x1001, 0x200000, P, RW, 0)).toBe(-EINVAL);
    expect(r.dmesg().join("\n")).toContain("iommu: unaligned: iova 0x1001 pa 0x0000000000200000 size 0x1000 min_pagesz 0x1000");
    expect(iommu_map(d, 0x1000, 0x200800, P, RW, 0)).toBe(-EINVAL);
    expect(iommu_map(d, 0x1000, 0x200000, 0x800, RW, 0)).toBe(-EINVAL);
    expect(iommu_unmap(d, 0x1800, P)).toBe(0);
    const identity = iommu_state(r.k).identity!;
    expect(iommu_map(identity, 0x1000, 0x1000, P, RW, 0)).toBe(-EINVAL);
  });

  it("maps, translates with the page offset, and returns -EEXIST for a mapped IOVA", () => {
    const r = iommuRig();
    const d = unmanaged(r);
    const phys = r.page();
    expect(iommu_map(d, 0x10000, phys, P, RW, 0)).toBe(0);
    expect(iommu_iova_to_phys(d, 0x10000 + 0x123)).toBe(phys + 0x123);
    expect(iommu_iova_to_phys(d, 0x11000)).toBe(0);
    expect(iommu_map(d, 0x10000, r.page(), P, RW, 0)).toBe(-EEXIST);
    expect(iommu_iova_to_phys(d, 0x10000)).toBe(phys);
  });

  it("rolls back when an already-mapped page sits in the middle of the range", () => {
    const r = iommuRig();
    const d = unmanaged(r);
    const mid = r.page();
    expect(iommu_map(d, 0x20000 + 2 * P, mid, P, RW, 0)).toBe(0);
    expect(iommu_map(d, 0x20000, 0x400000, 4 * P, RW, 0)).toBe(-EEXIST);
    expect(iommu_iova_to_phys(d, 0x20000)).toBe(0);
    expect(iommu_iova_to_phys(d, 0x20000 + P)).toBe(0);
    expect(iommu_iova_to_phys(d, 0x20000 + 2 * P)).toBe(mid); // not this call's to remove
    expect(iommu_iova_to_phys(d, 0x20000 + 3 * P)).toBe(0);
  });

  it("rolls back when a page-table page cannot be allocated midway", () => {
    const r = iommuRig();
    const d = unmanaged(r);
    const st = iommu_state(r.k);
    // Build the tables for the first page, then fail the level-1 table the second one needs.
    expect(iommu_map(d, M2 - P, 0x400000, P, RW, 0)).toBe(0);
    expect(iommu_unmap(d, M2 - P, P)).toBe(P);
    st.pgtables.failAllocs = 1;
    expect(iommu_map(d, M2 - P, 0x400000, 2 * P, RW, 0)).toBe(-ENOMEM);
    expect(iommu_iova_to_phys(d, M2 - P)).toBe(0);
    expect(iommu_iova_to_phys(d, M2)).toBe(0);
    expect(iommu_map(d, M2 - P, 0x400000, 2 * P, RW, 0)).toBe(0);
  });

  it("uses 2 MiB leaves where iova, paddr and size allow", () => {
    const r = iommuRig();
    const d = unmanaged(r);
    const st = iommu_state(r.k);
    const before = st.pgtables.pages;
    const base = 0x4000_0000;
    expect(iommu_map(d, base, 0x800000, 2 * M2 + P, RW, 0)).toBe(0);
    // root existed; level 3, level 2 for the leaves, and one level-1 table for the last 4 KiB.
    expect(st.pgtables.pages - before).toBe(3);
    expect(d._pgtbl!.lookup(base)!.size).toBe(M2);
    expect(d._pgtbl!.lookup(base + M2 + 0x1234)!.size).toBe(M2);
    expect(d._pgtbl!.lookup(base + 2 * M2)!.size).toBe(P);
    expect(iommu_iova_to_phys(d, base + M2 + 0x1234)).toBe(0x800000 + M2 + 0x1234);
    // Unaligned paddr: 4 KiB pages only.
    expect(iommu_map(d, 0x8000_0000, 0x801000, M2, RW, 0)).toBe(0);
    expect(d._pgtbl!.lookup(0x8000_0000)!.size).toBe(P);
    // Unmapping a 2 MiB leaf from its start reports its whole size.
    expect(iommu_unmap(d, base, M2)).toBe(M2);
    expect(iommu_iova_to_phys(d, base + 0x5000)).toBe(0);
  });

  it("unmap returns bytes and stops at the first hole", () => {
    const r = iommuRig();
    const d = unmanaged(r);
    for (const i of [0, 1, 3]) expect(iommu_map(d, 0x30000 + i * P, r.page(), P, RW, 0)).toBe(0);
    expect(iommu_unmap(d, 0x30000, 4 * P)).toBe(2 * P);
    expect(iommu_unmap(d, 0x30000, P)).toBe(0);
    expect(iommu_iova_to_phys(d, 0x30000 + 3 * P)).not.toBe(0);
    expect(iommu_unmap(d, 0x30000 + 3 * P, P)).toBe(P);
  });

  it("iommu_map_sg merges contiguous entries and rolls back on failure", () => {
    const r = iommuRig();
    const d = unmanaged(r);
    const a = r.k.pages.alloc(1, 0);
    const b = r.page();
    const sg = sg_array(3);
    sg_init_table(sg, 3);
    sg_set_page(sg[0]!, { pfn: a / P }, P, 0);
    sg_set_page(sg[1]!, { pfn: a / P + 1 }, P, 0);
    sg_set_page(sg[2]!, { pfn: b / P }, P, 0);
    expect(iommu_map_sg(d, 0x100000, sg, 3, RW, 0)).toBe(3 * P);
    expect(iommu_iova_to_phys(d, 0x100000 + P)).toBe(a + P);
    expect(iommu_iova_to_phys(d, 0x100000 + 2 * P)).toBe(b);
    expect(iommu_map(d, 0x200000 + 2 * P, b, P, RW, 0)).toBe(0);
    expect(iommu_map_sg(d, 0x200000, sg, 3, RW, 0)).toBe(-EEXIST);
    expect(iommu_iova_to_phys(d, 0x200000)).toBe(0);
  });

  it("frees every page-table page with the domain", () => {
    const r = iommuRig();
    const st = iommu_state(r.k);
    const before = st.pgtables.pages;
    const free0 = r.k.pages.freePages();
    const d = unmanaged(r);
    expect(iommu_map(d, 0x7000_0000, 0x800000, 8 * M2, RW, 0)).toBe(0);
    expect(iommu_map(d, 0x1_0000_0000, 0x900000, 16 * P, RW, 0)).toBe(0);
    expect(st.pgtables.pages).toBeGreaterThan(before);
    iommu_domain_free(d);
    expect(st.pgtables.pages).toBe(before);
    expect(r.k.pages.freePages()).toBe(free0);
    expect(r.k.warnings).toBe(0);
  });
});

describe("attach / detach through the device's DMA port", () => {
  for (const profile of ["x86-iommu", "arm64-iommu"]) {
    it(`${profile}: the attached domain decides what the device reaches`, () => {
      const r = iommuRig(profile);
      const d = unmanaged(r);
      const phys = r.page();
      expect(iommu_map(d, 0x10000, phys, P, RW, 0)).toBe(0);
      expect(r.devWrite(0x10000, 0xabcd)).toBe(false); // still in its default domain
      expect(iommu_attach_device(d, r.dev)).toBe(0);
      expect(iommu_get_domain_for_dev(r.dev)).toBe(d);
      expect(r.devWrite(0x10000 + 8, 0xabcd)).toBe(true);
      expect(r.ram64(phys + 8)).toBe(0xabcd);
      expect(r.devRead(0x10000 + 8)).toBe(0xabcd);
      iommu_detach_device(d, r.dev);
      expect(iommu_get_domain_for_dev(r.dev)).toBe(iommu_get_dma_domain(r.dev));
      expect(r.devWrite(0x10000, 1)).toBe(false);
      expect(r.devRead(0x10000 + 8)).toBeNull();
      iommu_domain_free(d);
      expect(r.k.warnings).toBe(0);
    });
  }

  it("a second non-default domain is refused while one is attached", () => {
    const r = iommuRig();
    const a = unmanaged(r);
    const b = unmanaged(r);
    expect(iommu_attach_device(a, r.dev)).toBe(0);
    expect(iommu_attach_device(b, r.dev)).toBe(-16);
    iommu_detach_device(a, r.dev);
    expect(iommu_attach_device(b, r.dev)).toBe(0);
  });

  it("arm64 (non-coherent walk): freshly written PTEs reach RAM, so the IOMMU sees them", () => {
    const r = iommuRig("arm64-iommu");
    expect(r.k.platform.coherentDma).toBe(false);
    const d = unmanaged(r);
    const phys = r.page();
    expect(iommu_attach_device(d, r.dev)).toBe(0);
    for (let i = 0; i < 16; i++) {
      expect(iommu_map(d, 0x40000 + i * P, phys, P, RW, 0)).toBe(0);
      expect(r.devWrite(0x40000 + i * P + 8 * i, i + 1)).toBe(true);
    }
    for (let i = 0; i < 16; i++) expect(r.ram64(phys + 8 * i)).toBe(i + 1);
    // The leaf entry itself is in RAM (not only in the CPU's cache).
    const leaf = d._pgtbl!.lookup(0x40000)!;
    expect(leaf.phys).toBe(phys);
    expect(r.k.platform.anyDirtyLines()).toBe(false);
  });
});

describe("removing a device", () => {
  it("its DMA aborts afterwards, although its context entry was in the IOMMU's context cache", async () => {
    const r = iommuRig("x86-iommu", (d) => (d.iommu!.policy = "passthrough"));
    const phys = r.page();
    expect(r.devWrite(phys, 0x1234)).toBe(true); // identity: the context is cached now
    r.k.enter();
    const gone = device_del(r.dev);
    await r.k.run();
    await gone;
    expect(r.dev.iommu).toBeNull();
    expect(r.devWrite(phys, 0x5678)).toBe(false); // context cleared and flushed: reason 0x02
    expect(r.ram64(phys)).toBe(0x1234);
    expect(r.k.findings.ofKind("iommu-fault").at(-1)?.details?.reason_code).toBe(0x02);
  });
});
