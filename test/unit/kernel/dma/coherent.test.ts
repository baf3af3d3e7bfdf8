import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { GFP_KERNEL, PAGE_SIZE, type dma_addr_t } from "../../../../kernel/include/types.ts";
import { copy_from_user, copy_to_user, kread32, kwrite32 } from "../../../../kernel/mm/access.ts";
import { AddressSpace, REGION_SIZE, REGION_UNCACHED } from "../../../../kernel/mm/layout.ts";
import {
  DMA_ATTR_WRITE_COMBINE,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  dma_addr_holder,
  dma_alloc_attrs,
  dma_alloc_coherent,
  dma_alloc_noncoherent,
  dma_free_attrs,
  dma_free_coherent,
  dma_free_noncoherent,
  dma_set_coherent_mask,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dmam_alloc_coherent,
  dmam_free_coherent,
} from "../../../../kernel/include/dma-mapping.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";
import { dma_stats } from "../../../../kernel/dma/state.ts";

type ProfileName = "x86-coherent" | "arm64-noncoherent";
const PROFILES: ProfileName[] = ["x86-coherent", "arm64-noncoherent"];

function boot(profile: ProfileName) {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  const board = new Board(desc, { seed: 1 });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  dev.driver = { name: "testdrv" };
  const coherent = desc.dma.coherent;
  const devRead = (addr: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    board.mem.deviceRead(addr, out, 0, len, coherent);
    return out;
  };
  const devWrite = (addr: number, data: Uint8Array): void => {
    board.mem.deviceWrite(addr, data, 0, data.length, coherent);
  };
  const cpuRead = (va: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    copy_to_user(out, va, len);
    return out;
  };
  const kinds = () => k.findings.list.map((f) => f.kind);
  return { board, k, dev, devRead, devWrite, cpuRead, kinds };
}

const pattern = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 13 + seed) & 0xff);

