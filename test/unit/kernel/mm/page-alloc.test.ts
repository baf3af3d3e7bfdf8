import { describe, expect, it } from "vitest";
import { PageAllocator, KERNEL_RESERVED_BYTES } from "../../../../kernel/mm/page-alloc.ts";

const MiB = 1 << 20;

describe("PageAllocator", () => {
  const ram = [
    { base: 0, size: 64 * MiB, node: 0 },
    { base: 0x100000000, size: 64 * MiB, node: 1 },
  ];

  it("never hands out the reserved kernel image area", () => {
    const a = new PageAllocator(ram);
    expect(a.alloc(0)).toBe(KERNEL_RESERVED_BYTES);
  });

  it("aligns blocks naturally to their order", () => {
    const a = new PageAllocator(ram);
    a.alloc(0);
    const p = a.alloc(4);
    expect(p % (16 * 4096)).toBe(0);
  });

  it("allocates from the requested node and falls back to another", () => {
    const a = new PageAllocator(ram);
    expect(a.nodeOf(a.alloc(0, 1))).toBe(1);
    const tiny = new PageAllocator([{ base: 0x100000, size: 8192, node: 1 }, { base: 0x200000000, size: 8192, node: 0 }]);
    expect(tiny.alloc(1, 1)).toBeGreaterThanOrEqual(0);
  });

  it("respects a limit address (a DMA mask)", () => {
    const a = new PageAllocator(ram);
    const p = a.alloc(0, 1, 0x100000000);
    expect(p).toBeLessThan(0x100000000);
    expect(a.alloc(0, 0, 4096)).toBe(-1);
  });

  it("frees and reuses pages, and refuses a bad free", () => {
    const a = new PageAllocator(ram);
    const p = a.alloc(2);
    const before = a.freePages();
    expect(a.free(p)).toBe(true);
    expect(a.freePages()).toBe(before + 4);
    expect(a.free(p)).toBe(false);
    expect(a.alloc(2)).toBe(p);
  });

  it("returns -1 when memory is exhausted", () => {
    const a = new PageAllocator([{ base: 0, size: 2 * MiB, node: 0 }]);
    const got: number[] = [];
    for (let p = a.alloc(0); p >= 0; p = a.alloc(0)) got.push(p);
    expect(got.length).toBe((2 * MiB - KERNEL_RESERVED_BYTES) / 4096);
    expect(new Set(got).size).toBe(got.length);
  });

  it("keeps a 64 GiB machine's bookkeeping small", () => {
    const a = new PageAllocator([{ base: 0, size: 64 * 1024 * MiB, node: 0 }]);
    expect(a.freePages()).toBe((64 * 1024 * MiB - KERNEL_RESERVED_BYTES) / 4096);
  });
});
