/**
 * swiotlb in the kernel: the pool at boot, when the direct path bounces (§6.1), reachability of
 * the slot, a full pool and no pool, the mapping size limit, the kmalloc bounce rule, force
 * mode, and unmaps that do not match their map.
 */
import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { boot } from "../../../../kernel/platform/boot.ts";
import { PAGE_SIZE } from "../../../../kernel/include/types.ts";
import {
  DMA_ATTR_NO_WARN, DMA_ATTR_REQUIRE_COHERENT, DMA_BIDIRECTIONAL, DMA_BIT_MASK, DMA_FROM_DEVICE, DMA_MAPPING_ERROR,
  DMA_TO_DEVICE, dma_get_min_align_mask, dma_map_page, dma_map_page_attrs, dma_map_single, dma_mapping_error,
  dma_max_mapping_size, dma_need_sync, dma_set_mask, dma_set_min_align_mask, dma_set_seg_boundary, dma_unmap_page,
  dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { kfree, kmalloc, ksize } from "../../../../kernel/mm/slab-api.ts";
import { dma_stats } from "../../../../kernel/dma/state.ts";
import { dma_direct_route, dma_kmalloc_needs_bounce, kmalloc_size_roundup } from "../../../../kernel/dma/direct.ts";
import { DMA_ATTR_MMIO } from "../../../../kernel/dma/defs.ts";
import { swiotlb_info, swiotlb_init } from "../../../../kernel/dma/swiotlb.ts";
import { pattern, setup } from "./swiotlb-setup.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const page = (phys: number) => ({ pfn: phys / PAGE_SIZE });

describe("the pool", () => {
  it("is carved below 4 GiB at boot and announced as Linux does", () => {
    for (const name of ["x86-coherent", "arm64-noncoherent"]) {
      const desc = getProfile(name);
      desc.pci.devices = [];
      const k = boot(new Board(desc, { seed: 1 }), { logLevel: "silent" });
      const info = swiotlb_info(k)!;
      expect(info).toMatchObject({ nslabs: 32768, used: 0, force: false });
      expect(info.end).toBeLessThanOrEqual(2 ** 32);
      expect(k.printk.dmesg().join("\n")).toContain("software IO TLB: mapped [mem 0x0000000004000000-0x0000000008000000] (64MB)");
      expect(dma_stats(k).swiotlb_slots_total).toBe(32768);
    }
  });

  it("rounds its size up to whole 256 KiB segments, and is placed on the lowest RAM when none is below 4 GiB", () => {
    expect(swiotlb_info(setup("x86-coherent", (d) => (d.swiotlb.size = 300 * KiB)).k)!.nslabs).toBe(256);
    const t = setup("arm64-noncoherent", (d) => {
      d.memory.ram = [{ base: 0x880000000, size: 2 * 1024 * MiB, node: 0 }];
      d.memory.numaDistances = undefined;
      d.swiotlb.size = MiB;
    });
    expect(swiotlb_info(t.k)!.start).toBeGreaterThanOrEqual(0x880000000);
  });

  it("does not exist with size 0, and init runs once", () => {
    const t = setup("x86-coherent", (d) => (d.swiotlb.size = 0));
    expect(swiotlb_info(t.k)).toBeNull();
    expect(t.dmesg()).toContain("software IO TLB: no bounce buffer pool");
    expect(swiotlb_init(t.k)).toBeNull();
    const u = setup("x86-coherent");
    expect(swiotlb_init(u.k)).not.toBeNull();
    expect(u.k.pages.nodes).toBe(2);
  });
});

describe("when the direct path bounces (§6.1)", () => {
  it("a buffer beyond the mask bounces; a reachable one maps directly", () => {
    const t = setup("x86-coherent");
    const hi = t.high();
    const h = dma_map_page(t.dev, page(hi), 0, 64, DMA_TO_DEVICE);
    expect(t.inPool(h)).toBe(true);
    const low = kmalloc(64, 0);
    const d = dma_map_single(t.dev, low, 64, DMA_TO_DEVICE);
    expect(t.inPool(d)).toBe(false);
    expect(dma_stats(t.k).swiotlb_maps).toBe(1);
    dma_mapping_error(t.dev, h);
    dma_mapping_error(t.dev, d);
    dma_unmap_page(t.dev, h, 64, DMA_TO_DEVICE);
    dma_unmap_single(t.dev, d, 64, DMA_TO_DEVICE);
    expect(t.kinds()).toEqual([]);
  });

  it("force mode (machine swiotlb.force) bounces everything; a missing sync then shows even on x86", () => {
    const t = setup("x86-coherent", (d) => (d.swiotlb.force = true));
    dma_set_mask(t.dev, DMA_BIT_MASK(64));
    const buf = kmalloc(256, 0);
    t.cpuWrite(buf - t.va(0), pattern(256, 1));
    const h = dma_map_single(t.dev, buf, 256, DMA_FROM_DEVICE);
    dma_mapping_error(t.dev, h);
    expect(t.inPool(h)).toBe(true);
    expect(dma_need_sync(t.dev, h)).toBe(true);
    t.devWrite(h, pattern(256, 2));
    expect(t.cpuRead(buf - t.va(0), 256)).toEqual(pattern(256, 1)); // no sync_for_cpu: old bytes
    dma_unmap_single(t.dev, h, 256, DMA_FROM_DEVICE);
    expect(t.cpuRead(buf - t.va(0), 256)).toEqual(pattern(256, 2));
  });

  it("a device the platform marks (dma_io_tlb_force) bounces alone", () => {
    const t = setup("x86-coherent");
    const buf = kmalloc(64, 0);
    const d = dma_map_single(t.dev, buf, 64, DMA_TO_DEVICE);
    expect(t.inPool(d)).toBe(false);
    expect(dma_need_sync(t.dev, d)).toBe(false);
    t.dev.dma_io_tlb_force = true;
    const h = dma_map_single(t.dev, buf, 64, DMA_TO_DEVICE);
    expect(t.inPool(h)).toBe(true);
    for (const x of [d, h]) {
      dma_mapping_error(t.dev, x);
      dma_unmap_single(t.dev, x, 64, DMA_TO_DEVICE);
    }
  });

  it("routes in §6.1 order: force, then reachability, then the kmalloc rule; MMIO never bounces", () => {
    const t = setup("arm64-noncoherent", (d) => (d.arch.kmallocMinAlign = 8));
    const route = (phys: number, size: number, dir: 0 | 1 | 2, attrs = 0) => dma_direct_route(t.dev, phys, size, dir, attrs, t.k);
    const low = 0x200000;
    const hi = 0x880000000;
    expect([route(low, 4096, DMA_TO_DEVICE), route(hi, 4096, DMA_TO_DEVICE), route(low, 64, DMA_FROM_DEVICE), route(low, 64, DMA_TO_DEVICE)]).toEqual(["direct", "bounce", "bounce", "direct"]);
    expect([route(hi, 64, DMA_TO_DEVICE, DMA_ATTR_MMIO), route(low, 64, DMA_FROM_DEVICE, DMA_ATTR_MMIO)]).toEqual(["fail-mask", "direct"]);
    t.dev.dma_io_tlb_force = true;
    expect([route(low, 4096, DMA_TO_DEVICE), route(low, 64, DMA_TO_DEVICE, DMA_ATTR_MMIO), route(low, 64, DMA_TO_DEVICE, DMA_ATTR_REQUIRE_COHERENT)]).toEqual(["bounce", "fail-mmio", "fail-coherent"]);
  });

  it("DMA_ATTR_REQUIRE_COHERENT refuses to bounce", () => {
    const t = setup("x86-coherent");
    const h = dma_map_page_attrs(t.dev, page(t.high()), 0, 64, DMA_TO_DEVICE, DMA_ATTR_REQUIRE_COHERENT);
    expect(h).toBe(DMA_MAPPING_ERROR);
    expect(dma_stats(t.k).swiotlb_maps).toBe(0);
  });

  it("a slot the device cannot reach fails with the swiotlb overflow warning and gives the slots back", () => {
    const t = setup("x86-coherent");
    expect(dma_set_mask(t.dev, DMA_BIT_MASK(24))).toBe(0); // 16 MiB; the pool sits at 64 MiB
    const h = dma_map_page(t.dev, page(t.high()), 0, PAGE_SIZE, DMA_TO_DEVICE);
    expect(h).toBe(DMA_MAPPING_ERROR);
    expect(t.dmesg()).toContain("WARNING: swiotlb addr 0x0000000004000000+4096 overflow (mask ffffff, bus limit 0).");
    expect(t.kinds()).toEqual(["dma-mask-exceeded"]);
    expect(swiotlb_info(t.k)!.used).toBe(0);
    expect(dma_stats(t.k)).toMatchObject({ swiotlb_map_failures: 1, map_errors: 1, swiotlb_maps: 0 });
  });

  it("bounce runs respect the device's segment boundary", () => {
    const t = setup("x86-coherent");
    dma_set_seg_boundary(t.dev, 0xffff);
    for (let i = 0; i < 40; i++) {
      const h = dma_map_page(t.dev, page(t.high(8192)), 0, 6000, DMA_TO_DEVICE);
      dma_mapping_error(t.dev, h);
      expect(Math.floor(h / 0x10000)).toBe(Math.floor((h + 5999) / 0x10000));
    }
  });

  it("preserves min_align_mask bits of the original in the bus address", () => {
    const t = setup("arm64-noncoherent");
    dma_set_min_align_mask(t.dev, 0xfff);
    expect(dma_get_min_align_mask(t.dev)).toBe(0xfff);
    const hi = t.high();
    t.cpuWrite(hi, pattern(PAGE_SIZE, 3));
    const h = dma_map_page(t.dev, page(hi), 0xa40, 300, DMA_TO_DEVICE);
    dma_mapping_error(t.dev, h);
    expect(h & 0xfff).toBe(0xa40);
    expect(t.devRead(h, 300)).toEqual(pattern(PAGE_SIZE, 3).subarray(0xa40, 0xa40 + 300));
    dma_unmap_page(t.dev, h, 300, DMA_TO_DEVICE);
    expect(swiotlb_info(t.k)!.used).toBe(0);
  });
});

describe("dma_kmalloc_needs_bounce", () => {
  const small = (d: { arch: { kmallocMinAlign: number } }) => (d.arch.kmallocMinAlign = 8);

  it("bounces small FROM/BIDI sizes whose kmalloc class is not a multiple of ARCH_DMA_MINALIGN, on non-coherent devices", () => {
    const t = setup("arm64-noncoherent", small);
    const rule = (size: number, dir: 0 | 1 | 2) => dma_kmalloc_needs_bounce(t.dev, size, dir, t.k);
    expect([8, 64, 96, 100, 128, 129, 192, 200, 256, 4096].map((n) => rule(n, DMA_FROM_DEVICE))).toEqual([true, true, true, false, false, true, true, false, false, false]);
    expect(rule(64, DMA_BIDIRECTIONAL)).toBe(true);
    expect(rule(64, DMA_TO_DEVICE)).toBe(false);
    t.dev.dma_coherent = true;
    expect(rule(64, DMA_FROM_DEVICE)).toBe(false);
  });

  it("maps such a kmalloc buffer through a slot, and the data arrives", () => {
    const t = setup("arm64-noncoherent", small);
    const buf = kmalloc(64, 0);
    expect(ksize(buf)).toBe(64);
    const h = dma_map_single(t.dev, buf, 64, DMA_FROM_DEVICE);
    dma_mapping_error(t.dev, h);
    expect(t.inPool(h)).toBe(true);
    t.devWrite(h, pattern(64, 5));
    dma_unmap_single(t.dev, h, 64, DMA_FROM_DEVICE);
    expect(t.cpuRead(buf - t.va(0), 64)).toEqual(pattern(64, 5));
    kfree(buf);
  });

  it("never applies where kmalloc is already DMA-aligned (the arm64 profile), nor without a pool", () => {
    const a = setup("arm64-noncoherent");
    expect(dma_kmalloc_needs_bounce(a.dev, 64, DMA_FROM_DEVICE, a.k)).toBe(false);
    const b = setup("arm64-noncoherent", (d) => {
      small(d);
      d.swiotlb.size = 0;
    });
    expect(dma_kmalloc_needs_bounce(b.dev, 64, DMA_FROM_DEVICE, b.k)).toBe(false);
  });

  it("kmalloc_size_roundup agrees with what kmalloc hands out", () => {
    for (const align of [8, 128]) {
      const t = setup("arm64-noncoherent", (d) => (d.arch.kmallocMinAlign = align));
      for (const n of [1, 8, 9, 60, 96, 97, 130, 192, 193, 1000, 4096, 8192, 8193, 20000]) {
        const p = kmalloc(n, 0);
        expect(kmalloc_size_roundup(t.k, n), `size ${n}, align ${align}`).toBe(ksize(p));
      }
    }
  });
});

describe("a full pool, no pool, and the mapping size limit", () => {
  it("fails with the rate-limited 'swiotlb buffer is full' message; NO_WARN keeps quiet", async () => {
    const t = setup("x86-coherent", (d) => (d.swiotlb.size = 256 * KiB));
    const hi = t.high(512 * KiB);
    const a = dma_map_page(t.dev, page(hi), 0, 128 * KiB, DMA_TO_DEVICE);
    const b = dma_map_page(t.dev, page(hi + 128 * KiB), 0, 128 * KiB, DMA_TO_DEVICE);
    expect([a, b].every((x) => t.inPool(x))).toBe(true);
    expect(dma_map_page(t.dev, page(hi + 256 * KiB), 0, 4 * KiB, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(t.dmesg()).toContain("testdrv 0000:00:03.0: swiotlb buffer is full (sz: 4096 bytes), total 128 (slots), used 128 (slots)");
    const lines = () => t.k.printk.dmesg().filter((l) => l.includes("swiotlb buffer is full")).length;
    expect(dma_map_page_attrs(t.dev, page(hi), 0, 64, DMA_TO_DEVICE, DMA_ATTR_NO_WARN)).toBe(DMA_MAPPING_ERROR);
    expect(lines()).toBe(1);
    for (let i = 0; i < 12; i++) dma_map_page(t.dev, page(hi), 0, 64, DMA_TO_DEVICE);
    expect(lines()).toBe(10); // 10 per 5 s
    t.k.platform.after(6e9, "later", () => {});
    await t.k.run();
    dma_map_page(t.dev, page(hi), 0, 64, DMA_TO_DEVICE);
    expect(lines()).toBe(11);
    expect(t.dmesg()).toContain("swiotlb_tbl_map_single: 3 callbacks suppressed");
    expect(t.kinds()).toEqual([]); // a full pool is a condition, not a driver bug
    expect(t.k.warnings).toBe(0);
    for (const x of [a, b]) {
      dma_mapping_error(t.dev, x);
      dma_unmap_page(t.dev, x, 128 * KiB, DMA_TO_DEVICE);
    }
    expect(dma_stats(t.k)).toMatchObject({ swiotlb_slots_used: 0, swiotlb_slots_hiwater: 128, swiotlb_map_failures: 15 });
  });

  it("without a pool an unreachable buffer fails with the overflow finding; forced bouncing says it cannot", () => {
    const t = setup("x86-coherent", (d) => (d.swiotlb.size = 0));
    expect(dma_map_page(t.dev, page(t.high()), 0, 64, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(t.kinds()).toEqual(["dma-mask-exceeded"]);
    expect(t.dmesg()).toContain("DMA addr 0x0000000100000000+64 overflow");
    t.dev.dma_io_tlb_force = true;
    expect(dma_map_single(t.dev, kmalloc(64, 0), 64, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(t.dmesg()).toContain("Can not allocate SWIOTLB buffer earlier and can't now provide you with the DMA bounce buffer");
  });

  it("dma_max_mapping_size is 256 KiB for a device that may bounce, less min_align padding, else unlimited", () => {
    const t = setup("x86-coherent");
    expect(dma_max_mapping_size(t.dev)).toBe(256 * KiB); // 32-bit mask, RAM to 6 GiB
    dma_set_min_align_mask(t.dev, 0xfff);
    expect(dma_max_mapping_size(t.dev)).toBe(256 * KiB - 4096);
    dma_set_min_align_mask(t.dev, 0);
    dma_set_mask(t.dev, DMA_BIT_MASK(64));
    expect(dma_max_mapping_size(t.dev)).toBe(Number.MAX_SAFE_INTEGER);
    t.dev.dma_io_tlb_force = true;
    expect(dma_max_mapping_size(t.dev)).toBe(256 * KiB);
    const n = setup("x86-coherent", (d) => (d.swiotlb.size = 0));
    expect(dma_max_mapping_size(n.dev)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("a bounce larger than 256 KiB cannot be served", () => {
    const t = setup("x86-coherent");
    expect(dma_map_page(t.dev, page(t.high(512 * KiB)), 0, 256 * KiB + 1, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(t.dmesg()).toContain("swiotlb buffer is full (sz: 262145 bytes), total 32768 (slots), used 0 (slots)");
  });
});

describe("unmaps that do not match the map", () => {
  it("a wrong size frees exactly the slots mapped and never copies past the mapping", () => {
    const t = setup("arm64-noncoherent");
    const a = t.high(8192);
    const b = t.high(8192);
    t.cpuWrite(a + PAGE_SIZE, pattern(PAGE_SIZE, 9)); // the page after A's buffer
    const ha = dma_map_page(t.dev, page(a), 0, PAGE_SIZE, DMA_FROM_DEVICE);
    const hb = dma_map_page(t.dev, page(b), 0, PAGE_SIZE, DMA_FROM_DEVICE);
    dma_mapping_error(t.dev, ha);
    dma_mapping_error(t.dev, hb);
    expect(hb).toBe(ha + PAGE_SIZE); // neighbouring slots
    t.devWrite(ha, pattern(2 * PAGE_SIZE, 1)); // fills A's slots and B's
    dma_unmap_page(t.dev, ha, 2 * PAGE_SIZE, DMA_FROM_DEVICE); // twice the mapped size
    expect(t.dmesg()).toContain("Buffer overflow detected. Allocation size: 4096. Mapping size: 8192.");
    expect(t.cpuRead(a, PAGE_SIZE)).toEqual(pattern(2 * PAGE_SIZE, 1).subarray(0, PAGE_SIZE));
    expect(t.cpuRead(a + PAGE_SIZE, PAGE_SIZE)).toEqual(pattern(PAGE_SIZE, 9));
    expect(swiotlb_info(t.k)!.used).toBe(2); // only A's two slots went back
    dma_unmap_page(t.dev, hb, 100, DMA_FROM_DEVICE); // too small: still all of B's slots
    expect(swiotlb_info(t.k)!.used).toBe(0);
    expect(t.kinds()).toEqual(["unmap-wrong-size", "unmap-wrong-size"]);
  });

  it("a double unmap leaves the pool alone", () => {
    const t = setup("x86-coherent");
    const ha = dma_map_page(t.dev, page(t.high()), 0, 64, DMA_TO_DEVICE);
    const hb = dma_map_page(t.dev, page(t.high()), 0, 64, DMA_TO_DEVICE);
    dma_mapping_error(t.dev, ha);
    dma_mapping_error(t.dev, hb);
    dma_unmap_page(t.dev, ha, 64, DMA_TO_DEVICE);
    dma_unmap_page(t.dev, ha, 64, DMA_TO_DEVICE);
    expect(swiotlb_info(t.k)!.used).toBe(1);
    expect(t.kinds()).toEqual(["unmap-not-mapped"]);
    dma_unmap_page(t.dev, hb, 64, DMA_TO_DEVICE);
    expect(swiotlb_info(t.k)!.used).toBe(0);
  });
});
