import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { EIO } from "../../../../kernel/include/errno.ts";
import {
  DMA_BIT_MASK,
  dma_addressing_limited,
  dma_get_cache_alignment,
  dma_get_mask,
  dma_get_max_seg_size,
  dma_get_required_mask,
  dma_get_seg_boundary,
  dma_max_mapping_size,
  dma_set_coherent_mask,
  dma_set_mask,
  dma_set_mask_and_coherent,
  dma_set_max_seg_size,
  dma_set_seg_boundary,
} from "../../../../kernel/include/dma-mapping.ts";

function boot(profile: "x86-coherent" | "arm64-noncoherent") {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  const k = new Kernel(new Platform(new Board(desc, { seed: 1 })), { logLevel: "silent" });
  const dev = new device("test0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  return { k, dev };
}

describe("dma_set_mask and friends", () => {
  it("defaults to 32-bit masks", () => {
    const { dev } = boot("x86-coherent");
    expect(dma_get_mask(dev)).toBe(DMA_BIT_MASK(32));
    expect(dev.coherent_dma_mask).toBe(DMA_BIT_MASK(32));
  });

  it("accepts every mask of 32 bits or more, including 64", () => {
    const { dev } = boot("arm64-noncoherent");
    for (const bits of [32, 36, 40, 48, 64]) expect(dma_set_mask(dev, DMA_BIT_MASK(bits))).toBe(0);
    expect(dma_get_mask(dev)).toBe(DMA_BIT_MASK(64));
  });

  it("truncates masks wider than dma_addr_t to all ones", () => {
    const { dev } = boot("arm64-noncoherent");
    expect(dma_set_mask(dev, 2 ** 64 - 1)).toBe(0);
    expect(dma_get_mask(dev)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("accepts narrow masks that still reach ZONE_DMA (edu's 28 bits, ISA's 24 bits)", () => {
    const { dev } = boot("x86-coherent");
    expect(dma_set_mask(dev, DMA_BIT_MASK(28))).toBe(0);
    expect(dma_set_mask(dev, DMA_BIT_MASK(24))).toBe(0);
  });

  it("refuses masks below the first 16 MiB of RAM, zero and junk with -EIO and keeps the old mask", () => {
    const { dev } = boot("x86-coherent");
    for (const m of [DMA_BIT_MASK(20), 0, -1, 1.5, Number.NaN]) expect(dma_set_mask(dev, m)).toBe(-EIO);
    expect(dma_get_mask(dev)).toBe(DMA_BIT_MASK(32));
    expect(dma_set_coherent_mask(dev, DMA_BIT_MASK(16))).toBe(-EIO);
    expect(dev.coherent_dma_mask).toBe(DMA_BIT_MASK(32));
  });

  it("dma_set_mask_and_coherent sets both, or neither when the streaming mask is refused", () => {
    const { dev } = boot("arm64-noncoherent");
    expect(dma_set_mask_and_coherent(dev, DMA_BIT_MASK(40))).toBe(0);
    expect(dev.dma_mask).toBe(DMA_BIT_MASK(40));
    expect(dev.coherent_dma_mask).toBe(DMA_BIT_MASK(40));
    expect(dma_set_mask_and_coherent(dev, DMA_BIT_MASK(8))).toBe(-EIO);
    expect(dev.dma_mask).toBe(DMA_BIT_MASK(40));
    expect(dev.coherent_dma_mask).toBe(DMA_BIT_MASK(40));
  });
});

describe("dma_get_required_mask and dma_addressing_limited", () => {
  it("covers the top of RAM: 33 bits on x86-coherent (RAM to 6 GiB), 36 on arm64 (to 0x8ffffffff)", () => {
    expect(dma_get_required_mask(boot("x86-coherent").dev)).toBe(DMA_BIT_MASK(33));
    expect(dma_get_required_mask(boot("arm64-noncoherent").dev)).toBe(DMA_BIT_MASK(36));
  });

  it("a 32-bit device is limited on both machines, a 64-bit one on neither", () => {
    for (const p of ["x86-coherent", "arm64-noncoherent"] as const) {
      const { dev } = boot(p);
      expect(dma_addressing_limited(dev)).toBe(true);
      dma_set_mask(dev, DMA_BIT_MASK(64));
      expect(dma_addressing_limited(dev)).toBe(false);
    }
  });

  it("has no mapping size limit without swiotlb", () => {
    expect(dma_max_mapping_size(boot("x86-coherent").dev)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("dma_get_cache_alignment", () => {
  it("is 1 on coherent x86 and ARCH_DMA_MINALIGN (128) on non-coherent arm64", () => {
    boot("x86-coherent");
    expect(dma_get_cache_alignment()).toBe(1);
    boot("arm64-noncoherent");
    expect(dma_get_cache_alignment()).toBe(128);
  });

  it("gives an x86 machine made non-coherent its dmaMinAlign", () => {
    const desc = getProfile("x86-coherent");
    desc.pci.devices = [];
    desc.dma.coherent = false;
    new Kernel(new Platform(new Board(desc, { seed: 1 })), { logLevel: "silent" });
    expect(dma_get_cache_alignment()).toBe(desc.arch.dmaMinAlign);
  });
});

describe("segment limits", () => {
  it("defaults to 64 KiB segments and no boundary, and stores what the driver sets", () => {
    const { dev } = boot("x86-coherent");
    expect(dma_get_max_seg_size(dev)).toBe(65536);
    expect(dma_get_seg_boundary(dev)).toBe(Number.MAX_SAFE_INTEGER);
    dma_set_max_seg_size(dev, 4096);
    expect(dma_set_seg_boundary(dev, DMA_BIT_MASK(32))).toBe(0);
    expect(dma_get_max_seg_size(dev)).toBe(4096);
    expect(dma_get_seg_boundary(dev)).toBe(DMA_BIT_MASK(32));
  });
});
