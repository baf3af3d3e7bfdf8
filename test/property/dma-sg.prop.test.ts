/**
 * Property: scatter-gather mappings on the direct path.
 *
 * A legal driver (the interpreter skips every generated step the ownership protocol forbids in
 * a list's current state, as test/property/dma-direct.prop.test.ts does for single mappings)
 * always moves the right bytes both ways, per segment, whatever the caches do meanwhile, and
 * leaves no finding and no live mapping. Then one misuse is injected after a random legal
 * prefix, and the findings are exactly that misuse's kind.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import { Platform } from "../../kernel/platform/platform.ts";
import { Kernel } from "../../kernel/core/kernel.ts";
import { device } from "../../kernel/include/device.ts";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_map_sg,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_unmap_sg,
  dma_unmap_single,
} from "../../kernel/include/dma-mapping.ts";
import { sg_array, sg_copy_from_buffer, sg_copy_to_buffer, sg_init_table, sg_set_buf, type scatterlist } from "../../kernel/include/scatterlist.ts";
import { with_stack_buffer } from "../../kernel/include/stack.ts";
import { dma_debug_live } from "../../kernel/dma/debug.ts";
import { kmalloc } from "../../kernel/mm/slab-api.ts";
import type { FindingKind } from "../../kernel/core/findings.ts";

type Dir = typeof DMA_BIDIRECTIONAL | typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE;
type Profile = "arm64-noncoherent" | "x86-coherent";

/**
 * Steps are intents: an access the list's state does not allow yet first makes the legal
 * hand-over (map, sync) a driver would make, so random sequences stay dense in real transfers.
 */
type Op = { t: "map" | "unmap" | "syncCpu" | "syncDev" | "cpuRead" | "devRead" | "cpuWrite" | "devWrite"; l: number; dir: Dir; seed: number };

const MISUSES = [
  "unmap-wrong-nents",
  "sync-wrong-nents",
  "unmap-wrong-direction",
  "unmap-not-mapped",
  "sync-not-mapped",
  "sync-wrong-direction",
  "unmap-wrong-type",
  "cacheline-overlap",
  "map-stack-memory",
] as const;
type Misuse = (typeof MISUSES)[number];

const NLISTS = 3;

interface List {
  sg: scatterlist[];
  n: number;
  size: number;
  truth: Uint8Array;
  map: { dir: Dir; owner: "cpu" | "device"; cpuWrote: boolean } | null;
  everMapped: boolean;
}

const listSizes = fc.array(fc.integer({ min: 33, max: 700 }), { minLength: 1, maxLength: 4 });

const opArb: fc.Arbitrary<Op> = fc.record({
  t: fc.constantFrom("map" as const, "unmap" as const, "syncCpu" as const, "syncDev" as const, "cpuRead" as const, "devRead" as const, "cpuWrite" as const, "devWrite" as const),
  l: fc.nat(NLISTS - 1),
  dir: fc.constantFrom<Dir>(0, 1, 2),
  seed: fc.nat(255),
});

function boot(profile: Profile, seed: number) {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  desc.cpus.l1 = { size: 4096, ways: 2 };
  desc.cpus.llc = { size: 16384, ways: 4 };
  desc.cpus.evictionRate = 0.02;
  desc.cpus.prefetchRate = 0.3;
  const board = new Board(desc, { seed });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  const dev = new device("0000:00:03.0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  dev.driver = { name: "propdrv" };
  return { board, k, dev, coherent: desc.dma.coherent };
}

const fill = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (seed + i * 29) & 0xff);