describe("dma_alloc_coherent", () => {
  for (const p of PROFILES) {
    it(`${p}: CPU writes are visible to the device at once, and device writes to the CPU`, () => {
      const { dev, devRead, devWrite, cpuRead, kinds } = boot(p);
      const h = dma_addr_holder();
      const va = dma_alloc_coherent(dev, 1000, h, GFP_KERNEL);
      expect(va).not.toBe(0);
      expect(cpuRead(va, 1000)).toEqual(new Uint8Array(1000)); // zeroed
      copy_from_user(va, pattern(1000, 1));
      expect(devRead(h.value, 1000)).toEqual(pattern(1000, 1));
      devWrite(h.value, pattern(1000, 2));
      expect(cpuRead(va, 1000)).toEqual(pattern(1000, 2));
      kwrite32(va + 8, 0xdeadbeef);
      expect(devRead(h.value + 8, 4)).toEqual(new Uint8Array([0xef, 0xbe, 0xad, 0xde]));
      expect(kread32(va + 8)).toBe(0xdeadbeef);
      dma_free_coherent(dev, 1000, va, h.value);
      expect(kinds()).toEqual([]);
      expect(dma_debug_live()).toEqual([]);
    });
  }

  it("gives the uncached alias on a non-coherent device and the linear map on a coherent one", () => {
    const a = boot("arm64-noncoherent");
    const ha = dma_addr_holder();
    const va = dma_alloc_coherent(a.dev, 64, ha, GFP_KERNEL);
    expect(AddressSpace.kind(va)).toBe("uncached");
    expect(va).toBe(REGION_UNCACHED * REGION_SIZE + ha.value);
    const x = boot("x86-coherent");
    const hx = dma_addr_holder();
    expect(AddressSpace.kind(dma_alloc_coherent(x.dev, 64, hx, GFP_KERNEL))).toBe("linear");
  });

  it("prepares the pages on a non-coherent device: dirty lines of a previous owner cannot land later", () => {
    const { k, board, dev, devWrite, cpuRead } = boot("arm64-noncoherent");
    // a previous owner leaves the first page dirty in the cache through the linear map
    const phys = k.pages.alloc(0, 0);
    copy_from_user(0x1000000000000 + phys, new Uint8Array(256).fill(0xaa));
    k.pages.free(phys);
    const h = dma_addr_holder();
    const va = dma_alloc_coherent(dev, 256, h, GFP_KERNEL);
    expect(h.value).toBe(phys);
    expect(board.mem.whereIs(phys)).toEqual([]);
    devWrite(h.value, pattern(256, 3));
    expect(cpuRead(va, 256)).toEqual(pattern(256, 3));
    expect(dma_stats(k).lines_flushed).toBe(PAGE_SIZE / 64);
  });

  it("aligns to the smallest page order that holds the size", () => {
    const { dev } = boot("arm64-noncoherent");
    for (const size of [1, 4096, 4097, 20000, 65536]) {
      const h = dma_addr_holder();
      dma_alloc_coherent(dev, size, h, GFP_KERNEL);
      const order = Math.max(0, Math.ceil(Math.log2(size / PAGE_SIZE)));
      expect(h.value % (PAGE_SIZE << order)).toBe(0);
    }
  });

  it("allocates below the coherent mask, and fails with NULL when nothing fits", () => {
    const { k, dev } = boot("arm64-noncoherent");
    dev.numa_node = 1; // node 1 sits above 4 GiB: the 32-bit default must fall back to node 0
    const h = dma_addr_holder();
    expect(dma_alloc_coherent(dev, 4096, h, GFP_KERNEL)).not.toBe(0);
    expect(h.value).toBeLessThan(2 ** 32);
    expect(dma_set_coherent_mask(dev, DMA_BIT_MASK(64))).toBe(0);
    dma_alloc_coherent(dev, 4096, h, GFP_KERNEL);
    expect(h.value).toBeGreaterThanOrEqual(0x880000000);
    dev.coherent_dma_mask = DMA_BIT_MASK(21); // forced below what the allocator has free
    const before = h.value;
    expect(dma_alloc_coherent(dev, 4 << 20, h, GFP_KERNEL)).toBe(0);
    expect(h.value).toBe(before);
    expect(k.findings.count).toBe(0);
  });

  it("DMA_ATTR_WRITE_COMBINE gives the write-combining alias on a non-coherent device", () => {
    const { dev, devRead } = boot("arm64-noncoherent");
    const h = dma_addr_holder();
    const va = dma_alloc_attrs(dev, 128, h, GFP_KERNEL, DMA_ATTR_WRITE_COMBINE);
    expect(AddressSpace.kind(va)).toBe("wc");
    copy_from_user(va, pattern(128, 4));
    kread32(va); // a load through another memory type drains the WC buffer, as a barrier would
    expect(devRead(h.value, 128)).toEqual(pattern(128, 4));
    dma_free_attrs(dev, 128, va, h.value, DMA_ATTR_WRITE_COMBINE);
  });

  it("frees the pages (and counts), NULL is a no-op", () => {
    const { k, dev, kinds } = boot("x86-coherent");
    const blocks = k.pages.liveBlocks;
    const h = dma_addr_holder();
    const va = dma_alloc_coherent(dev, 8192, h, GFP_KERNEL);
    expect(k.pages.liveBlocks).toBe(blocks + 1);
    dma_free_coherent(dev, 8192, 0, h.value);
    expect(k.pages.liveBlocks).toBe(blocks + 1);
    dma_free_coherent(dev, 8192, va, h.value);
    expect(k.pages.liveBlocks).toBe(blocks);
    expect(dma_stats(k)).toMatchObject({ coherent_allocs: 1, coherent_frees: 1, coherent_bytes: 8192 });
    expect(kinds()).toEqual([]);
  });

  it("WARNs when freed from hardirq context", () => {
    const { k, dev } = boot("x86-coherent");
    const h = dma_addr_holder();
    const va = dma_alloc_coherent(dev, 64, h, GFP_KERNEL);
    k.exec.runOn(0, "hardirq", "testdrv", "irq", () => dma_free_coherent(dev, 64, va, h.value));
    expect(k.findings.list.map((f) => f.kind)).toEqual(["warn"]);
  });
});

