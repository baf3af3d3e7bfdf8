import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { KernelOops } from "../../../../kernel/core/oops.ts";
import { device } from "../../../../kernel/include/device.ts";
import { PAGE_SIZE, type dma_addr_t } from "../../../../kernel/include/types.ts";
import { kmalloc, kzalloc, vmalloc, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import { copy_from_user, copy_to_user } from "../../../../kernel/mm/access.ts";
import { REGION_STACK, REGION_UNCACHED, REGION_SIZE } from "../../../../kernel/mm/layout.ts";
import {
  DMA_ATTR_REQUIRE_COHERENT,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_NONE,
  DMA_TO_DEVICE,
  type dma_data_direction,
  dma_map_page,
  dma_map_single,
  dma_map_single_attrs,
  dma_mapping_error,
  dma_need_sync,
  dma_set_mask,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_unmap_page,
  dma_unmap_single,
  dma_unmap_single_attrs,
} from "../../../../kernel/include/dma-mapping.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { dma_stats } from "../../../../kernel/dma/state.ts";

type ProfileName = "x86-coherent" | "arm64-noncoherent";

function boot(profile: ProfileName) {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  const board = new Board(desc, { seed: 1 });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  dev.driver = { name: "testdrv" };
  const coherent = desc.dma.coherent;
  const devRead = (addr: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    expect(board.mem.deviceRead(addr, out, 0, len, coherent)).toBe(true);
    return out;
  };
  const devWrite = (addr: number, data: Uint8Array): void => {
    expect(board.mem.deviceWrite(addr, data, 0, data.length, coherent)).toBe(true);
  };
  const cpuRead = (va: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    copy_to_user(out, va, len);
    return out;
  };
  const kinds = () => k.findings.list.map((f) => f.kind);
  return { board, k, dev, devRead, devWrite, cpuRead, kinds };
}

const pattern = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed) & 0xff);
const LEN = 512;

describe("FROM_DEVICE on arm64-noncoherent", () => {
  it("map + device write + sync_for_cpu: the CPU reads the fresh bytes", () => {
    const { dev, devWrite, cpuRead, kinds } = boot("arm64-noncoherent");
    const buf = kmalloc(LEN, 0);
    copy_from_user(buf, pattern(LEN, 1)); // the lines are cached (dirty) before the map
    const h = dma_map_single(dev, buf, LEN, DMA_FROM_DEVICE);
    expect(dma_mapping_error(dev, h)).toBe(0);
    expect(h).toBe(virt_to_phys(buf)); // direct path: bus address = physical address
    devWrite(h, pattern(LEN, 2));
    dma_sync_single_for_cpu(dev, h, LEN, DMA_FROM_DEVICE);
    expect(cpuRead(buf, LEN)).toEqual(pattern(LEN, 2));
    dma_unmap_single(dev, h, LEN, DMA_FROM_DEVICE);
    expect(cpuRead(buf, LEN)).toEqual(pattern(LEN, 2));
    expect(kinds()).toEqual([]);
    expect(dma_debug_live()).toEqual([]);
  });

  it("without the sync the CPU reads the stale cached bytes", () => {
    const { dev, devWrite, cpuRead } = boot("arm64-noncoherent");
    const buf = kmalloc(LEN, 0);
    copy_from_user(buf, pattern(LEN, 1));
    const h = dma_map_single(dev, buf, LEN, DMA_FROM_DEVICE);
    dma_mapping_error(dev, h);
    devWrite(h, pattern(LEN, 2));
    expect(cpuRead(buf, LEN)).toEqual(pattern(LEN, 1));
  });

  it("the map cleans instead of invalidating: CPU bytes the device does not overwrite survive", () => {
    const { dev, devWrite, cpuRead } = boot("arm64-noncoherent");
    const buf = kmalloc(LEN, 0);
    copy_from_user(buf, pattern(LEN, 1));
    const h = dma_map_single(dev, buf, LEN, DMA_FROM_DEVICE);
    dma_mapping_error(dev, h);
    devWrite(h, pattern(256, 9)); // the device fills only the first half
    dma_unmap_single(dev, h, LEN, DMA_FROM_DEVICE);
    const seen = cpuRead(buf, LEN);
    expect(seen.subarray(0, 256)).toEqual(pattern(256, 9));
    expect(seen.subarray(256)).toEqual(pattern(LEN, 1).subarray(256));
  });

  it("a partial dma_sync_single_range_for_cpu refreshes exactly that range", () => {
    const { dev, devWrite, cpuRead, kinds } = boot("arm64-noncoherent");
    const buf = kmalloc(LEN, 0);
    copy_from_user(buf, pattern(LEN, 1));
    const h = dma_map_single(dev, buf, LEN, DMA_FROM_DEVICE);
    dma_mapping_error(dev, h);
    devWrite(h, pattern(LEN, 2));
    dma_sync_single_range_for_cpu(dev, h, 128, 128, DMA_FROM_DEVICE);
    const seen = cpuRead(buf, LEN);
    expect(seen.subarray(128, 256)).toEqual(pattern(LEN, 2).subarray(128, 256));
    expect(seen.subarray(0, 128)).toEqual(pattern(LEN, 1).subarray(0, 128));
    dma_unmap_single(dev, h, LEN, DMA_FROM_DEVICE);
    expect(kinds()).toEqual([]);
  });
});