/** Run a legal sequence, optionally followed by one misuse. Returns the findings' kinds. */
function run(profile: Profile, seed: number, sizes: number[][], ops: Op[], misuse: Misuse | null, pick: number): FindingKind[] {
  const { board, k, dev, coherent } = boot(profile, seed);
  const lists: List[] = sizes.map((sz) => {
    const n = sz.length;
    const sg = sg_array(n + 1); // one spare slot: a too-large nents stays inside the array
    sg_init_table(sg, n + 1);
    sz.forEach((len, i) => sg_set_buf(sg[i], kmalloc(len, 0), len));
    const size = sz.reduce((a, b) => a + b, 0);
    sg_copy_from_buffer(sg, n, new Uint8Array(size), size);
    return { sg, n, size, truth: new Uint8Array(size), map: null, everMapped: false };
  });
  const devAccess = (l: List, data: Uint8Array, write: boolean) => {
    let off = 0;
    for (let i = 0; i < l.n; i++) {
      const s = l.sg[i];
      const ok = write ? board.mem.deviceWrite(s.dma_address, data, off, s.dma_length, coherent) : board.mem.deviceRead(s.dma_address, data, off, s.dma_length, coherent);
      expect(ok).toBe(true);
      off += s.dma_length;
    }
  };
  const unmapLegal = (l: List) => {
    const m = l.map!;
    if (m.owner === "cpu" && m.cpuWrote && m.dir !== DMA_TO_DEVICE) dma_sync_sg_for_device(dev, l.sg, l.n, m.dir);
    dma_unmap_sg(dev, l.sg, l.n, m.dir);
    l.map = null;
  };
  const map = (l: List, dir: Dir) => {
    expect(dma_map_sg(dev, l.sg, l.n, dir)).toBe(l.n);
    l.map = { dir, owner: "device", cpuWrote: false };
    l.everMapped = true;
  };
  const syncCpu = (l: List) => {
    if (!l.map || l.map.owner !== "device") return;
    dma_sync_sg_for_cpu(dev, l.sg, l.n, l.map.dir);
    l.map.owner = "cpu";
  };
  const syncDev = (l: List) => {
    if (!l.map || l.map.owner !== "cpu") return;
    dma_sync_sg_for_device(dev, l.sg, l.n, l.map.dir);
    l.map.owner = "device";
    l.map.cpuWrote = false;
  };
  for (const op of ops) {
    const l = lists[op.l];
    switch (op.t) {
      case "map":
        if (!l.map) map(l, op.dir);
        break;
      case "unmap":
        if (l.map) unmapLegal(l);
        break;
      case "syncCpu":
        syncCpu(l);
        break;
      case "syncDev":
        syncDev(l);
        break;
      case "cpuRead": {
        syncCpu(l);
        const got = new Uint8Array(l.size);
        sg_copy_to_buffer(l.sg, l.n, got, l.size);
        expect(got).toEqual(l.truth);
        break;
      }
      case "cpuWrite":
        syncCpu(l);
        l.truth = fill(l.size, op.seed);
        sg_copy_from_buffer(l.sg, l.n, l.truth, l.size);
        if (l.map) l.map.cpuWrote = true;
        break;
      case "devRead": {
        if (!l.map) map(l, op.dir === DMA_FROM_DEVICE ? DMA_TO_DEVICE : op.dir);
        if (l.map!.dir === DMA_FROM_DEVICE) break;
        syncDev(l);
        const got = new Uint8Array(l.size);
        devAccess(l, got, false);
        expect(got).toEqual(l.truth);
        break;
      }
      case "devWrite":
        if (!l.map) map(l, op.dir === DMA_TO_DEVICE ? DMA_FROM_DEVICE : op.dir);
        if (l.map!.dir === DMA_TO_DEVICE) break;
        syncDev(l);
        l.truth = fill(l.size, op.seed + 100);
        devAccess(l, l.truth, true);
        break;
    }
  }
  if (misuse) {
    inject(dev, lists, misuse, pick);
    return k.findings.list.map((f) => f.kind);
  }
  for (const l of lists) if (l.map) unmapLegal(l);
  for (const l of lists) {
    const got = new Uint8Array(l.size);
    sg_copy_to_buffer(l.sg, l.n, got, l.size);
    expect(got).toEqual(l.truth);
  }
  expect(dma_debug_live()).toEqual([]);
  return k.findings.list.map((f) => f.kind);
}

const EXPECT: Record<Misuse, FindingKind> = {
  "unmap-wrong-nents": "unmap-wrong-nents",
  "sync-wrong-nents": "unmap-wrong-nents",
  "unmap-wrong-direction": "unmap-wrong-direction",
  "unmap-not-mapped": "unmap-not-mapped",
  "sync-not-mapped": "sync-not-mapped",
  "sync-wrong-direction": "sync-wrong-direction",
  "unmap-wrong-type": "unmap-wrong-type",
  "cacheline-overlap": "cacheline-overlap",
  "map-stack-memory": "map-stack-memory",
};

