import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { kmalloc, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import { copy_from_user, copy_to_user } from "../../../../kernel/mm/access.ts";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE } from "../../../../kernel/include/dma-mapping.ts";
import {
  arch_dma_prep_coherent,
  arch_sync_dma_for_cpu,
  arch_sync_dma_for_device,
  dcache_inval_poc,
} from "../../../../kernel/dma/noncoherent.ts";
import { dma_stats } from "../../../../kernel/dma/state.ts";

function boot(trace = false) {
  const desc = getProfile("arm64-noncoherent");
  desc.pci.devices = [];
  const board = new Board(desc, { seed: 1, trace });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  const ram = (addr: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    board.map.ram.read(addr, out, 0, len);
    return out;
  };
  /** A 256-byte, page-aligned buffer whose lines are all dirty with `fill` in the CPU cache. */
  const dirtyBuffer = (fill: number) => {
    const va = kmalloc(4096, 0);
    copy_from_user(va, new Uint8Array(256).fill(fill));
    return { va, phys: virt_to_phys(va) as number };
  };
  const cpuRead = (va: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    copy_to_user(out, va, len);
    return out;
  };
  return { board, k, ram, dirtyBuffer, cpuRead };
}

const all = (a: Uint8Array, v: number): boolean => a.every((b) => b === v);

describe("arch_sync_dma_for_device (map / sync_for_device)", () => {
  for (const dir of [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL] as const) {
    it(`cleans for direction ${dir}: dirty bytes reach RAM and the lines stay cached`, () => {
      const { board, k, ram, dirtyBuffer } = boot();
      const { phys } = dirtyBuffer(0xaa);
      expect(all(ram(phys, 256), 0)).toBe(true);
      arch_sync_dma_for_device(phys, 256, dir);
      expect(all(ram(phys, 256), 0xaa)).toBe(true);
      expect(board.mem.whereIs(phys).length).toBeGreaterThan(0);
      expect(board.mem.whereIs(phys).some((w) => w.dirty)).toBe(false);
      expect(dma_stats(k)).toMatchObject({ lines_cleaned: 4, lines_invalidated: 0, lines_flushed: 0 });
    });
  }
});

describe("arch_sync_dma_for_cpu (sync_for_cpu / unmap)", () => {
  it("does nothing for DMA_TO_DEVICE", () => {
    const { board, k, dirtyBuffer } = boot();
    const { phys } = dirtyBuffer(0xaa);
    arch_sync_dma_for_cpu(phys, 256, DMA_TO_DEVICE);
    expect(board.mem.whereIs(phys).some((w) => w.dirty)).toBe(true);
    expect(dma_stats(k).cache_ops).toBe(0);
  });

  for (const dir of [DMA_FROM_DEVICE, DMA_BIDIRECTIONAL] as const) {
    it(`invalidates for direction ${dir}: the CPU then reads RAM`, () => {
      const { board, k, ram, dirtyBuffer, cpuRead } = boot();
      const { va, phys } = dirtyBuffer(0xaa);
      board.mem.deviceWrite(phys, new Uint8Array(256).fill(0x55), 0, 256, false);
      expect(all(cpuRead(va, 256), 0xaa)).toBe(true); // stale: the cache wins
      arch_sync_dma_for_cpu(phys, 256, dir);
      expect(all(cpuRead(va, 256), 0x55)).toBe(true);
      expect(all(ram(phys, 256), 0x55)).toBe(true); // the dirty lines were dropped, not written
      expect(dma_stats(k)).toMatchObject({ lines_invalidated: 4, lines_flushed: 0 });
    });
  }
});

describe("dcache_inval_poc edge lines", () => {
  it("flushes partly covered first and last lines and drops only whole lines", () => {
    const { k, ram, dirtyBuffer, cpuRead } = boot();
    const { va, phys } = dirtyBuffer(0xaa);
    // [16, 176): line 0 partly, line 1 wholly, line 2 partly; line 3 untouched
    dcache_inval_poc(phys + 16, 160);
    const r = ram(phys, 256);
    expect(all(r.subarray(0, 64), 0xaa)).toBe(true); // edge line written back
    expect(all(r.subarray(64, 128), 0)).toBe(true); // whole line dropped: its dirty bytes are gone
    expect(all(r.subarray(128, 192), 0xaa)).toBe(true); // edge line written back
    expect(all(r.subarray(192, 256), 0)).toBe(true); // outside the range: still only in the cache
    const seen = cpuRead(va, 256);
    expect(all(seen.subarray(0, 16), 0xaa)).toBe(true); // neighbours before the range survive
    expect(all(seen.subarray(176, 256), 0xaa)).toBe(true); // and after it
    expect(dma_stats(k)).toMatchObject({ lines_flushed: 2, lines_invalidated: 1, cache_ops: 3 });
  });

  it("flushes a range inside one line (twice, as cache.S does) and invalidates nothing", () => {
    const { k, ram, dirtyBuffer, cpuRead } = boot();
    const { va, phys } = dirtyBuffer(0xaa);
    dcache_inval_poc(phys + 8, 16);
    expect(all(ram(phys, 64), 0xaa)).toBe(true);
    expect(all(cpuRead(va, 64), 0xaa)).toBe(true);
    expect(dma_stats(k)).toMatchObject({ lines_flushed: 2, lines_invalidated: 0 });
  });

  it("invalidates an aligned range with no flush at all", () => {
    const { k, dirtyBuffer } = boot();
    const { phys } = dirtyBuffer(0xaa);
    dcache_inval_poc(phys + 64, 128);
    expect(dma_stats(k)).toMatchObject({ lines_flushed: 0, lines_invalidated: 2, cache_ops: 1 });
  });
});

describe("arch_dma_prep_coherent", () => {
  it("cleans and invalidates: dirty data reaches RAM and no line stays cached", () => {
    const { board, k, ram, dirtyBuffer } = boot();
    const { phys } = dirtyBuffer(0xaa);
    arch_dma_prep_coherent(phys, 4096);
    expect(all(ram(phys, 256), 0xaa)).toBe(true);
    expect(board.mem.whereIs(phys)).toEqual([]);
    expect(dma_stats(k).lines_flushed).toBe(64);
  });
});

describe("tracing", () => {
  it("records each maintenance operation as an instant with its range", () => {
    const { board, dirtyBuffer } = boot(true);
    const { phys } = dirtyBuffer(0xaa);
    arch_sync_dma_for_device(phys, 256, DMA_TO_DEVICE);
    dcache_inval_poc(phys + 1, 64);
    const events = JSON.parse(board.trace.toJSON()).traceEvents as { name: string; ph: string; args?: Record<string, number> }[];
    const names = events.filter((e) => e.ph === "i").map((e) => e.name);
    expect(names).toEqual(["dcache_clean_poc", "dcache_clean_inval_poc", "dcache_clean_inval_poc"]);
    expect(events.find((e) => e.name === "dcache_clean_poc")!.args).toEqual({ phys, len: 256 });
  });
});
