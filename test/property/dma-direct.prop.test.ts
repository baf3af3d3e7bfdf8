/**
 * Property: on the direct path, a driver that follows the ownership protocol (§1.2, §4.5)
 * always sees what the device last wrote, and the device always sees what the CPU last
 * wrote, whatever the cache does meanwhile (random evictions, speculative prefetches, two
 * CPUs with small caches). Correct sequences leave no findings and no live mappings.
 *
 * The interpreter keeps one "truth" per buffer (the last bytes anyone wrote) and skips every
 * generated step the protocol forbids in the buffer's current state, so each run is a legal
 * driver: CPU accesses only while the CPU owns the buffer (unmapped, or after sync_for_cpu),
 * device accesses only while the device owns it and the direction allows them.
 * One rule is easy to miss: unmapping a FROM_DEVICE / BIDIRECTIONAL mapping hands the device's
 * bytes to the CPU (arm64 invalidates, swiotlb copies the bounce slot back), so CPU writes made
 * after sync_for_cpu are thrown away unless the driver syncs for the device first. The legal
 * driver modelled here does that; the first version of this test did not, and lost bytes.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import { Platform } from "../../kernel/platform/platform.ts";
import { Kernel } from "../../kernel/core/kernel.ts";
import { device } from "../../kernel/include/device.ts";
import { PAGE_SIZE, type dma_addr_t, type vaddr_t } from "../../kernel/include/types.ts";
import { kzalloc, virt_to_phys } from "../../kernel/mm/slab-api.ts";
import { copy_from_user, copy_to_user } from "../../kernel/mm/access.ts";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_map_page,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_page,
  dma_unmap_single,
} from "../../kernel/include/dma-mapping.ts";
import { dma_debug_live } from "../../kernel/dma/debug.ts";

type Dir = typeof DMA_BIDIRECTIONAL | typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE;

type Op =
  | { t: "map"; b: number; dir: Dir; page: boolean; cpu: number }
  | { t: "unmap" | "syncCpu" | "syncDev" | "cpuRead" | "devRead"; b: number; cpu: number }
  | { t: "cpuWrite" | "devWrite"; b: number; cpu: number; off: number; len: number; seed: number };

interface Buffer {
  va: vaddr_t;
  size: number;
  truth: Uint8Array;
  map: { h: dma_addr_t; dir: Dir; page: boolean; owner: "cpu" | "device"; cpuWrote: boolean } | null;
}

const NBUF = 3;
const SIZES = [64, 100, 128, 200, 512, 1000, 4096];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ t: fc.constant("map" as const), b: fc.nat(NBUF - 1), dir: fc.constantFrom<Dir>(0, 1, 2), page: fc.boolean(), cpu: fc.nat(1) }) },
  {
    weight: 5,
    arbitrary: fc.record({ t: fc.constantFrom("unmap" as const, "syncCpu" as const, "syncDev" as const, "cpuRead" as const, "devRead" as const), b: fc.nat(NBUF - 1), cpu: fc.nat(1) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constantFrom("cpuWrite" as const, "devWrite" as const),
      b: fc.nat(NBUF - 1),
      cpu: fc.nat(1),
      off: fc.nat(4095),
      len: fc.integer({ min: 1, max: 4096 }),
      seed: fc.nat(255),
    }),
  },
);

function boot(profile: "arm64-noncoherent" | "x86-coherent", seed: number) {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  // small caches, random evictions and speculative fills: the cache misbehaves as much as it may
  desc.cpus.l1 = { size: 4096, ways: 2 };
  desc.cpus.llc = { size: 16384, ways: 4 };
  desc.cpus.evictionRate = 0.02;
  desc.cpus.prefetchRate = 0.3;
  const board = new Board(desc, { seed });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  return { board, k, dev, coherent: desc.dma.coherent };
}

const fill = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (seed + i * 31) & 0xff);

/** Run a whole scenario; returns a description of the first divergence, or null. */
function run(profile: "arm64-noncoherent" | "x86-coherent", seed: number, sizes: number[], ops: Op[]): string | null {
  const { board, k, dev, coherent } = boot(profile, seed);
  const on = <T>(cpu: number, fn: () => T): T => k.exec.runOn(cpu, "process", "propdrv", "op", fn) as T;
  const bufs: Buffer[] = sizes.map((size) => {
    const va = on(0, () => kzalloc(size, 0));
    return { va, size, truth: new Uint8Array(size), map: null };
  });
  const devAccess = (b: Buffer, write: Uint8Array | null, off: number, len: number): Uint8Array => {
    const out = write ?? new Uint8Array(len);
    const ok = write ? board.mem.deviceWrite(b.map!.h + off, write, 0, len, coherent) : board.mem.deviceRead(b.map!.h, out, 0, len, coherent);
    expect(ok).toBe(true);
    return out;
  };
  /** A legal unmap: CPU writes since sync_for_cpu go back to the device side first. */
  const unmap = (b: Buffer): void => {
    const m = b.map!;
    if (m.owner === "cpu" && m.cpuWrote && m.dir !== DMA_TO_DEVICE) dma_sync_single_for_device(dev, m.h, b.size, m.dir);
    (m.page ? dma_unmap_page : dma_unmap_single)(dev, m.h, b.size, m.dir);
    b.map = null;
  };
  for (const [i, op] of ops.entries()) {
    const b = bufs[op.b];
    const m = b.map;
    const cpuOwns = !m || m.owner === "cpu";
    switch (op.t) {
      case "map": {
        if (m) break;
        const h = on(op.cpu, () => {
          if (!op.page) return dma_map_single(dev, b.va, b.size, op.dir);
          const phys = virt_to_phys(b.va);
          return dma_map_page(dev, { pfn: Math.floor(phys / PAGE_SIZE) }, phys % PAGE_SIZE, b.size, op.dir);
        });
        expect(on(op.cpu, () => dma_mapping_error(dev, h))).toBe(0);
        b.map = { h, dir: op.dir, page: op.page, owner: "device", cpuWrote: false };
        break;
      }
      case "unmap":
        if (!m) break;
        on(op.cpu, () => unmap(b));
        break;
      case "syncCpu":
        if (!m || m.owner !== "device") break;
        on(op.cpu, () => dma_sync_single_for_cpu(dev, m.h, b.size, m.dir));
        m.owner = "cpu";
        break;
      case "syncDev":
        if (!m || m.owner !== "cpu") break;
        on(op.cpu, () => dma_sync_single_for_device(dev, m.h, b.size, m.dir));
        m.owner = "device";
        m.cpuWrote = false;
        break;
      case "cpuWrite": {
        if (!cpuOwns) break;
        const off = op.off % b.size;
        const data = fill(Math.min(op.len, b.size - off), op.seed);
        on(op.cpu, () => copy_from_user(b.va + off, data));
        b.truth.set(data, off);
        if (m) m.cpuWrote = true;
        break;
      }
      case "cpuRead": {
        if (!cpuOwns) break;
        const seen = on(op.cpu, () => {
          const out = new Uint8Array(b.size);
          copy_to_user(out, b.va, b.size);
          return out;
        });
        if (!bytesEqual(seen, b.truth)) return `step ${i}: CPU read of buffer ${op.b} differs from what was last written`;
        break;
      }
      case "devWrite": {
        if (!m || m.owner !== "device" || m.dir === DMA_TO_DEVICE) break;
        const off = op.off % b.size;
        const data = fill(Math.min(op.len, b.size - off), op.seed);
        devAccess(b, data, off, data.length);
        b.truth.set(data, off);
        break;
      }
      case "devRead": {
        if (!m || m.owner !== "device" || m.dir === DMA_FROM_DEVICE) break;
        if (!bytesEqual(devAccess(b, null, 0, b.size), b.truth)) return `step ${i}: device read of buffer ${op.b} differs from what was last written`;
        break;
      }
    }
  }
  for (const b of bufs) if (b.map) on(0, () => unmap(b));
  // after unmapping everything, the CPU owns every buffer again and must read the truth
  for (const [i, b] of bufs.entries()) {
    const out = new Uint8Array(b.size);
    on(1, () => copy_to_user(out, b.va, b.size));
    if (!bytesEqual(out, b.truth)) return `final CPU read of buffer ${i} differs`;
  }
  if (k.findings.count !== 0) return `findings: ${k.findings.list.map((f) => f.kind).join(", ")}`;
  if (dma_debug_live().length !== 0) return `${dma_debug_live().length} live mappings left`;
  return null;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

describe("direct DMA path: the ownership protocol keeps CPU and device in agreement", () => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"] as const) {
    it(`${profile}: random legal sequences of map / sync / access / unmap`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 2 ** 31 - 1 }),
          fc.array(fc.constantFrom(...SIZES), { minLength: NBUF, maxLength: NBUF }),
          fc.array(opArb, { minLength: 1, maxLength: 150, size: "max" }),
          (seed, sizes, ops) => {
            expect(run(profile, seed, sizes, ops)).toBeNull();
          },
        ),
        { numRuns: profile === "arm64-noncoherent" ? 150 : 50 },
      );
    });
  }

  it("the same checker catches a driver that skips sync_for_cpu (so the property has teeth)", () => {
    const ops: Op[] = [
      { t: "cpuRead", b: 0, cpu: 0 }, // pull the lines into the cache
      { t: "map", b: 0, dir: DMA_FROM_DEVICE, page: false, cpu: 0 },
      { t: "devWrite", b: 0, cpu: 0, off: 0, len: 4096, seed: 7 },
    ];
    const { board, k, dev, coherent } = boot("arm64-noncoherent", 1);
    board.mem.opts.evictionRate = 0;
    board.mem.opts.prefetchRate = 0;
    const va = kzalloc(512, 0);
    const out = new Uint8Array(512);
    copy_to_user(out, va, 512);
    const h = dma_map_single(dev, va, 512, DMA_FROM_DEVICE);
    dma_mapping_error(dev, h);
    board.mem.deviceWrite(h, fill(512, 7), 0, 512, coherent);
    copy_to_user(out, va, 512); // no sync_for_cpu: stale
    expect(bytesEqual(out, fill(512, 7))).toBe(false);
    dma_unmap_single(dev, h, 512, DMA_FROM_DEVICE);
    copy_to_user(out, va, 512);
    expect(bytesEqual(out, fill(512, 7))).toBe(true);
    expect(k.findings.count).toBe(0);
    expect(run("arm64-noncoherent", 1, [512, 64, 64], ops)).toBeNull();
  });
});