const other = (d: Dir): Dir => (d === DMA_TO_DEVICE ? DMA_FROM_DEVICE : DMA_TO_DEVICE);

/** Commit @misuse on a list chosen by @pick, mapping it first when the misuse needs a mapping. */
function inject(dev: device, lists: List[], misuse: Misuse, pick: number): void {
  const l = lists[pick % lists.length];
  const mapped = (dir: Dir = DMA_FROM_DEVICE) => {
    if (!l.map) {
      dma_map_sg(dev, l.sg, l.n, dir);
      l.map = { dir, owner: "device", cpuWrote: false };
    }
    return l.map;
  };
  switch (misuse) {
    case "unmap-wrong-nents":
      dma_unmap_sg(dev, l.sg, l.n + 1, mapped().dir);
      break;
    case "sync-wrong-nents":
      dma_sync_sg_for_cpu(dev, l.sg, l.n + 1, mapped().dir);
      break;
    case "unmap-wrong-direction":
      dma_unmap_sg(dev, l.sg, l.n, other(mapped().dir));
      break;
    case "unmap-not-mapped":
      if (l.map) dma_unmap_sg(dev, l.sg, l.n, l.map.dir); // make it a double unmap
      dma_unmap_sg(dev, l.sg, l.n, DMA_TO_DEVICE);
      break;
    case "sync-not-mapped":
      if (l.map) dma_unmap_sg(dev, l.sg, l.n, l.map.dir);
      dma_sync_sg_for_cpu(dev, l.sg, l.n, DMA_FROM_DEVICE);
      break;
    case "sync-wrong-direction": {
      const m = l.map && l.map.dir !== DMA_BIDIRECTIONAL ? l.map : (l.map && dma_unmap_sg(dev, l.sg, l.n, l.map.dir), (l.map = null), mapped(DMA_TO_DEVICE));
      dma_sync_sg_for_cpu(dev, l.sg, l.n, other(m.dir));
      break;
    }
    case "unmap-wrong-type": {
      const m = mapped();
      dma_unmap_single(dev, l.sg[0].dma_address, l.sg[0].dma_length, m.dir);
      break;
    }
    case "cacheline-overlap": {
      const m = mapped();
      dma_map_sg(dev, l.sg, l.n, m.dir === DMA_TO_DEVICE ? DMA_FROM_DEVICE : m.dir);
      if (m.dir === DMA_TO_DEVICE) dma_map_sg(dev, l.sg, l.n, DMA_FROM_DEVICE);
      break;
    }
    case "map-stack-memory":
      with_stack_buffer(256, (buf) => {
        const sg = sg_array(1);
        sg_init_table(sg, 1);
        sg_set_buf(sg[0], buf, 256);
        dma_map_sg(dev, sg, 1, DMA_TO_DEVICE);
        dma_unmap_sg(dev, sg, 1, DMA_TO_DEVICE);
      });
      break;
  }
}

const sizesArb = fc.array(listSizes, { minLength: NLISTS, maxLength: NLISTS });

describe("sg mappings under random legal sequences", () => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"] as const) {
    it(`move the right bytes, leave no finding and no live mapping (${profile})`, () => {
      fc.assert(
        fc.property(fc.nat(1000), sizesArb, fc.array(opArb, { maxLength: 40 }), (seed, sizes, ops) => {
          expect(run(profile, seed, sizes, ops, null, 0)).toEqual([]);
        }),
        { numRuns: 60 },
      );
    });
  }
});

describe("one injected misuse", () => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"] as const) {
    it(`gives exactly its finding kind (${profile})`, () => {
      fc.assert(
        fc.property(fc.nat(1000), sizesArb, fc.array(opArb, { maxLength: 25 }), fc.constantFrom(...MISUSES), fc.nat(10), (seed, sizes, ops, misuse, pick) => {
          const kinds = run(profile, seed, sizes, ops, misuse, pick);
          const want = EXPECT[misuse];
          expect(new Set(kinds)).toEqual(new Set([want]));
          if (misuse !== "cacheline-overlap") expect(kinds).toEqual([want]);
        }),
        { numRuns: 120 },
      );
    });
  }
});
