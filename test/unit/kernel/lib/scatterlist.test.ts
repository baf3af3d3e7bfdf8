import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import {
  for_each_sg,
  scatterlist,
  sg_array,
  sg_at,
  sg_chain,
  sg_chain_ptr,
  sg_dma_address,
  sg_dma_len,
  sg_first,
  sg_init_one,
  sg_init_table,
  sg_is_chain,
  sg_is_last,
  sg_last,
  sg_mark_end,
  sg_nents,
  sg_nents_for_len,
  sg_next,
  sg_page,
  sg_phys,
  sg_set_buf,
  sg_set_page,
  sg_unmark_end,
  sg_virt,
  virt_to_page,
} from "../../../../kernel/include/scatterlist.ts";
import { with_stack_buffer } from "../../../../kernel/include/stack.ts";
import { EINVAL } from "../../../../kernel/include/errno.ts";
import { kmalloc, vmalloc } from "../../../../kernel/mm/slab-api.ts";
import { PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";
import { PAGE_SIZE, type dma_addr_t } from "../../../../kernel/include/types.ts";

function boot() {
  const { kernel: k } = bareKernel("arm64-noncoherent");
  const kinds = () => k.findings.list.map((f) => f.kind);
  return { k, kinds };
}

describe("sg_array and sg_init_table", () => {
  it("makes entries that know their array and index, zeroed, the last marked END", () => {
    boot();
    const sg = sg_array(4);
    sg[1].length = 99;
    sg[2].chain = sg[0];
    sg_init_table(sg, 4);
    expect(sg.map((s) => [s.index, s.array === sg, s.length, s.chain, s.end])).toEqual([
      [0, true, 0, null, false],
      [1, true, 0, null, false],
      [2, true, 0, null, false],
      [3, true, 0, null, true],
    ]);
  });

  it("initialises a prefix of a larger array from a pointer into it", () => {
    boot();
    const sg = sg_array(6);
    sg_init_table(sg[1], 3);
    expect(sg.map((s) => s.end)).toEqual([false, false, false, true, false, false]);
  });

  it("is a BUG for zero entries or more entries than the array holds", () => {
    boot();
    expect(() => sg_init_table(sg_array(2), 0)).toThrow(/nents 0/);
    expect(() => sg_init_table(sg_array(2), 3)).toThrow(/past the end/);
  });

  it("sg_first and sg_at do C's pointer arithmetic", () => {
    const sg = sg_array(3);
    expect(sg_first(sg)).toBe(sg[0]);
    expect(sg_first(sg[2])).toBe(sg[2]);
    expect(sg_at(sg[1], 1)).toBe(sg[2]);
    expect(() => sg_at(sg, 3)).toThrow(/past the end/);
    expect(() => sg_first([])).toThrow(/empty array/);
  });
});

describe("sg_set_page, sg_set_buf and the accessors", () => {
  it("points an entry at a linear buffer: page, offset, phys, virt", () => {
    boot();
    const buf = kmalloc(300, 0);
    const sg = sg_array(1);
    sg_init_one(sg[0], buf + 8, 200);
    expect(sg_page(sg[0])).toEqual(virt_to_page(buf));
    expect(sg[0].offset).toBe((buf + 8 - PAGE_OFFSET) % PAGE_SIZE);
    expect(sg[0].length).toBe(200);
    expect(sg_phys(sg[0])).toBe(buf + 8 - PAGE_OFFSET);
    expect(sg_virt(sg[0])).toBe(buf + 8);
    expect(sg_is_last(sg[0])).toBe(true);
  });

  it("sg_set_page keeps the END mark and refuses a chain link", () => {
    boot();
    const sg = sg_array(2);
    sg_init_table(sg, 2);
    sg_set_page(sg[1], { pfn: 300 }, 100, 12);
    expect(sg[1]).toMatchObject({ page: { pfn: 300 }, length: 100, offset: 12, end: true });
    sg_chain(sg, 2, sg_array(1));
    expect(() => sg_set_page(sg[1], { pfn: 1 }, 1, 0)).toThrow(/chain link/);
    expect(() => sg_page(sg[1])).toThrow(/chain link/);
  });

  it("refuses vmalloc memory with a WARN and leaves the entry without a page", () => {
    const { kinds } = boot();
    const sg = sg_array(1);
    sg_init_table(sg, 1);
    sg_set_buf(sg[0], vmalloc(4096), 100);
    expect(kinds()).toEqual(["warn"]);
    expect(sg[0].page).toBeNull();
    expect(() => sg_phys(sg[0])).toThrow(/no page/);
  });

  it("resolves a stack buffer to its real page (dma-debug reports it when it is mapped)", () => {
    const { k, kinds } = boot();
    const sg = sg_array(1);
    sg_init_table(sg, 1);
    with_stack_buffer(64, (buf) => {
      sg_set_buf(sg[0], buf + 16, 32);
      expect(sg[0].page!.pfn).toBe(k.aspace.pfnOf(buf));
      expect(sg[0].offset).toBe(16);
    });
    expect(kinds()).toEqual([]);
  });

  it("sg_dma_address and sg_dma_len read the DMA view, not the CPU view", () => {
    const sg = sg_array(1);
    sg[0].length = 10;
    sg[0].dma_address = 0x5000 as dma_addr_t;
    sg[0].dma_length = 20;
    expect([sg_dma_address(sg[0]), sg_dma_len(sg[0])]).toEqual([0x5000, 20]);
  });
});

describe("walking: sg_next, for_each_sg, sg_nents, sg_last", () => {
  it("sg_next returns null after the END entry", () => {
    const sg = sg_array(3);
    sg_init_table(sg, 3);
    expect(sg_next(sg[0])).toBe(sg[1]);
    expect(sg_next(sg[2])).toBeNull();
  });

  it("running off an array without an END mark is a BUG naming the cause", () => {
    const sg = sg_array(2);
    expect(() => sg_next(sg[1])).toThrow(/no end mark/);
  });

  it("for_each_sg yields exactly n entries, or stops at END", () => {
    const sg = sg_array(4);
    sg_init_table(sg, 4);
    expect([...for_each_sg(sg, 3)].map(([s, i]) => [s.index, i])).toEqual([[0, 0], [1, 1], [2, 2]]);
    expect([...for_each_sg(sg, 10)].length).toBe(4);
    expect([...for_each_sg(sg, 0)]).toEqual([]);
  });

  it("sg_nents, sg_last, sg_nents_for_len", () => {
    const sg = sg_array(3);
    sg_init_table(sg, 3);
    sg.forEach((s, i) => (s.length = 100 * (i + 1)));
    expect(sg_nents(sg)).toBe(3);
    expect(sg_nents(null)).toBe(0);
    expect(sg_last(sg, 2)).toBe(sg[1]);
    expect(sg_last(sg, 3)).toBe(sg[2]);
    expect(sg_nents_for_len(sg, 0)).toBe(0);
    expect(sg_nents_for_len(sg, 100)).toBe(1);
    expect(sg_nents_for_len(sg, 101)).toBe(2);
    expect(sg_nents_for_len(sg, 600)).toBe(3);
    expect(sg_nents_for_len(sg, 601)).toBe(-EINVAL);
  });
});

describe("chaining and end marks", () => {
  it("sg_chain turns the last slot into a link; walks skip it", () => {
    const a = sg_array(3);
    const b = sg_array(2);
    sg_init_table(a, 3);
    sg_init_table(b, 2);
    a[0].length = 1;
    a[1].length = 2;
    b[0].length = 3;
    b[1].length = 4;
    sg_chain(a, 3, b);
    expect(sg_is_chain(a[2])).toBe(true);
    expect(sg_chain_ptr(a[2])).toBe(b[0]);
    expect(a[2].end).toBe(false);
    expect([...for_each_sg(a, 4)].map(([s]) => s.length)).toEqual([1, 2, 3, 4]);
    expect(sg_nents(a)).toBe(4);
    expect(sg_next(a[1])).toBe(b[0]);
  });

  it("sg_mark_end clears CHAIN; sg_unmark_end lets the walk continue", () => {
    const sg = sg_array(3);
    sg_init_table(sg, 3);
    sg_mark_end(sg[0]);
    expect(sg_nents(sg)).toBe(1);
    sg_unmark_end(sg[0]);
    expect(sg_nents(sg)).toBe(3);
    sg_chain(sg, 3, sg_array(1));
    sg_mark_end(sg[2]);
    expect(sg_is_chain(sg[2])).toBe(false);
    expect(sg_is_last(sg[2])).toBe(true);
  });

  it("every entry is a scatterlist instance", () => {
    expect(sg_array(2)[1]).toBeInstanceOf(scatterlist);
  });
});
