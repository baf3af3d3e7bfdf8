import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import {
  __free_pages,
  alloc_pages,
  nth_page,
  offset_in_page,
  page_address,
  page_to_phys,
  pfn_to_page,
  virt_to_page,
  vmalloc_to_page,
} from "../../../../kernel/include/scatterlist.ts";
import { with_stack_buffer } from "../../../../kernel/include/stack.ts";
import { is_stack_page } from "../../../../kernel/lib/kstack.ts";
import { kmalloc, vmalloc } from "../../../../kernel/mm/slab-api.ts";
import { kread8, kwrite8 } from "../../../../kernel/mm/access.ts";
import { AddressSpace, PAGE_OFFSET } from "../../../../kernel/mm/layout.ts";
import { GFP_KERNEL, PAGE_SIZE } from "../../../../kernel/include/types.ts";
import { KernelOops } from "../../../../kernel/core/oops.ts";

describe("page helpers", () => {
  it("convert between linear addresses, pages and physical addresses", () => {
    bareKernel();
    const buf = kmalloc(64, 0);
    const pg = virt_to_page(buf);
    expect(page_to_phys(pg)).toBe(Math.floor((buf - PAGE_OFFSET) / PAGE_SIZE) * PAGE_SIZE);
    expect(page_address(pg) + offset_in_page(buf)).toBe(buf);
    expect(nth_page(pg, 2)).toEqual(pfn_to_page(pg.pfn + 2));
  });

  it("virt_to_page of a vmalloc address is a BUG; vmalloc_to_page finds each page", () => {
    const { kernel: k } = bareKernel();
    const v = vmalloc(2 * PAGE_SIZE);
    expect(() => virt_to_page(v)).toThrow(/vmalloc_to_page/);
    expect(vmalloc_to_page(v + PAGE_SIZE)!.pfn).toBe(k.aspace.pfnOf(v + PAGE_SIZE));
    expect(vmalloc_to_page(v + 5 * PAGE_SIZE)).toBeNull();
  });

  it("alloc_pages gives contiguous pages that __free_pages returns", () => {
    const { kernel: k } = bareKernel();
    const before = k.pages.freePages();
    const pg = alloc_pages(GFP_KERNEL, 2)!;
    expect(k.pages.freePages()).toBe(before - 4);
    __free_pages(pg, 2);
    expect(k.pages.freePages()).toBe(before);
  });
});

describe("with_stack_buffer", () => {
  it("maps a buffer in the stack region for the call only", () => {
    const { kernel: k } = bareKernel();
    let kept = 0;
    let pfn = -1;
    const r = with_stack_buffer(100, (buf) => {
      expect(AddressSpace.kind(buf)).toBe("stack");
      kwrite8(buf + 99, 0x5a);
      expect(kread8(buf + 99)).toBe(0x5a);
      kept = buf;
      pfn = k.aspace.pfnOf(buf);
      expect(is_stack_page(k, pfn)).toBe(true);
      return 7;
    });
    expect(r).toBe(7);
    expect(is_stack_page(k, pfn)).toBe(false);
    expect(() => kread8(kept)).toThrow(KernelOops);
  });

  it("gives physically contiguous frames for multi-page buffers", () => {
    const { kernel: k } = bareKernel();
    with_stack_buffer(3 * PAGE_SIZE, (buf) => {
      const p0 = k.aspace.pfnOf(buf);
      expect([1, 2].map((i) => k.aspace.pfnOf(buf + i * PAGE_SIZE))).toEqual([p0 + 1, p0 + 2]);
    });
  });

  it("keeps the buffer until an async function settles, and frees it if it throws", async () => {
    const { kernel: k } = bareKernel();
    const before = k.pages.freePages();
    let seen = 0;
    await with_stack_buffer(16, async (buf) => {
      await Promise.resolve();
      seen = kread8(buf) + 1;
    });
    expect(seen).toBeGreaterThan(0);
    expect(() => with_stack_buffer(16, () => { throw new Error("x"); })).toThrow("x");
    expect(k.pages.freePages()).toBe(before);
  });
});
