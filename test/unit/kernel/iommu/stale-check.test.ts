/**
 * The stale-translation checker on its own: a real I/O page table in simulated RAM, a fake
 * resolver naming the device's domain, and device accesses handed to the checker directly.
 * It must stay silent while the table maps what the device reached, report once per
 * (device, IOVA page, unmap) when it does not, name what the page holds now and the missing
 * invalidation, and never touch the caches while looking.
 */
import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { IoPgtable, IOPTE_R, IOPTE_W, type IommuPgtableCounters } from "../../../../kernel/iommu/io-pgtable.ts";
import {
  iommu_stale_check, iommu_stale_check_access, iommu_stale_note_unmap, iommu_stale_set_resolver, stale_default_resolver,
  STALE_ACCESS_OK, STALE_ACCESS_STALE, STALE_ACCESS_UNMANAGED, type stale_domain_view,
} from "../../../../kernel/iommu/stale-check.ts";
import { kmalloc, kfree } from "../../../../kernel/mm/slab-api.ts";
import { iommu_domain, IOMMU_DOMAIN_DMA_FQ, IOMMU_DOMAIN_UNMANAGED } from "../../../../kernel/iommu/iommu.ts";
import { PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";

const IOVA = 0xfff0_0000;

/** Did the checker call the access stale? */
const isStale = (...a: Parameters<typeof iommu_stale_check_access>): boolean => (iommu_stale_check_access(...a) & STALE_ACCESS_STALE) !== 0;

function rig(lazy = false) {
  const { kernel: k, platform, board } = bareKernel("x86-coherent");
  k.enter();
  const counters: IommuPgtableCounters = { pages: 0, failAllocs: 0 };
  const dev = new device("0000:00:05.0", "pci");
  let pgt!: IoPgtable;
  let buf = 0;
  k.exec.runOn(0, "process", "demo", "setup", () => {
    pgt = IoPgtable.alloc(k, true, counters)!;
    buf = kmalloc(4096, 0) - PAGE_OFFSET;
    expect(pgt.map(IOVA, buf, 4096, IOPTE_R | IOPTE_W)).toBe(0);
  });
  const domain = {};
  const view: stale_domain_view = { domain, root: pgt.root, type: lazy ? "DMA_FQ" : "UNMANAGED", lazy, dmaApi: lazy };
  iommu_stale_set_resolver((d) => (d === dev ? view : null), k);
  return { k, platform, board, dev, pgt, buf, domain };
}

describe("stale IOTLB checker", () => {
  it("is silent while the kernel's table maps what the device reached, and says whose domain it is", () => {
    const { k, dev, buf } = rig();
    expect(iommu_stale_check_access(k, dev, buf, 8, true, IOVA)).toBe(STALE_ACCESS_UNMANAGED);
    expect(isStale(k, dev, buf + 16, 64, true, IOVA + 16)).toBe(false);
    expect(isStale(k, dev, buf, 4096, false, IOVA)).toBe(false);
    expect(k.findings.count).toBe(0);
    expect(iommu_stale_check(k).stats.checked).toBe(3);
  });

  it("reports a write through an unmapped IOVA once per episode, naming the reused page and iommu_iotlb_sync()", () => {
    const { k, dev, pgt, buf, domain } = rig();
    let reused = 0;
    k.exec.runOn(0, "process", "demo", "unmap", () => {
      expect(pgt.unmap(IOVA)).toBe(4096);
      iommu_stale_note_unmap(domain, IOVA, 4096, "iommu_unmap_fast", k);
      kfree(PAGE_OFFSET + buf);
    });
    k.exec.runOn(0, "process", "", "reuse", () => {
      reused = kmalloc(4096, 0) - PAGE_OFFSET; // LIFO: the same slot
    });
    expect(reused).toBe(buf);
    expect(isStale(k, dev, buf + 8, 8, true, IOVA + 8)).toBe(true);
    expect(isStale(k, dev, buf + 64, 8, false, IOVA + 64)).toBe(true); // same episode: no second finding
    const f = k.findings.ofKind("stale-iotlb-access");
    expect(f.length).toBe(1);
    expect(f[0]).toMatchObject({ driver: "demo", device: "0000:00:05.0", severity: "error" });
    expect(f[0].details).toMatchObject({
      access: "write", iova: "0xfff00008", phys: `0x${(buf + 8).toString(16)}`, domain_type: "UNMANAGED",
      table_maps_to: "none", page_state: "reallocated", unmapped_by: "iommu_unmap_fast",
    });
    expect(f[0].fix).toMatch(/^Call iommu_iotlb_sync\(\) \(or use iommu_unmap\(\)\) before the pages are reused/);
    expect(f[0].message).toMatch(/^device write of 8 byte\(s\) through a stale IOTLB entry: IOVA 0xfff00008/);
    expect(f[0].message).toContain("unmapped by iommu_unmap_fast() at");
    expect(f[0].history!.map((h) => h.op)).toEqual(["iommu_unmap_fast"]);

    // a second unmap of the same page is a new episode
    k.exec.runOn(0, "process", "demo", "again", () => {
      expect(pgt.map(IOVA, reused, 4096, IOPTE_R | IOPTE_W)).toBe(0);
      pgt.unmap(IOVA);
      iommu_stale_note_unmap(domain, IOVA, 4096, "iommu_unmap_fast", k);
    });
    expect(isStale(k, dev, buf, 8, true, IOVA)).toBe(true);
    expect(k.findings.ofKind("stale-iotlb-access").length).toBe(2);
  });

  it("remapped elsewhere, or read-only, is stale too", () => {
    const { k, dev, pgt, buf } = rig();
    let other = 0;
    k.exec.runOn(0, "process", "demo", "remap", () => {
      pgt.unmap(IOVA);
      other = kmalloc(4096, 0) - PAGE_OFFSET;
      pgt.map(IOVA, other, 4096, IOPTE_R);
    });
    expect(isStale(k, dev, other, 4, false, IOVA)).toBe(false); // the new translation, readable
    expect(isStale(k, dev, other, 4, true, IOVA)).toBe(true); // write: the table says read-only
    expect(k.findings.list[0].details).toMatchObject({ table_maps_to: `0x${other.toString(16)}` });
    expect(k.findings.list[0].message).toContain("maps it without write permission");
    expect(k.findings.list[0].message).toContain("unmapped at a time the checker did not see");
    const k2 = rig();
    k2.k.exec.runOn(0, "process", "demo", "remap", () => {
      k2.pgt.unmap(IOVA);
      k2.pgt.map(IOVA, other, 4096, IOPTE_R | IOPTE_W);
    });
    expect(isStale(k2.k, k2.dev, k2.buf, 4, false, IOVA)).toBe(true);
    expect(k2.k.findings.list[0].details).toMatchObject({ table_maps_to: `0x${other.toString(16)}`, page_state: "in use" });
    void buf;
  });

  it("names the lazy flush queue for a DMA_FQ domain", () => {
    const { k, dev, pgt, buf, domain } = rig(true);
    k.exec.runOn(0, "process", "demo", "unmap", () => {
      pgt.unmap(IOVA);
      iommu_stale_note_unmap(domain, IOVA, 4096, "iommu_unmap_fast", k);
      kfree(PAGE_OFFSET + buf);
    });
    expect(iommu_stale_check_access(k, dev, buf, 4, true, IOVA)).toBe(STALE_ACCESS_STALE); // a DMA API domain
    const f = k.findings.list[0];
    expect(f.fix).toBe(
      "Lazy invalidation leaves unmapped IOVAs reachable until the flush queue drains (up to 10 ms): boot with iommu.strict=1 (--iommu strict) or mark the device untrusted.",
    );
    expect(f.message).toContain("its invalidation still waits in the flush queue");
    expect(f.details).toMatchObject({ domain_type: "DMA_FQ" });
    expect(["page block", "free"]).toContain(f.details!.page_state); // a free slot in a live slab page
  });

  it("looks without side effects: no cache fills, no CPU time", () => {
    const { k, board, dev, buf } = rig();
    const before = JSON.stringify(board.mem.stats);
    const busy = [...k.exec.busyNs];
    for (let i = 0; i < 100; i++) expect(iommu_stale_check_access(k, dev, buf, 64, true, IOVA)).toBe(STALE_ACCESS_UNMANAGED);
    expect(JSON.stringify(board.mem.stats)).toBe(before);
    expect([...k.exec.busyNs]).toEqual(busy);
  });

  it("learns IOMMU API unmaps from the hook, but DMA API domains only from dma-debug (with the DMA API call's name)", () => {
    const { k } = rig();
    const unmanaged = new iommu_domain(IOMMU_DOMAIN_UNMANAGED, 7, null);
    const dmaFq = new iommu_domain(IOMMU_DOMAIN_DMA_FQ, 8, null);
    iommu_stale_note_unmap(unmanaged, IOVA, 8192, "iommu_unmap_fast", k);
    iommu_stale_note_unmap(dmaFq, IOVA, 4096, "iommu_unmap_fast", k);
    const c = iommu_stale_check(k);
    expect(c.lastUnmap(unmanaged, IOVA + 4096)).toMatchObject({ fn: "iommu_unmap_fast", iova: IOVA, size: 8192 });
    expect(c.lastUnmap(unmanaged, IOVA + 8192)).toBeNull();
    expect(c.lastUnmap(dmaFq, IOVA)).toBeNull();
  });

  it("passes at once for devices with no translating domain, and with the resolver off", () => {
    const { k, dev, buf } = rig();
    const other = new device("0000:00:06.0", "pci");
    expect(iommu_stale_check_access(k, other, buf, 8, true, 0x1234)).toBe(STALE_ACCESS_OK);
    expect(stale_default_resolver(other)).toBeNull(); // not behind an IOMMU
    iommu_stale_set_resolver(null, k);
    expect(isStale(k, dev, buf, 8, true, 0x1234)).toBe(false);
    expect(iommu_stale_check(k).stats.checked).toBe(0);
  });
});
