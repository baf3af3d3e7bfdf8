import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import {
  SG_MAX_SINGLE_ALLOC,
  for_each_sg,
  for_each_sgtable_dma_sg,
  for_each_sgtable_sg,
  sg_alloc_table,
  sg_alloc_table_from_pages,
  sg_alloc_table_from_pages_segment,
  sg_free_table,
  sg_is_chain,
  sg_nents,
  sg_table,
  type page,
} from "../../../../kernel/include/scatterlist.ts";
import { EINVAL } from "../../../../kernel/include/errno.ts";
import { GFP_KERNEL, PAGE_SIZE } from "../../../../kernel/include/types.ts";

function boot() {
  const { kernel: k } = bareKernel("x86-coherent");
  const kinds = () => k.findings.list.map((f) => f.kind);
  return { k, kinds };
}

const pages = (...pfns: number[]): page[] => pfns.map((pfn) => ({ pfn }));
const layout = (t: sg_table) => [...for_each_sgtable_sg(t)].map(([s]) => [s.page!.pfn, s.offset, s.length]);

describe("sg_alloc_table", () => {
  it("allocates a single array up to SG_MAX_SINGLE_ALLOC entries", () => {
    boot();
    expect(SG_MAX_SINGLE_ALLOC).toBe(128);
    const t = new sg_table();
    expect(sg_alloc_table(t, 128, GFP_KERNEL)).toBe(0);
    expect([t.nents, t.orig_nents]).toEqual([128, 128]);
    expect(t.sgl!.array.length).toBe(128);
    expect(t.sgl!.array[127].end).toBe(true);
    expect(sg_nents(t.sgl)).toBe(128);
  });

  it("chains arrays for longer tables, each non-final one spending its last slot on the link", () => {
    boot();
    const t = new sg_table();
    expect(sg_alloc_table(t, 300, GFP_KERNEL)).toBe(0);
    expect(t.orig_nents).toBe(300);
    const walked = [...for_each_sg(t.sgl!, 300)].map(([s]) => s);
    expect(walked).toHaveLength(300);
    expect(walked.some(sg_is_chain)).toBe(false);
    const arrays = [...new Set(walked.map((s) => s.array))];
    expect(arrays.map((a) => a.length)).toEqual([128, 128, 46]);
    expect(sg_is_chain(arrays[0][127])).toBe(true);
    expect(walked[299].end).toBe(true);
    expect(sg_nents(t.sgl)).toBe(300);
  });

  it("129 entries: one full array (127 + link) and one of 2", () => {
    boot();
    const t = new sg_table();
    sg_alloc_table(t, 129, GFP_KERNEL);
    const arrays = [...new Set([...for_each_sgtable_sg(t)].map(([s]) => s.array))];
    expect(arrays.map((a) => a.length)).toEqual([128, 2]);
  });

  it("refuses zero entries", () => {
    boot();
    expect(sg_alloc_table(new sg_table(), 0, GFP_KERNEL)).toBe(-EINVAL);
  });
});

describe("sg_free_table", () => {
  it("frees and clears; a table with nothing is a no-op", () => {
    const { kinds } = boot();
    const t = new sg_table();
    sg_free_table(t);
    sg_alloc_table(t, 5, GFP_KERNEL);
    t.nents = 2; // mapping may lower nents; that is fine
    sg_free_table(t);
    expect([t.sgl, t.nents, t.orig_nents]).toEqual([null, 0, 0]);
    expect(kinds()).toEqual([]);
  });

  it("WARNs when orig_nents was overwritten (e.g. with the mapped count)", () => {
    const { k, kinds } = boot();
    const t = new sg_table();
    sg_alloc_table(t, 5, GFP_KERNEL);
    t.orig_nents = 3;
    sg_free_table(t);
    expect(kinds()).toEqual(["warn"]);
    expect(k.findings.list[0].message).toMatch(/orig_nents is 3 but 5 entries/);
  });
});

