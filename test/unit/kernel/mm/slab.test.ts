import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { kfree, kmalloc, kzalloc, ksize, vmalloc, vfree, virt_to_phys, phys_to_virt, is_vmalloc_addr, NULL } from "../../../../kernel/include/slab.ts";
import { kread32, kwrite32, kread8, memset, memcpy, copy_from_user, copy_to_user } from "../../../../kernel/include/string.ts";
import { GFP_KERNEL } from "../../../../kernel/include/types.ts";
import { KernelOops } from "../../../../kernel/core/oops.ts";

describe("kmalloc", () => {
  it("aligns objects to the arch's ARCH_KMALLOC_MINALIGN", () => {
    bareKernel("arm64-noncoherent");
    const ptrs = [1, 8, 24, 100].map((n) => kmalloc(n, GFP_KERNEL));
    for (const p of ptrs) expect(virt_to_phys(p) % 128).toBe(0);
    expect(ksize(ptrs[0])).toBe(128);
    bareKernel("x86-coherent");
    const a = kmalloc(1, GFP_KERNEL);
    const b = kmalloc(1, GFP_KERNEL);
    expect(Math.abs(b - a)).toBe(8);
  });

  it("kzalloc returns zeroed memory even where the memory held data", () => {
    bareKernel();
    const p = kmalloc(64, GFP_KERNEL);
    memset(p, 0xaa, 64);
    kfree(p);
    const q = kzalloc(64, GFP_KERNEL);
    expect(q).toBe(p);
    for (let i = 0; i < 64; i++) expect(kread8(q + i)).toBe(0);
  });

  it("serves large requests from the page allocator and frees them", () => {
    const { kernel } = bareKernel();
    const before = kernel.pages.freePages();
    const p = kmalloc(100_000, GFP_KERNEL);
    expect(virt_to_phys(p) % 4096).toBe(0);
    kfree(p);
    expect(kernel.pages.freePages()).toBe(before);
  });

  it("records the owner for leak reports and warns on a double free", () => {
    const { kernel } = bareKernel();
    kernel.exec.owner = "mydrv";
    const p = kmalloc(32, GFP_KERNEL);
    kernel.exec.owner = "";
    expect(kernel.slab.liveBy("mydrv").length).toBe(1);
    kfree(p);
    kfree(p);
    expect(kernel.warnings).toBe(1);
    expect(kernel.findings.ofKind("warn")[0].message).toMatch(/double free/);
    kfree(NULL);
    expect(kernel.warnings).toBe(1);
  });
});

describe("kernel memory accessors", () => {
  it("round-trip typed values and host buffers through the cache", () => {
    bareKernel();
    const p = kmalloc(256, GFP_KERNEL);
    kwrite32(p + 4, 0xdeadbeef);
    expect(kread32(p + 4)).toBe(0xdeadbeef);
    const data = Uint8Array.from({ length: 200 }, (_, i) => i);
    copy_from_user(p, data);
    const q = kmalloc(256, GFP_KERNEL);
    memcpy(q, p, 200);
    const out = new Uint8Array(200);
    copy_to_user(out, q);
    expect(out).toEqual(data);
  });

  it("turns a wild pointer into an oops, not a crash of the simulator", () => {
    bareKernel();
    expect(() => kread32(0x1234)).toThrow(KernelOops);
    expect(() => kread32(phys_to_virt(0x7000_0000_0000 as never))).toThrow(/page fault/);
  });

  it("vmalloc memory is virtually contiguous over scattered pages and faults past its end", () => {
    const { kernel } = bareKernel();
    const v = vmalloc(3 * 4096);
    expect(is_vmalloc_addr(v)).toBe(true);
    const data = Uint8Array.from({ length: 3 * 4096 }, (_, i) => i * 7);
    copy_from_user(v, data);
    const out = new Uint8Array(3 * 4096);
    copy_to_user(out, v);
    expect(out).toEqual(data);
    expect(() => kread8(v + 3 * 4096)).toThrow(KernelOops);
    const free = kernel.pages.freePages();
    vfree(v);
    expect(kernel.pages.freePages()).toBe(free + 3);
  });
});
