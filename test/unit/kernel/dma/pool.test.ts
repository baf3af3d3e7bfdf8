import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import {
  dma_addr_holder,
  dma_pool_alloc,
  dma_pool_create,
  dma_pool_destroy,
  dma_pool_free,
  dma_pool_zalloc,
  dmam_pool_create,
  dmam_pool_destroy,
  type dma_pool,
} from "../../../../kernel/include/dmapool.ts";
import { POOL_POISON_ALLOCATED, POOL_POISON_FREED } from "../../../../kernel/dma/pool.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { devres_release_all } from "../../../../kernel/base/devres.ts";
import { copy_to_user, kwrite8 } from "../../../../kernel/mm/access.ts";
import { GFP_KERNEL, PAGE_SIZE, type dma_addr_t } from "../../../../kernel/include/types.ts";

function boot(profile: "arm64-noncoherent" | "x86-coherent" = "arm64-noncoherent") {
  const { kernel: k } = bareKernel(profile);
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = profile === "x86-coherent";
  dev.driver = { name: "testdrv" };
  const kinds = () => k.findings.list.map((f) => f.kind);
  const alloc = (pool: dma_pool, zero = false) => {
    const h = dma_addr_holder();
    const va = (zero ? dma_pool_zalloc : dma_pool_alloc)(pool, GFP_KERNEL, h);
    return { va, dma: h.value };
  };
  const read = (va: number, n: number) => {
    const out = new Uint8Array(n);
    copy_to_user(out, va);
    return out;
  };
  return { k, dev, kinds, alloc, read };
}

describe("dma_pool_create", () => {
  it("validates exactly as mm/dmapool.c", () => {
    const { dev } = boot();
    expect(dma_pool_create("p", dev, 64, 3, 0)).toBeNull(); // align not a power of two
    expect(dma_pool_create("p", dev, 0, 8, 0)).toBeNull(); // size 0
    expect(dma_pool_create("p", dev, 64, 8, 96)).toBeNull(); // boundary not a power of two
    expect(dma_pool_create("p", dev, 64, 8, 32)).toBeNull(); // boundary below size
    expect(dma_pool_create("p", dev, 20, 32, 16)).toBeNull(); // boundary below the rounded size
  });

  it("rounds the size up to the alignment (at least 4) and defaults the boundary", () => {
    const { dev } = boot();
    expect(dma_pool_create("p", dev, 1, 0, 0)).toMatchObject({ size: 4, boundary: PAGE_SIZE, allocation: PAGE_SIZE });
    expect(dma_pool_create("p", dev, 20, 16, 0)).toMatchObject({ size: 32 });
    expect(dma_pool_create("p", dev, 3 * PAGE_SIZE, 8, 0)).toMatchObject({ allocation: 3 * PAGE_SIZE, boundary: 3 * PAGE_SIZE });
    expect(dma_pool_create("p", dev, 64, 64, 1 << 20)).toMatchObject({ boundary: PAGE_SIZE });
  });

  it("WARNs from interrupt context", () => {
    const { k, dev, kinds } = boot();
    k.exec.runOn(0, "hardirq", "testdrv", "irq", () => dma_pool_create("p", dev, 64, 8, 0));
    expect(kinds()).toEqual(["warn"]);
  });
});

