/**
 * swiotlb copies, cell by cell of spec §6.3 (map, sync_for_device, sync_for_cpu, unmap x
 * TO / FROM / BIDI), on both profiles, and the cache maintenance of the bounce slot on arm64.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { PAGE_SIZE } from "../../../../kernel/include/types.ts";
import {
  DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, type dma_data_direction,
  dma_map_page, dma_map_page_attrs, dma_mapping_error, dma_sync_single_for_cpu, dma_sync_single_for_device,
  dma_sync_single_range_for_cpu, dma_unmap_page, dma_unmap_page_attrs,
} from "../../../../kernel/include/dma-mapping.ts";
import { dma_stats } from "../../../../kernel/dma/state.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { swiotlb_bouncing } from "../../../../kernel/dma/swiotlb.ts";
import { set_cpu_access_observer } from "../../../../kernel/mm/access.ts";
import { pattern, setup, type ProfileName } from "./swiotlb-setup.ts";

const LEN = 3000; // two slots, the second partly used
const DIRS: [string, dma_data_direction][] = [["TO_DEVICE", DMA_TO_DEVICE], ["FROM_DEVICE", DMA_FROM_DEVICE], ["BIDIRECTIONAL", DMA_BIDIRECTIONAL]];
const PROFILES: ProfileName[] = ["x86-coherent", "arm64-noncoherent"];

afterEach(() => set_cpu_access_observer(null));

describe("§6.3: when copies happen", () => {
  for (const profile of PROFILES) {
    for (const [name, dir] of DIRS) {
      const toDev = dir !== DMA_FROM_DEVICE;
      const toCpu = dir !== DMA_TO_DEVICE;
      it(`${name} on ${profile}: map always copies; sync_for_device ${toDev ? "copies" : "does not"}; sync_for_cpu and unmap ${toCpu ? "copy back" : "do not"}`, () => {
        const t = setup(profile);
        const orig = t.high();
        const A = pattern(LEN, 1);
        t.cpuWrite(orig, A);
        const h = dma_map_page(t.dev, { pfn: orig / PAGE_SIZE }, 0, LEN, dir);
        expect(dma_mapping_error(t.dev, h)).toBe(0);
        expect(t.inPool(h)).toBe(true);
        // map: original -> slot, for every direction (and the device sees it: on arm64 the
        // slot was cleaned after the CPU's copy)
        expect(t.devRead(h, LEN)).toEqual(A);
        expect(dma_stats(t.k).swiotlb_bytes_map).toBe(LEN);

        // sync_for_cpu: slot -> original for FROM / BIDI only
        const B = pattern(LEN, 2);
        t.devWrite(h, B);
        dma_sync_single_for_cpu(t.dev, h, LEN, dir);
        expect(t.cpuRead(orig, LEN)).toEqual(toCpu ? B : A);
        expect(dma_stats(t.k).swiotlb_bytes_sync_for_cpu).toBe(toCpu ? LEN : 0);

        // sync_for_device: original -> slot for TO / BIDI only
        const C = pattern(LEN, 3);
        t.cpuWrite(orig, C);
        dma_sync_single_for_device(t.dev, h, LEN, dir);
        expect(t.devRead(h, LEN)).toEqual(toDev ? C : B);
        expect(dma_stats(t.k).swiotlb_bytes_sync_for_device).toBe(toDev ? LEN : 0);

        // unmap: slot -> original for FROM / BIDI only
        const D = pattern(LEN, 4);
        t.devWrite(h, D);
        dma_unmap_page(t.dev, h, LEN, dir);
        expect(t.cpuRead(orig, LEN)).toEqual(toCpu ? D : C);
        const s = dma_stats(t.k);
        expect(s.swiotlb_bytes_unmap).toBe(toCpu ? LEN : 0);
        expect(s.swiotlb_bytes_to_bounce).toBe(LEN + (toDev ? LEN : 0));
        expect(s.swiotlb_bytes_from_bounce).toBe(toCpu ? 2 * LEN : 0);
        expect(s.swiotlb_slots_used).toBe(0);
        expect(s.swiotlb_slots_hiwater).toBe(2);
        expect(t.kinds()).toEqual([]);
      });
    }
  }

  it("DMA_ATTR_SKIP_CPU_SYNC: the map still fills the slot, the unmap copies nothing back", () => {
    const t = setup("arm64-noncoherent");
    const orig = t.high();
    t.cpuWrite(orig, pattern(LEN, 1));
    const h = dma_map_page_attrs(t.dev, { pfn: orig / PAGE_SIZE }, 0, LEN, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    expect(dma_mapping_error(t.dev, h)).toBe(0);
    // The slot holds the original (no stale data of a previous user), as the CPU sees it: with
    // SKIP_CPU_SYNC the cache maintenance is the caller's business, so the device may not yet.
    expect(t.cpuRead(h, LEN)).toEqual(pattern(LEN, 1));
    t.devWrite(h, pattern(LEN, 2));
    dma_unmap_page_attrs(t.dev, h, LEN, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    expect(t.cpuRead(orig, LEN)).toEqual(pattern(LEN, 1));
    expect(dma_stats(t.k).swiotlb_bytes_unmap).toBe(0);
    expect(dma_stats(t.k).swiotlb_slots_used).toBe(0);
  });

  it("a partial sync copies exactly its range, even starting mid-slot in the second slot", () => {
    for (const profile of PROFILES) {
      const t = setup(profile);
      const orig = t.high(8192);
      const size = 6000;
      t.cpuWrite(orig, pattern(size, 1));
      const h = dma_map_page(t.dev, { pfn: orig / PAGE_SIZE }, 0, size, DMA_BIDIRECTIONAL);
      dma_mapping_error(t.dev, h);
      t.devWrite(h, pattern(size, 2));
      dma_sync_single_range_for_cpu(t.dev, h, 3000, 2500, DMA_BIDIRECTIONAL);
      const seen = t.cpuRead(orig, size);
      expect(seen.subarray(0, 3000)).toEqual(pattern(size, 1).subarray(0, 3000));
      expect(seen.subarray(3000, 5500)).toEqual(pattern(size, 2).subarray(3000, 5500));
      expect(seen.subarray(5500)).toEqual(pattern(size, 1).subarray(5500));
      expect(dma_stats(t.k).swiotlb_bytes_sync_for_cpu).toBe(2500);
      dma_unmap_page(t.dev, h, size, DMA_BIDIRECTIONAL);
      expect(t.kinds()).toEqual([]);
    }
  });

  it("dma-debug records the bounce slot as the bus address and the original as phys", () => {
    const t = setup("x86-coherent");
    const orig = t.high();
    const h = dma_map_page(t.dev, { pfn: orig / PAGE_SIZE }, 16, 100, DMA_TO_DEVICE);
    dma_mapping_error(t.dev, h);
    const [e] = dma_debug_live(t.dev);
    expect(e).toMatchObject({ dev_addr: h, phys: orig + 16, size: 100 });
    dma_unmap_page(t.dev, h, 100, DMA_TO_DEVICE);
  });
});

describe("the bounce slot's cache maintenance", () => {
  it("on arm64 cleans the slot at map and sync_for_device and invalidates it at sync_for_cpu and unmap, never the original", () => {
    const t = setup("arm64-noncoherent");
    const clean = vi.spyOn(t.k.platform, "cacheClean");
    const inval = vi.spyOn(t.k.platform, "cacheInvalidate");
    const flush = vi.spyOn(t.k.platform, "cacheFlush");
    const orig = t.high();
    const h = dma_map_page(t.dev, { pfn: orig / PAGE_SIZE }, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
    dma_mapping_error(t.dev, h);
    expect(clean.mock.calls.map((c) => [c[1], c[2]])).toEqual([[h, PAGE_SIZE]]);
    dma_sync_single_for_cpu(t.dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    dma_sync_single_for_device(t.dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    dma_unmap_page(t.dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    const ranges = [...clean.mock.calls, ...inval.mock.calls, ...flush.mock.calls].map((c) => c[1]);
    expect(ranges.every((a) => t.inPool(a))).toBe(true);
    expect(inval.mock.calls.map((c) => [c[1], c[2]])).toEqual([[h, PAGE_SIZE], [h, PAGE_SIZE]]);
    expect(clean.mock.calls).toHaveLength(2);
  });

  it("on arm64 the CPU's copy back reads the device's bytes, not lines it cached during the map copy", () => {
    const t = setup("arm64-noncoherent");
    const orig = t.high();
    t.cpuWrite(orig, pattern(PAGE_SIZE, 1));
    const h = dma_map_page(t.dev, { pfn: orig / PAGE_SIZE }, 0, PAGE_SIZE, DMA_FROM_DEVICE);
    dma_mapping_error(t.dev, h);
    t.devWrite(h, pattern(PAGE_SIZE, 2)); // the slot's lines are still in the CPU cache (clean)
    dma_unmap_page(t.dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    expect(t.cpuRead(orig, PAGE_SIZE)).toEqual(pattern(PAGE_SIZE, 2));
  });

  it("on x86-coherent does no cache maintenance at all", () => {
    const t = setup("x86-coherent");
    const ops = [vi.spyOn(t.k.platform, "cacheClean"), vi.spyOn(t.k.platform, "cacheInvalidate"), vi.spyOn(t.k.platform, "cacheFlush")];
    const orig = t.high();
    const h = dma_map_page(t.dev, { pfn: orig / PAGE_SIZE }, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
    dma_mapping_error(t.dev, h);
    dma_sync_single_for_cpu(t.dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    dma_unmap_page(t.dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    for (const op of ops) expect(op).not.toHaveBeenCalled();
    expect(dma_stats(t.k).cache_ops).toBe(0);
  });

  it("copies are CPU accesses through the cache, flagged as the DMA layer's own", () => {
    const t = setup("arm64-noncoherent");
    const orig = t.high();
    const seen: { phys: number; write: boolean; bouncing: boolean }[] = [];
    set_cpu_access_observer({ onCpuAccess: (_va, phys, _len, isWrite) => void seen.push({ phys, write: isWrite, bouncing: swiotlb_bouncing(t.k) }) });
    const h = dma_map_page(t.dev, { pfn: orig / PAGE_SIZE }, 0, 512, DMA_TO_DEVICE);
    dma_mapping_error(t.dev, h);
    set_cpu_access_observer(null);
    expect(seen).toEqual([
      { phys: orig, write: false, bouncing: true },
      { phys: h, write: true, bouncing: true },
    ]);
    expect(swiotlb_bouncing(t.k)).toBe(false);
    dma_unmap_page(t.dev, h, 512, DMA_TO_DEVICE);
  });
});
