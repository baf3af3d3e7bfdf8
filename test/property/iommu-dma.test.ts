/**
 * Random sequences of dma_map_single / dma_map_sg / unmap on a device behind a strict IOMMU:
 * the device reaches exactly the mapped pages with the direction's permissions, nothing after
 * unmap, and live IOVA ranges never overlap.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { iommuRig } from "../unit/kernel/dma/iommu-dma-rig.ts";
import { GFP_KERNEL, PAGE_SIZE, type dma_addr_t } from "../../kernel/include/types.ts";
import { __get_free_pages } from "../../kernel/mm/slab-api.ts";
import { sg_array, sg_init_table, sg_set_buf, type scatterlist } from "../../kernel/lib/scatterlist.ts";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_sg, dma_map_single, dma_mapping_error, dma_set_max_seg_size, dma_unmap_sg, dma_unmap_single } from "../../kernel/include/dma-mapping.ts";

type Live = { kind: "single"; addr: dma_addr_t; len: number; dir: number } | { kind: "sg"; sgl: scatterlist[]; nents: number; count: number; dir: number };

const DIRS = [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL] as const;
const op = fc.oneof(
  fc.record({ t: fc.constant("single" as const), page: fc.nat(15), off: fc.nat(PAGE_SIZE - 1), len: fc.integer({ min: 1, max: 3 * PAGE_SIZE }), dir: fc.constantFrom(...DIRS) }),
  fc.record({ t: fc.constant("sg" as const), pages: fc.array(fc.nat(15), { minLength: 1, maxLength: 4 }), dir: fc.constantFrom(...DIRS) }),
  fc.record({ t: fc.constant("unmap" as const), pick: fc.nat() }),
);

/** The device-visible IOVA pages of a live mapping, with whether it may read / write them. */
function spans(l: Live): { lo: number; hi: number; r: boolean; w: boolean }[] {
  const r = l.dir !== DMA_FROM_DEVICE;
  const w = l.dir !== DMA_TO_DEVICE;
  const page = (a: number) => Math.floor(a / PAGE_SIZE);
  if (l.kind === "single") return [{ lo: page(l.addr), hi: page(l.addr + l.len - 1), r, w }];
  return l.sgl.slice(0, l.count).map((s) => ({ lo: page(s.dma_address), hi: page(s.dma_address + s.dma_length - 1), r, w }));
}

describe("property: DMA through a strict IOMMU", () => {
  it("reaches exactly the live mappings' pages with the right permissions; IOVAs never overlap", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
        const { dev, read, write } = iommuRig("arm64-iommu");
        dma_set_max_seg_size(dev, 1 << 20);
        const base = __get_free_pages(GFP_KERNEL, 5); // 32 pages of buffers
        const live: Live[] = [];
        const dead: number[] = [];
        for (const o of ops) {
          if (o.t === "single") {
            const va = base + o.page * PAGE_SIZE + o.off;
            const addr = dma_map_single(dev, va, o.len, o.dir);
            expect(dma_mapping_error(dev, addr)).toBe(0);
            live.push({ kind: "single", addr, len: o.len, dir: o.dir });
          } else if (o.t === "sg") {
            const sgl = sg_array(o.pages.length);
            sg_init_table(sgl, o.pages.length);
            o.pages.forEach((p, i) => sg_set_buf(sgl[i], base + p * PAGE_SIZE, PAGE_SIZE));
            const count = dma_map_sg(dev, sgl, o.pages.length, o.dir);
            expect(count).toBeGreaterThan(0);
            live.push({ kind: "sg", sgl, nents: o.pages.length, count, dir: o.dir });
          } else if (live.length) {
            const [l] = live.splice(o.pick % live.length, 1);
            dead.push(...spans(l).map((s) => s.lo));
            if (l.kind === "single") dma_unmap_single(dev, l.addr, l.len, l.dir as never);
            else dma_unmap_sg(dev, l.sgl, l.nents, l.dir as never);
          }
        }
        const all = live.flatMap(spans).sort((a, b) => a.lo - b.lo);
        for (let i = 1; i < all.length; i++) expect(all[i].lo).toBeGreaterThan(all[i - 1].hi);
        for (const s of all) {
          for (let p = s.lo; p <= s.hi; p++) {
            expect(read(p * PAGE_SIZE, 1) !== null).toBe(s.r);
            expect(write(p * PAGE_SIZE, new Uint8Array(1)) ).toBe(s.w);
          }
        }
        const livePages = new Set(all.flatMap((s) => Array.from({ length: s.hi - s.lo + 1 }, (_, i) => s.lo + i)));
        for (const p of dead) if (!livePages.has(p)) expect(read(p * PAGE_SIZE, 1)).toBeNull();
      }),
      { numRuns: 25 },
    );
  });
});