describe("dma_pool_alloc and dma_pool_free", () => {
  it("hands out aligned blocks from coherent pages; handle and CPU address agree", () => {
    const { dev, alloc } = boot();
    const pool = dma_pool_create("desc", dev, 48, 64, 0)!;
    const a = alloc(pool);
    const b = alloc(pool);
    expect(b.dma - a.dma).toBe(64);
    expect(b.va - a.va).toBe(64);
    expect(a.dma % 64).toBe(0);
    expect(dma_debug_live(dev)).toMatchObject([{ type: "coherent", size: PAGE_SIZE }]);
    for (let i = 2; i < PAGE_SIZE / 64 + 1; i++) alloc(pool);
    expect(dma_debug_live(dev)).toHaveLength(2);
  });

  it("never lets a block cross the boundary", () => {
    const { dev, alloc } = boot();
    const pool = dma_pool_create("b", dev, 48, 16, 128)!;
    const offs = Array.from({ length: 20 }, () => alloc(pool).dma % PAGE_SIZE);
    for (const o of offs) expect(Math.floor(o / 128)).toBe(Math.floor((o + 47) / 128));
    expect(offs.slice(0, 4)).toEqual([0, 48, 128, 176]);
  });

  it("poisons allocated blocks, zeroes zalloc'd ones, poisons freed ones and reuses them last-freed-first", () => {
    const { dev, alloc, read, kinds } = boot();
    const pool = dma_pool_create("p", dev, 32, 8, 0)!;
    const a = alloc(pool);
    expect(read(a.va, 32).every((x) => x === POOL_POISON_ALLOCATED)).toBe(true);
    const z = alloc(pool, true);
    expect(read(z.va, 32).every((x) => x === 0)).toBe(true);
    dma_pool_free(pool, a.va, a.dma);
    expect(read(a.va, 32).every((x) => x === POOL_POISON_FREED)).toBe(true);
    expect(alloc(pool).dma).toBe(a.dma);
    expect(kinds()).toEqual([]);
  });

  it("bad dma: a handle from no page of the pool is reported and nothing is freed", () => {
    const { k, dev, alloc, kinds } = boot();
    const pool = dma_pool_create("p", dev, 32, 8, 0)!;
    const a = alloc(pool);
    dma_pool_free(pool, a.va, 0x1234 as dma_addr_t);
    dma_pool_free(pool, a.va + 4, (a.dma + 4) as dma_addr_t); // not a block start
    expect(kinds()).toEqual(["unmap-not-mapped", "unmap-not-mapped"]);
    expect(k.findings.list[0].message).toMatch(/dma_pool_free p, 0x[0-9a-f]+\/0x0000000000001234 \(bad dma\)/);
    expect(pool.nr_active).toBe(1);
  });

  it("bad vaddr: CPU address and handle of different blocks", () => {
    const { dev, alloc, kinds } = boot();
    const pool = dma_pool_create("p", dev, 32, 8, 0)!;
    const a = alloc(pool);
    const b = alloc(pool);
    dma_pool_free(pool, a.va, b.dma);
    expect(kinds()).toEqual(["free-coherent-mismatch"]);
    expect(pool.nr_active).toBe(2);
  });

  it("already free: a double free is reported with the block's history", () => {
    const { k, dev, alloc, kinds } = boot();
    const pool = dma_pool_create("p", dev, 32, 8, 0)!;
    const a = alloc(pool);
    dma_pool_free(pool, a.va, a.dma);
    dma_pool_free(pool, a.va, a.dma);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
    expect(k.findings.list[0].message).toContain("already free");
    expect(k.findings.list[0].history!.map((h) => h.op)).toEqual(["dma_pool_alloc", "dma_pool_free", "dma_pool_free"]);
    expect(pool.nr_active).toBe(0);
  });

  it("a write to a freed block is caught when the block is handed out again", () => {
    const { k, dev, alloc, kinds } = boot();
    const pool = dma_pool_create("p", dev, 32, 8, 0)!;
    const a = alloc(pool);
    dma_pool_free(pool, a.va, a.dma);
    kwrite8(a.va + 5, 0x11);
    alloc(pool);
    expect(kinds()).toEqual(["warn"]);
    expect(k.findings.list[0].message).toMatch(/corrupted.*byte 5/);
  });
});

describe("dma_pool_destroy and dmam_pool_create", () => {
  it("frees every page when all blocks are back", () => {
    const { dev, alloc, kinds } = boot("x86-coherent");
    const pool = dma_pool_create("p", dev, 2048, 8, 0)!;
    const blocks = [alloc(pool), alloc(pool), alloc(pool)];
    expect(dma_debug_live(dev)).toHaveLength(2);
    for (const b of blocks) dma_pool_free(pool, b.va, b.dma);
    dma_pool_destroy(pool);
    dma_pool_destroy(null);
    expect(dma_debug_live()).toEqual([]);
    expect(kinds()).toEqual([]);
  });

  it("busy: logs, reports a memory leak and leaks the pages as Linux does", () => {
    const { k, dev, alloc, kinds } = boot();
    const pool = dma_pool_create("ring", dev, 64, 8, 0)!;
    alloc(pool);
    dma_pool_destroy(pool);
    expect(kinds()).toEqual(["memory-leak"]);
    expect(k.printk.dmesg().some((l) => l.includes("testdrv 0000:00:03.0: dma_pool_destroy ring busy"))).toBe(true);
    expect(dma_debug_live(dev)).toHaveLength(1);
    expect(alloc(pool).va).toBe(0);
  });

  it("a managed pool is destroyed when the driver detaches, or early on request", () => {
    const { dev, alloc, kinds } = boot();
    const p1 = dmam_pool_create("a", dev, 64, 8, 0)!;
    const b = alloc(p1);
    dma_pool_free(p1, b.va, b.dma);
    const p2 = dmam_pool_create("b", dev, 64, 8, 0)!;
    alloc(p2);
    const blk = alloc(p2);
    dma_pool_free(p2, blk.va, blk.dma);
    dmam_pool_destroy(p1);
    expect(dev.devres).toHaveLength(1);
    expect(devres_release_all(dev)).toBe(1);
    expect(kinds()).toEqual(["memory-leak"]); // p2 still had a block out
    dmam_pool_destroy(p1);
    expect(kinds()).toEqual(["memory-leak", "warn"]);
  });
});