describe("sg_alloc_table_from_pages", () => {
  it("merges physically consecutive pages into one entry", () => {
    boot();
    const t = new sg_table();
    expect(sg_alloc_table_from_pages(t, pages(10, 11, 12, 20, 21, 5), 6, 0, 6 * PAGE_SIZE, GFP_KERNEL)).toBe(0);
    expect(layout(t)).toEqual([
      [10, 0, 3 * PAGE_SIZE],
      [20, 0, 2 * PAGE_SIZE],
      [5, 0, PAGE_SIZE],
    ]);
    expect(t.orig_nents).toBe(3);
  });

  it("starts at the offset and covers exactly size bytes", () => {
    boot();
    const t = new sg_table();
    expect(sg_alloc_table_from_pages(t, pages(10, 11, 30), 3, 100, 2 * PAGE_SIZE, GFP_KERNEL)).toBe(0);
    expect(layout(t)).toEqual([
      [10, 100, 2 * PAGE_SIZE - 100],
      [30, 0, 100],
    ]);
  });

  it("uses only the pages offset + size needs", () => {
    boot();
    const t = new sg_table();
    sg_alloc_table_from_pages(t, pages(10, 40, 50), 3, 0, 10, GFP_KERNEL);
    expect(layout(t)).toEqual([[10, 0, 10]]);
  });

  it("never builds an entry longer than max_segment (rounded down to pages)", () => {
    boot();
    const t = new sg_table();
    const p = pages(100, 101, 102, 103, 104);
    expect(sg_alloc_table_from_pages_segment(t, p, 5, 0, 5 * PAGE_SIZE, 2 * PAGE_SIZE + 100, GFP_KERNEL)).toBe(0);
    expect(layout(t)).toEqual([
      [100, 0, 2 * PAGE_SIZE],
      [102, 0, 2 * PAGE_SIZE],
      [104, 0, PAGE_SIZE],
    ]);
    const u = new sg_table();
    sg_alloc_table_from_pages_segment(u, p, 5, 512, 4 * PAGE_SIZE, 2 * PAGE_SIZE, GFP_KERNEL);
    expect(layout(u)).toEqual([
      [100, 512, 2 * PAGE_SIZE - 512],
      [102, 0, 2 * PAGE_SIZE],
      [104, 0, 512],
    ]);
  });

  it("a max_segment below one page is -EINVAL with a WARN", () => {
    const { kinds } = boot();
    expect(sg_alloc_table_from_pages_segment(new sg_table(), pages(1), 1, 0, 10, 4000, GFP_KERNEL)).toBe(-EINVAL);
    expect(kinds()).toEqual(["warn"]);
  });

  it("refuses bad offsets, sizes beyond the pages and empty page lists", () => {
    boot();
    const t = new sg_table();
    expect(sg_alloc_table_from_pages(t, pages(1), 1, PAGE_SIZE, 1, GFP_KERNEL)).toBe(-EINVAL);
    expect(sg_alloc_table_from_pages(t, pages(1), 1, 1, PAGE_SIZE, GFP_KERNEL)).toBe(-EINVAL);
    expect(sg_alloc_table_from_pages(t, [], 0, 0, 0, GFP_KERNEL)).toBe(-EINVAL);
    expect(sg_alloc_table_from_pages(t, pages(1), 2, 0, 1, GFP_KERNEL)).toBe(-EINVAL);
    expect(t.sgl).toBeNull();
  });
});

describe("for_each_sgtable_sg and for_each_sgtable_dma_sg", () => {
  it("walk orig_nents and nents respectively", () => {
    boot();
    const t = new sg_table();
    sg_alloc_table(t, 4, GFP_KERNEL);
    t.nents = 2;
    expect([...for_each_sgtable_sg(t)].length).toBe(4);
    expect([...for_each_sgtable_dma_sg(t)].length).toBe(2);
    expect([...for_each_sgtable_sg(new sg_table())]).toEqual([]);
  });
});