describe("TO_DEVICE on arm64-noncoherent", () => {
  it("CPU write then map: the device reads the new bytes", () => {
    const { dev, devRead } = boot("arm64-noncoherent");
    const buf = kzalloc(LEN, 0);
    copy_from_user(buf, pattern(LEN, 3));
    const h = dma_map_single(dev, buf, LEN, DMA_TO_DEVICE);
    dma_mapping_error(dev, h);
    expect(devRead(h, LEN)).toEqual(pattern(LEN, 3));
    dma_unmap_single(dev, h, LEN, DMA_TO_DEVICE);
  });

  it("without a map the device reads the old RAM", () => {
    const { devRead } = boot("arm64-noncoherent");
    const buf = kzalloc(LEN, 0);
    copy_from_user(buf, pattern(LEN, 3));
    expect(devRead(virt_to_phys(buf), LEN)).toEqual(new Uint8Array(LEN));
  });

  it("a CPU write after the map needs sync_for_device (after sync_for_cpu) to reach the device", () => {
    const { dev, devRead, kinds } = boot("arm64-noncoherent");
    const buf = kzalloc(LEN, 0);
    const h = dma_map_single(dev, buf, LEN, DMA_TO_DEVICE);
    dma_mapping_error(dev, h);
    dma_sync_single_for_cpu(dev, h, LEN, DMA_TO_DEVICE);
    copy_from_user(buf, pattern(LEN, 4));
    expect(devRead(h, LEN)).toEqual(new Uint8Array(LEN));
    dma_sync_single_for_device(dev, h, LEN, DMA_TO_DEVICE);
    expect(devRead(h, LEN)).toEqual(pattern(LEN, 4));
    dma_unmap_single(dev, h, LEN, DMA_TO_DEVICE);
    expect(kinds()).toEqual([]);
  });

  it("DMA_ATTR_SKIP_CPU_SYNC skips the clean (the device sees old RAM)", () => {
    const { k, dev, devRead } = boot("arm64-noncoherent");
    const buf = kzalloc(LEN, 0);
    copy_from_user(buf, pattern(LEN, 3));
    const h = dma_map_single_attrs(dev, buf, LEN, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    dma_mapping_error(dev, h);
    expect(devRead(h, LEN)).toEqual(new Uint8Array(LEN));
    dma_unmap_single_attrs(dev, h, LEN, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    expect(dma_stats(k).cache_ops).toBe(0);
  });
});

describe("x86-coherent", () => {
  it("sees fresh data in both directions with or without syncs, and does no cache maintenance", () => {
    const { k, dev, devRead, devWrite, cpuRead, kinds } = boot("x86-coherent");
    const rx = kmalloc(LEN, 0);
    copy_from_user(rx, pattern(LEN, 1));
    const hr = dma_map_single(dev, rx, LEN, DMA_FROM_DEVICE);
    dma_mapping_error(dev, hr);
    devWrite(hr, pattern(LEN, 2));
    expect(cpuRead(rx, LEN)).toEqual(pattern(LEN, 2)); // even before the sync
    dma_sync_single_for_cpu(dev, hr, LEN, DMA_FROM_DEVICE);
    dma_unmap_single(dev, hr, LEN, DMA_FROM_DEVICE);

    const tx = kzalloc(LEN, 0);
    copy_from_user(tx, pattern(LEN, 3));
    expect(devRead(virt_to_phys(tx), LEN)).toEqual(pattern(LEN, 3)); // even unmapped
    const ht = dma_map_single(dev, tx, LEN, DMA_TO_DEVICE);
    dma_mapping_error(dev, ht);
    expect(devRead(ht, LEN)).toEqual(pattern(LEN, 3));
    dma_unmap_single(dev, ht, LEN, DMA_TO_DEVICE);

    expect(dma_need_sync(dev, ht)).toBe(false);
    expect(dma_stats(k)).toMatchObject({ maps: 2, unmaps: 2, syncs_for_cpu: 1, cache_ops: 0, lines_cleaned: 0, lines_invalidated: 0 });
    expect(kinds()).toEqual([]);
  });
});

describe("dma_map_page", () => {
  it("maps page + offset and must be unmapped with dma_unmap_page", () => {
    const { dev, devWrite, cpuRead, kinds } = boot("arm64-noncoherent");
    const buf = kmalloc(2 * PAGE_SIZE, 0);
    const phys = virt_to_phys(buf);
    const h = dma_map_page(dev, { pfn: phys / PAGE_SIZE }, 100, 300, DMA_BIDIRECTIONAL);
    expect(dma_mapping_error(dev, h)).toBe(0);
    expect(h).toBe(phys + 100);
    devWrite(h, pattern(300, 5));
    dma_unmap_page(dev, h, 300, DMA_BIDIRECTIONAL);
    expect(cpuRead(buf + 100, 300)).toEqual(pattern(300, 5));
    expect(kinds()).toEqual([]);
  });

  it("refuses a page that is not RAM", () => {
    const { dev, kinds } = boot("x86-coherent");
    const h = dma_map_page(dev, { pfn: 0xc0000000 / PAGE_SIZE }, 0, 64, DMA_TO_DEVICE);
    expect(dma_mapping_error(dev, h)).not.toBe(0);
    expect(kinds()).toEqual(["map-invalid-memory"]);
  });
});

describe("addressing", () => {
  it("refuses a buffer beyond the DMA mask with a finding and an overflow line, and maps it once the mask allows", () => {
    const { k, dev, kinds } = boot("arm64-noncoherent");
    const phys = k.pages.alloc(0, 1); // node 1 starts at 0x880000000, above 32 bits
    expect(phys).toBeGreaterThanOrEqual(0x880000000);
    const h = dma_map_page(dev, { pfn: phys / PAGE_SIZE }, 0, PAGE_SIZE, DMA_TO_DEVICE);
    expect(h).toBe(DMA_MAPPING_ERROR);
    expect(dma_mapping_error(dev, h)).toBe(-12);
    expect(kinds()).toEqual(["dma-mask-exceeded"]);
    expect(k.printk.dmesg().join("\n")).toContain("DMA addr 0x0000000880000000+4096 overflow (mask ffffffff, bus limit 0).");
    expect(k.warnings).toBe(1);
    expect(dma_stats(k).map_errors).toBe(1);
    dma_set_mask(dev, DMA_BIT_MASK(64));
    const h2 = dma_map_page(dev, { pfn: phys / PAGE_SIZE }, 0, PAGE_SIZE, DMA_TO_DEVICE);
    expect(dma_mapping_error(dev, h2)).toBe(0);
    dma_unmap_page(dev, h2, PAGE_SIZE, DMA_TO_DEVICE);
    expect(kinds()).toEqual(["dma-mask-exceeded"]);
  });

  it("checks the last byte: a buffer straddling the mask fails", () => {
    const { dev, kinds } = boot("x86-coherent");
    dma_set_mask(dev, DMA_BIT_MASK(28));
    const h = dma_map_page(dev, { pfn: (1 << 28) / PAGE_SIZE - 1 }, 4000, 200, DMA_TO_DEVICE);
    expect(h).toBe(DMA_MAPPING_ERROR);
    expect(kinds()).toEqual(["dma-mask-exceeded"]);
  });

  it("DMA_ATTR_REQUIRE_COHERENT fails on a non-coherent device only", () => {
    for (const p of ["x86-coherent", "arm64-noncoherent"] as const) {
      const { dev } = boot(p);
      const buf = kmalloc(64, 0);
      const h = dma_map_single_attrs(dev, buf, 64, DMA_TO_DEVICE, DMA_ATTR_REQUIRE_COHERENT);
      expect(dma_mapping_error(dev, h) !== 0).toBe(p === "arm64-noncoherent");
      if (h !== DMA_MAPPING_ERROR) dma_unmap_single(dev, h, 64, DMA_TO_DEVICE);
    }
  });
});

describe("memory kinds", () => {
  it("rejects vmalloc memory with a one-time WARN and a map-invalid-memory finding each time", () => {
    const { k, dev, kinds } = boot("arm64-noncoherent");
    const v = vmalloc(LEN);
    expect(dma_map_single(dev, v, LEN, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(dma_map_single(dev, v, LEN, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(kinds()).toEqual(["map-invalid-memory", "map-invalid-memory"]);
    const warnings = k.printk.dmesg().filter((l) => l.includes("WARNING: rejecting DMA map of vmalloc memory"));
    expect(warnings).toHaveLength(1);
    expect(k.warnings).toBe(1);
    expect(dma_debug_live()).toEqual([]);
  });

  it("rejects the uncached alias and junk addresses", () => {
    const { dev, kinds } = boot("arm64-noncoherent");
    expect(dma_map_single(dev, REGION_UNCACHED * REGION_SIZE + 0x200000, 64, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(dma_map_single(dev, 12345, 64, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(kinds()).toEqual(["map-invalid-memory", "map-invalid-memory"]);
  });

  it("maps stack memory but reports map-stack-memory", () => {
    const { k, dev, kinds } = boot("arm64-noncoherent");
    const phys = k.pages.alloc(1, 0);
    const stack = k.aspace.mapPages(REGION_STACK, [phys / PAGE_SIZE, phys / PAGE_SIZE + 1]);
    const h = dma_map_single(dev, stack + 4000, 200, DMA_FROM_DEVICE);
    expect(dma_mapping_error(dev, h)).toBe(0);
    expect(h).toBe(phys + 4000);
    dma_unmap_single(dev, h, 200, DMA_FROM_DEVICE);
    expect(kinds()).toEqual(["map-stack-memory"]);
  });

  it("refuses stack memory whose pages are not physically contiguous", () => {
    const { k, dev, kinds } = boot("arm64-noncoherent");
    const a = k.pages.alloc(0, 0);
    k.pages.alloc(0, 0);
    const b = k.pages.alloc(0, 0);
    const stack = k.aspace.mapPages(REGION_STACK, [a / PAGE_SIZE, b / PAGE_SIZE]);
    expect(dma_map_single(dev, stack + 4000, 200, DMA_FROM_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(kinds()).toEqual(["map-invalid-memory"]);
  });
});

describe("directions", () => {
  it("mapping, syncing or unmapping with DMA_NONE or junk is a kernel BUG", () => {
    const { dev } = boot("x86-coherent");
    const buf = kmalloc(64, 0);
    expect(() => dma_map_single(dev, buf, 64, DMA_NONE)).toThrow(KernelOops);
    expect(() => dma_map_single(dev, buf, 64, 7 as dma_data_direction)).toThrow(/invalid direction/);
    const h = dma_map_single(dev, buf, 64, DMA_TO_DEVICE);
    dma_mapping_error(dev, h);
    expect(() => dma_sync_single_for_cpu(dev, h, 64, DMA_NONE)).toThrow(KernelOops);
    expect(() => dma_unmap_single(dev, h, 64, DMA_NONE)).toThrow(KernelOops);
    dma_unmap_single(dev, h, 64, DMA_TO_DEVICE);
  });

  it("the BUG becomes an oops when driver code hits it", () => {
    const { k, dev, kinds } = boot("x86-coherent");
    const buf = kmalloc(64, 0);
    const r = k.exec.runOn(0, "process", "testdrv", "probe", () => dma_map_single(dev, buf, 64, DMA_NONE));
    expect(r).toBeUndefined();
    expect(kinds()).toEqual(["oops"]);
    expect(k.findings.list[0].driver).toBe("testdrv");
  });
});

describe("statistics", () => {
  it("counts maps, unmaps, syncs, bytes and the lines each direction maintains", () => {
    const { k, dev } = boot("arm64-noncoherent");
    const buf = kmalloc(LEN, 0);
    const h = dma_map_single(dev, buf, LEN, DMA_BIDIRECTIONAL) as dma_addr_t;
    dma_mapping_error(dev, h);
    dma_sync_single_for_cpu(dev, h, LEN, DMA_BIDIRECTIONAL);
    dma_sync_single_for_device(dev, h, LEN, DMA_BIDIRECTIONAL);
    dma_unmap_single(dev, h, LEN, DMA_BIDIRECTIONAL);
    expect(dma_stats(k)).toMatchObject({
      maps: 1,
      unmaps: 1,
      syncs_for_cpu: 1,
      syncs_for_device: 1,
      bytes_mapped: LEN,
      lines_cleaned: 16, // map + sync_for_device: 8 lines each
      lines_invalidated: 16, // sync_for_cpu + unmap
    });
  });
});
