/**
 * The sanitizer's shortcut for a device walking an sg list (the next access falls in the entry
 * of the last one, or of the list's next segment: DmaDebugTable.soleHolder). Every cause must
 * come out exactly as the full table walk gives it: a segment the CPU took back, segments
 * unmapped under the device's feet, and a page mapped twice (two entries hold its addresses).
 */
import { describe, expect, it } from "vitest";
import { DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_sg, dma_map_sg_attrs, dma_map_single, dma_sync_sg_for_cpu, dma_sync_single_for_cpu, dma_unmap_sg, dma_unmap_single } from "../../../../kernel/include/dma-mapping.ts";
import { sg_array, sg_dma_address, sg_init_table, sg_set_page } from "../../../../kernel/include/scatterlist.ts";
import { copy_from_user } from "../../../../kernel/mm/access.ts";
import { PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";
import { dma_fmt_addr } from "../../../../kernel/dma/defs.ts";
import { dma_state } from "../../../../kernel/dma/state.ts";
import { setup } from "./sanitizer-rig.ts";

/** @n scattered pages (every other one of 2n) in an sg list. */
function pages(t: ReturnType<typeof setup>, n: number) {
  const all: number[] = [];
  for (let i = 0; i < 2 * n; i++) all.push(t.k.pages.alloc(0, 0));
  const phys = all.filter((_, i) => i % 2 === 1).reverse();
  const sg = sg_array(n);
  sg_init_table(sg, n);
  phys.forEach((p, i) => sg_set_page(sg[i], { pfn: p / 4096 }, 4096, 0));
  return { sg, phys };
}

describe("a device walking an sg list", () => {
  it("a correct walk, segment after segment and in several bursts each, is no finding", () => {
    const t = setup();
    const { sg } = pages(t, 6);
    for (let round = 0; round < 3; round++) {
      expect(dma_map_sg(t.dev, sg, 6, DMA_TO_DEVICE)).toBe(6);
      for (let i = 0; i < 6; i++) for (let off = 0; off < 4096; off += 1024) t.devRead(sg_dma_address(sg[i]) + off, 1024);
      dma_unmap_sg(t.dev, sg, 6, DMA_TO_DEVICE);
    }
    expect(t.kinds()).toEqual([]);
  });

  it("reports the segment the CPU took back and wrote, in the middle of the walk", () => {
    const t = setup();
    const { sg, phys } = pages(t, 4);
    dma_map_sg(t.dev, sg, 4, DMA_TO_DEVICE);
    t.devRead(sg_dma_address(sg[0]), 4096);
    dma_sync_sg_for_cpu(t.dev, sg, 4, DMA_TO_DEVICE);
    copy_from_user(PAGE_OFFSET + phys[2], new Uint8Array(64).fill(7));
    t.devRead(sg_dma_address(sg[1]), 4096); // a recycle: the CPU did not write this one
    t.devRead(sg_dma_address(sg[2]), 4096);
    expect(t.kinds()).toContain("device-access-cpu-owned");
    const f = t.only("device-access-cpu-owned");
    expect(f).toHaveLength(1);
    expect(f[0].details).toMatchObject({ dev_addr: dma_fmt_addr(sg_dma_address(sg[2])) });
    dma_unmap_sg(t.dev, sg, 4, DMA_TO_DEVICE);
  });

  it("reports the rest of the walk as unmapped once the list is unmapped", () => {
    const t = setup();
    const { sg } = pages(t, 3);
    dma_map_sg(t.dev, sg, 3, DMA_FROM_DEVICE);
    t.devWrite(sg_dma_address(sg[0]), new Uint8Array(4096));
    dma_unmap_sg(t.dev, sg, 3, DMA_FROM_DEVICE);
    t.devWrite(sg_dma_address(sg[1]), new Uint8Array(16));
    expect(t.kinds()).toEqual(["device-access-unmapped"]);
  });

  it("a page mapped twice: the next segment's entry is not taken on trust when another entry holds the address", () => {
    const t = setup();
    const { sg, phys } = pages(t, 3);
    dma_map_sg(t.dev, sg, 3, DMA_BIDIRECTIONAL);
    // a second mapping inside segment 1's page, given back to the CPU and written
    const h = dma_map_single(t.dev, PAGE_OFFSET + phys[1] + 2048, 1024, DMA_BIDIRECTIONAL);
    dma_sync_single_for_cpu(t.dev, h, 1024, DMA_BIDIRECTIONAL);
    copy_from_user(PAGE_OFFSET + phys[1] + 2048, new Uint8Array(8).fill(1));
    t.devRead(sg_dma_address(sg[0]), 4096);
    // best fit: both entries hold these bytes wholly with the same direction, the later start wins
    t.devRead(sg_dma_address(sg[1]) + 2048, 1024);
    const f = t.only("device-access-cpu-owned");
    expect(f).toHaveLength(1);
    expect(f[0].details).toMatchObject({ dev_addr: dma_fmt_addr(h), size: 1024 });
    dma_unmap_single(t.dev, h, 1024, DMA_BIDIRECTIONAL);
    dma_unmap_sg(t.dev, sg, 3, DMA_BIDIRECTIONAL);
  });
});

/**
 * A direct DMA_TO_DEVICE dma_map_sg is kept by dma-debug as one run of numbers, its entries
 * made only when something needs them (kernel/dma/debug-run.ts). The sanitizer follows the
 * device through the run's segments without them; whatever it reports must name the segment
 * as the per-segment entries would.
 */
describe("a device walking an sg run the table has not settled", () => {
  /** The first map of a kernel hooks driver unbind the ordinary way; runs come after it. */
  function warmed(profile: "arm64-noncoherent" | "x86-coherent" = "arm64-noncoherent") {
    const t = setup(profile);
    const w = pages(t, 1);
    dma_map_sg(t.dev, w.sg, 1, DMA_TO_DEVICE);
    dma_unmap_sg(t.dev, w.sg, 1, DMA_TO_DEVICE);
    return t;
  }

  it("reads every segment and unmaps without making an entry", () => {
    const t = warmed();
    const { sg } = pages(t, 4);
    dma_map_sg(t.dev, sg, 4, DMA_TO_DEVICE);
    const table = dma_state(t.k).table;
    const run = table.soleRun(t.dev)!;
    expect(run).not.toBeNull();
    for (let i = 0; i < 4; i++) t.devRead(sg_dma_address(sg[i]), 4096);
    expect(table.pending).toBe(1); // nothing settled it
    dma_unmap_sg(t.dev, sg, 4, DMA_TO_DEVICE);
    expect(t.kinds()).toEqual([]);
    expect(t.san.stats.device_accesses).toBe(4);
  });

  it("a read after the run was unmapped whole names the segment and its unmap", () => {
    const t = warmed();
    const { sg } = pages(t, 3);
    dma_map_sg(t.dev, sg, 3, DMA_TO_DEVICE);
    t.devRead(sg_dma_address(sg[0]), 4096);
    dma_unmap_sg(t.dev, sg, 3, DMA_TO_DEVICE);
    t.devRead(sg_dma_address(sg[1]) + 100, 16);
    const f = t.only("device-access-unmapped");
    expect(f).toHaveLength(1);
    expect(f[0].details).toMatchObject({ after_unmap: true, bus_addr: dma_fmt_addr(sg_dma_address(sg[1]) + 100) });
    expect(f[0].message).toContain("[unmapped by dma_unmap_sg");
    expect((f[0].history ?? []).map((h) => h.op)).toEqual(["dma_map_sg[1/3]", "dma_unmap_sg"]);
  });

  it("a read of bytes a dirty line holds (DMA_ATTR_SKIP_CPU_SYNC, arm64) is stale-device-read naming the segment", () => {
    const t = warmed();
    const { sg, phys } = pages(t, 3);
    copy_from_user(PAGE_OFFSET + phys[2] + 64, new Uint8Array(32).fill(0xab)); // dirty in the cache
    dma_map_sg_attrs(t.dev, sg, 3, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    expect(dma_state(t.k).table.pending).toBe(1);
    t.devRead(sg_dma_address(sg[0]), 4096);
    t.devRead(sg_dma_address(sg[1]), 4096);
    t.devRead(sg_dma_address(sg[2]), 4096);
    const f = t.only("stale-device-read");
    expect(f).toHaveLength(1);
    expect(f[0].details).toMatchObject({ dev_addr: dma_fmt_addr(sg_dma_address(sg[2])), size: 4096 });
    expect(f[0].message).toContain("[offset=64..95]");
    dma_unmap_sg(t.dev, sg, 3, DMA_TO_DEVICE);
  });

  it("a device write under a cached line of a segment (arm64) is read back stale, naming the segment", () => {
    const t = warmed();
    const { sg, phys } = pages(t, 2);
    t.cpuRead(PAGE_OFFSET + phys[1], 64); // the line is cached, clean
    dma_map_sg(t.dev, sg, 2, DMA_TO_DEVICE); // cleaned, not invalidated: the line stays
    t.devRead(sg_dma_address(sg[0]), 4096);
    t.devWrite(sg_dma_address(sg[1]) + 8, new Uint8Array(4).fill(0x77));
    dma_unmap_sg(t.dev, sg, 2, DMA_TO_DEVICE);
    expect(Array.from(t.cpuRead(PAGE_OFFSET + phys[1] + 8, 4))).not.toEqual([0x77, 0x77, 0x77, 0x77]);
    const f = t.only("stale-cpu-read");
    expect(f).toHaveLength(1);
    expect(f[0].details).toMatchObject({ dev_addr: dma_fmt_addr(sg_dma_address(sg[1])), size: 4096 });
    expect(f[0].message).toContain("[offset=8..11]");
  });

  it("on x86-coherent the walk and the unmap make no entry and no finding", () => {
    const t = warmed("x86-coherent");
    const { sg } = pages(t, 8);
    for (let round = 0; round < 3; round++) {
      dma_map_sg(t.dev, sg, 8, DMA_TO_DEVICE);
      for (let i = 7; i >= 0; i--) t.devRead(sg_dma_address(sg[i]), 4096); // backwards: each a fresh look-up
      dma_unmap_sg(t.dev, sg, 8, DMA_TO_DEVICE);
    }
    expect(t.kinds()).toEqual([]);
    expect(dma_state(t.k).table.count()).toBe(0);
  });
});
