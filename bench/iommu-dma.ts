/**
 * DMA through the IOMMU versus the same machine without one, in the same process
 * (issue 4: "IOTLB hits should keep it within 1.5x").
 *
 * The workload is sg256's: scattered 4 KiB pages in a scatterlist, DMA_TO_DEVICE, the device
 * reading every byte through its DMA port in 4 KiB bursts. Two shapes:
 * - steady: the list is mapped once (through the IOMMU, dma_map_sg merges it into a few IOVA
 *   segments) and the device streams it again and again, as a NIC does its ring: the IOMMU's
 *   cost is one IOTLB lookup per page, plus a walk per miss. With 48 pages the working set
 *   fits the profiles' 64-entry IOTLB (hits); with 256 pages it cycles through it, so every
 *   page misses and the paging-structure cache decides the miss cost (one entry read);
 * - cycle: map, stream once, unmap, each time: adds IOVA allocation, page-table writes by the
 *   CPU through the cache model and the invalidation at unmap (strict policy).
 * Both machines boot with checks off (the DMA path itself, as sg256's "checks off" line).
 */

import { Board } from "../hw/machine/board.ts";
import { getProfile } from "../hw/machine/profiles.ts";
import { boot } from "../kernel/platform/boot.ts";
import { pci_devices } from "../kernel/pci/probe.ts";
import { sg_alloc_table, sg_set_page, for_each_sg, sg_next, sg_dma_address, sg_dma_len, sg_table, type scatterlist } from "../kernel/include/scatterlist.ts";
import { dma_map_sg, dma_unmap_sg, dma_set_mask_and_coherent, DMA_BIT_MASK, DMA_TO_DEVICE } from "../kernel/include/dma-mapping.ts";
import { Prng } from "../hw/core/prng.ts";
import { GFP_KERNEL } from "../kernel/include/types.ts";

const PAGE = 4096;

export interface IommuBench {
  steady(): void;
  cycle(): void;
  /** DMA segments dma_map_sg returned (1 when the IOMMU merged the list). */
  segments: number;
  /** IOTLB hits / lookups of the steady loop so far, or null without an IOMMU. */
  hitRate(): number | null;
  bytes: number;
}

export function makeIommuBench(profile: string, opts: { pages: number; policy?: "strict" | "lazy"; iotlbEntries?: number }): IommuBench {
  const { pages: ENTRIES, policy, iotlbEntries } = opts;
  const desc = getProfile(profile);
  if (policy && desc.iommu) desc.iommu.policy = policy;
  if (iotlbEntries && desc.iommu) desc.iommu.iotlb = { entries: iotlbEntries, ways: desc.iommu.iotlb.ways };
  const board = new Board(desc, { seed: 1 });
  const k = boot(board, { logLevel: "silent", checks: false });
  const dev = pci_devices(k)[0].dev;
  const port = board.pciDevices[0].device.dma;
  const sgt = new sg_table();
  k.exec.runOn(0, "process", "bench", "setup", () => {
    dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
    if (sg_alloc_table(sgt, ENTRIES, GFP_KERNEL)) throw new Error("sg_alloc_table failed");
    const prng = new Prng(3);
    const all: number[] = [];
    for (let i = 0; i < ENTRIES * 4; i++) all.push(k.pages.alloc(0, 0));
    const pages: number[] = [];
    while (pages.length < ENTRIES) pages.push(all.splice(prng.nextInt(all.length), 1)[0]!);
    for (const p of all) k.pages.free(p);
    let i = 0;
    for (const [sg] of for_each_sg(sgt.sgl!, ENTRIES)) sg_set_page(sg, { pfn: pages[i++]! / PAGE }, PAGE, 0);
    for (const p of pages) board.map.ram.fill(p, 0x5a, PAGE);
  });
  const buf = new Uint8Array(PAGE);
  const stream = (n: number): void => {
    for (let i = 0, sg: scatterlist | null = sgt.sgl; sg && i < n; i++, sg = sg_next(sg)) {
      const addr = sg_dma_address(sg);
      const len = sg_dma_len(sg);
      for (let off = 0; off < len; off += PAGE) {
        if (!port.read(addr + off, buf, 0, Math.min(PAGE, len - off))) throw new Error("DMA read failed");
      }
    }
  };
  let mapped = 0;
  k.exec.runOn(0, "process", "bench", "map", () => {
    mapped = dma_map_sg(dev, sgt.sgl!, ENTRIES, DMA_TO_DEVICE);
  });
  if (mapped <= 0) throw new Error(`dma_map_sg returned ${mapped}`);
  const steady = (): void => stream(mapped);
  // The cycle needs the list unmapped first: it maps and unmaps it itself.
  let cycling = false;
  const cycle = (): void => {
    k.exec.runOn(0, "process", "bench", "cycle", () => {
      if (!cycling) {
        dma_unmap_sg(dev, sgt.sgl!, ENTRIES, DMA_TO_DEVICE);
        cycling = true;
      }
      const n = dma_map_sg(dev, sgt.sgl!, ENTRIES, DMA_TO_DEVICE);
      if (n <= 0) throw new Error(`dma_map_sg returned ${n}`);
      stream(n);
      dma_unmap_sg(dev, sgt.sgl!, ENTRIES, DMA_TO_DEVICE);
    });
  };
  const hitRate = (): number | null => {
    const s = board.iommu?.stats;
    return s && s.hits + s.misses > 0 ? s.hits / (s.hits + s.misses) : null;
  };
  return { steady, cycle, segments: mapped, hitRate, bytes: ENTRIES * PAGE };
}

/** Seconds per run of `fn` (the caller's timer: bench/run.ts's). */
export type Timer = (fn: () => void) => number;

/**
 * benchIommu - print the IOMMU lines of `npm run bench`: for each architecture, the DMA rate
 * with the IOMMU translating as a cost factor over the same machine without one (lower is
 * better; the target for IOTLB hits is at most 1.5x).
 */
export function benchIommu(time: Timer): void {
  const pairs = [["x86", "x86-coherent", "x86-iommu"], ["arm", "arm64-noncoherent", "arm64-iommu"]] as const;
  for (const [arch, offProfile, onProfile] of pairs) {
    for (const [shape, pages] of [["hits", 48], ["misses", 256]] as const) {
      const off = makeIommuBench(offProfile, { pages });
      const on = makeIommuBench(onProfile, { pages, policy: "strict" });
      const tOff = time(off.steady);
      const tOn = time(on.steady);
      const perPage = (t: number): string => `${((t * 1e9) / pages).toFixed(0)} ns/page`;
      console.log(`iommu ${arch} ${shape.padEnd(6)} steady ${pages} pages: off ${perPage(tOff)}, on ${perPage(tOn)} -> cost ${(tOn / tOff).toFixed(2)}x (IOTLB hit rate ${(on.hitRate() ?? 0).toFixed(2)})`);
    }
    const off = makeIommuBench(offProfile, { pages: 256 });
    const on = makeIommuBench(onProfile, { pages: 256, policy: "strict" });
    const tOff = time(off.cycle);
    const tOn = time(on.cycle);
    console.log(`iommu ${arch} cycle  map+stream+unmap 256 pages (strict): off ${((tOff * 1e9) / 256).toFixed(0)} ns/page, on ${((tOn * 1e9) / 256).toFixed(0)} ns/page -> cost ${(tOn / tOff).toFixed(2)}x`);
  }
}