describe("free mismatches", () => {
  function allocated(p: ProfileName) {
    const b = boot(p);
    const h = dma_addr_holder();
    const va = dma_alloc_coherent(b.dev, 4096, h, GFP_KERNEL);
    return { ...b, va, handle: h.value, blocks: b.k.pages.liveBlocks };
  }

  it("a wrong size is free-coherent-mismatch, a WARN, and frees nothing", () => {
    const { k, dev, va, handle, blocks, kinds } = allocated("arm64-noncoherent");
    dma_free_coherent(dev, 2048, va, handle);
    expect(kinds()).toEqual(["free-coherent-mismatch"]);
    expect(k.findings.list[0].message).toContain("frees DMA memory with different size");
    expect(k.warnings).toBe(1);
    expect(k.pages.liveBlocks).toBe(blocks);
    expect(dma_debug_live(dev)).toHaveLength(1);
    dma_free_coherent(dev, 4096, va, handle); // the right call still works
    expect(dma_debug_live(dev)).toHaveLength(0);
  });

  it("a wrong CPU address is free-coherent-mismatch", () => {
    const { k, dev, va, handle, kinds } = allocated("x86-coherent");
    dma_free_coherent(dev, 4096, va + 64, handle);
    expect(kinds()).toEqual(["free-coherent-mismatch"]);
    expect(k.findings.list[0].message).toContain("different CPU address");
  });

  it("a wrong handle for a live CPU address is free-coherent-mismatch", () => {
    const { dev, va, handle, kinds } = allocated("x86-coherent");
    dma_free_coherent(dev, 4096, va, (handle + 4096) as dma_addr_t);
    expect(kinds()).toEqual(["free-coherent-mismatch"]);
  });

  it("a double free is unmap-not-mapped", () => {
    const { dev, va, handle, kinds } = allocated("x86-coherent");
    dma_free_coherent(dev, 4096, va, handle);
    dma_free_coherent(dev, 4096, va, handle);
    expect(kinds()).toEqual(["unmap-not-mapped"]);
  });
});

describe("dmam_alloc_coherent", () => {
  it("registers a devres release that frees the memory", () => {
    const { k, dev, kinds } = boot("arm64-noncoherent");
    const blocks = k.pages.liveBlocks;
    const h = dma_addr_holder();
    const va = dmam_alloc_coherent(dev, 4096, h, GFP_KERNEL);
    expect(va).not.toBe(0);
    expect(dev.devres.map((n) => n.name)).toEqual(["dmam_release"]);
    for (const n of [...dev.devres].reverse()) n.release(); // what the driver core does at detach
    expect(k.pages.liveBlocks).toBe(blocks);
    expect(dma_debug_live(dev)).toEqual([]);
    expect(kinds()).toEqual([]);
  });

  it("dmam_free_coherent frees early and drops the devres entry; a bogus one WARNs", () => {
    const { k, dev, kinds } = boot("x86-coherent");
    const h = dma_addr_holder();
    const va = dmam_alloc_coherent(dev, 4096, h, GFP_KERNEL);
    dmam_free_coherent(dev, 4096, va, h.value);
    expect(dev.devres).toEqual([]);
    expect(dma_debug_live(dev)).toEqual([]);
    dmam_free_coherent(dev, 4096, va, h.value);
    expect(kinds()).toEqual(["warn"]);
    expect(k.warnings).toBe(1);
  });
});

describe("dma_alloc_noncoherent", () => {
  it("is cacheable memory whose ownership moves with syncs (arm64-noncoherent)", () => {
    const { dev, devRead, devWrite, cpuRead, kinds } = boot("arm64-noncoherent");
    const h = dma_addr_holder();
    const va = dma_alloc_noncoherent(dev, 512, h, DMA_FROM_DEVICE, GFP_KERNEL);
    expect(AddressSpace.kind(va)).toBe("linear");
    expect(dma_debug_live(dev)[0]).toMatchObject({ type: "noncoherent", domain: "CPU" });
    copy_from_user(va, pattern(512, 1));
    dma_sync_single_for_device(dev, h.value, 512, DMA_FROM_DEVICE);
    expect(devRead(h.value, 512)).toEqual(pattern(512, 1));
    devWrite(h.value, pattern(512, 2));
    expect(cpuRead(va, 512)).toEqual(pattern(512, 1)); // stale until synced
    dma_sync_single_for_cpu(dev, h.value, 512, DMA_FROM_DEVICE);
    expect(cpuRead(va, 512)).toEqual(pattern(512, 2));
    dma_free_noncoherent(dev, 512, va, h.value, DMA_FROM_DEVICE);
    expect(kinds()).toEqual([]);
    expect(dma_debug_live()).toEqual([]);
  });
});
