/**
 * The coherence sanitizer's effects: bytes that really were stale or lost, reported when it
 * happens. Minimal sequences on a bare arm64 kernel; the device is a DmaPort attached by hand.
 */
import { describe, expect, it } from "vitest";
import { kmalloc, kzalloc, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import { copy_from_user, kread32, kwrite32, memset } from "../../../../kernel/mm/access.ts";
import {
  DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_sync_single_for_cpu, dma_sync_single_for_device,
  dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { setup } from "./sanitizer-rig.ts";

/** Never zero, so every byte differs from freshly zeroed memory. */
const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => ((seed * 37 + i * 11) % 255) + 1);
const hexs = (b: Uint8Array): string => [...b].map((v) => v.toString(16).padStart(2, "0")).join(" ");

describe("stale-cpu-read", () => {
  it("a load served from a line cached before the device wrote is reported, with expected and actual bytes", () => {
    const t = setup();
    const buf = kzalloc(256, 0); // zeroed through the cache: the lines are cached
    const h = t.map(buf, 256, DMA_FROM_DEVICE);
    t.devWrite(h, bytes(256));
    const seen = t.cpuRead(buf, 256);
    expect(seen).toEqual(new Uint8Array(256));
    expect(t.kinds()).toEqual(["cpu-access-device-owned", "stale-cpu-read"]);
    const f = t.only("stale-cpu-read")[0];
    expect(f.details).toMatchObject({ offset_start: 0, offset_end: 255, bytes: 256, expected: hexs(bytes(8)), actual: "00 00 00 00 00 00 00 00" });
    expect(f.fix).toBe("Call dma_sync_single_for_cpu() before reading what the device wrote.");
    expect(f.history!.map((x) => x.op)).toEqual(["dma_map_single", "dma_mapping_error"]);
    t.cpuRead(buf, 256); // same epoch: not again
    expect(t.only("stale-cpu-read").length).toBe(1);
    dma_sync_single_for_cpu(t.dev, h, 256, DMA_FROM_DEVICE);
    expect(t.cpuRead(buf, 256)).toEqual(bytes(256));
    dma_unmap_single(t.dev, h, 256, DMA_FROM_DEVICE);
    expect(t.k.findings.count).toBe(2);
    expect(t.san.shadow.size).toBe(0);
  });

  it("typed loads are checked too (the bytes come from the CPU's cached copy)", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    const h = t.map(buf, 128, DMA_FROM_DEVICE);
    t.devWrite(h + 64, bytes(64));
    expect(kread32(buf + 68)).toBe(0);
    expect(t.only("stale-cpu-read")[0].details).toMatchObject({ offset_start: 68, offset_end: 71, bytes: 4 });
    expect(t.only("stale-cpu-read")[0].details!.addr).toBe(`0x${(virt_to_phys(buf) + 68).toString(16).padStart(16, "0")}`);
  });

  it("is exact: a line not cached when the device wrote reads fresh, so only the cause is reported", () => {
    const t = setup();
    const buf = kmalloc(256, 0); // never touched by the CPU: nothing cached
    const h = t.map(buf, 256, DMA_FROM_DEVICE);
    t.devWrite(h, bytes(256));
    expect(t.cpuRead(buf, 256)).toEqual(bytes(256));
    expect(t.kinds()).toEqual(["cpu-access-device-owned"]);
    expect(t.san.shadow.size).toBe(0);
  });

  it("is reported for memory no mapping covers, by address", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    t.devWrite(virt_to_phys(buf), bytes(16));
    kread32(buf);
    expect(t.kinds()).toEqual(["device-access-unmapped", "stale-cpu-read"]);
    expect(t.only("stale-cpu-read")[0].details).toMatchObject({ offset_start: virt_to_phys(buf), bytes: 4 });
  });
});

describe("lost-device-write", () => {
  it("a dirty line written back over what the device wrote is reported at the write-back", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    const h = t.map(buf, 128, DMA_BIDIRECTIONAL);
    kwrite32(buf + 8, 0xdeadbeef); // BUG: the device owns the buffer; line 0 is now dirty
    t.devWrite(h, bytes(128));
    expect(t.kinds()).toEqual(["cpu-access-device-owned"]);
    dma_sync_single_for_device(t.dev, h, 128, DMA_BIDIRECTIONAL); // clean: the stale line goes to RAM
    expect(t.kinds()).toEqual(["cpu-access-device-owned", "lost-device-write"]);
    const f = t.only("lost-device-write")[0];
    expect(f.details).toMatchObject({ offset_start: 0, offset_end: 63, bytes: 64, shared_line: false, expected: hexs(bytes(8)), actual: "00 00 00 00 00 00 00 00" });
    expect(f.fix).toMatch(/^Do not write the buffer while the device owns it/);
    const phys = virt_to_phys(buf);
    expect(t.ram(phys, 4)).toEqual(new Uint8Array(4)); // RAM really lost the device's bytes
    expect(t.ram(phys + 64, 64)).toEqual(bytes(128).subarray(64)); // the untouched line kept them
    dma_unmap_single(t.dev, h, 128, DMA_BIDIRECTIONAL);
  });

  it("a shared line flushed by the unmap of a partly covered line names the shared-line fix", () => {
    const t = setup();
    const msg = kzalloc(64, 0);
    const h = t.map(msg, 48, DMA_FROM_DEVICE);
    kwrite32(msg + 48, 1);
    t.devWrite(h, bytes(48));
    dma_unmap_single(t.dev, h, 48, DMA_FROM_DEVICE);
    expect(t.kinds()).toEqual(["cpu-access-device-owned", "lost-device-write"]);
    const f = t.only("lost-device-write")[0];
    expect(f.details).toMatchObject({ bytes: 48, offset_end: 47, shared_line: true });
    expect(f.fix).toBe("Do not write fields sharing a cache line with a DMA_FROM_DEVICE buffer while it is mapped; align the buffer to dma_get_cache_alignment().");
    expect(t.cpuRead(msg, 48)).toEqual(new Uint8Array(48));
    expect(kread32(msg + 48)).toBe(1);
  });

  it("is exact: a dirty line dropped by the invalidate loses the CPU's write, not the device's", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    const h = t.map(buf, 128, DMA_FROM_DEVICE);
    kwrite32(buf, 0x11111111);
    t.devWrite(h, bytes(128));
    dma_unmap_single(t.dev, h, 128, DMA_FROM_DEVICE); // whole lines: invalidated, nothing written back
    expect(t.cpuRead(buf, 128)).toEqual(bytes(128));
    expect(t.kinds()).toEqual(["cpu-access-device-owned"]);
  });

  it("a write-back of bytes equal to what the device wrote destroys nothing", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    const h = t.map(buf, 128, DMA_BIDIRECTIONAL);
    t.devWrite(h, bytes(128));
    dma_sync_single_for_cpu(t.dev, h, 128, DMA_BIDIRECTIONAL);
    copy_from_user(buf + 4, bytes(4, 9)); // fetched fresh, then written: legal
    dma_sync_single_for_device(t.dev, h, 128, DMA_BIDIRECTIONAL);
    dma_unmap_single(t.dev, h, 128, DMA_BIDIRECTIONAL);
    expect(t.k.findings.count).toBe(0);
  });
});

describe("stale-device-read", () => {
  it("a device read of bytes a dirty line holds newer is reported, cache bytes expected, RAM bytes actual", () => {
    const t = setup();
    const buf = kzalloc(256, 0);
    copy_from_user(buf, bytes(256, 1));
    const h = t.map(buf, 256, DMA_TO_DEVICE);
    copy_from_user(buf + 64, bytes(64, 2)); // BUG: rewritten while the device owns it, no sync
    const got = t.devRead(h, 256);
    expect(got).toEqual(bytes(256, 1));
    expect(t.kinds()).toEqual(["cpu-access-device-owned", "stale-device-read"]);
    const f = t.only("stale-device-read")[0];
    expect(f.details).toMatchObject({ offset_start: 64, offset_end: 127, expected: hexs(bytes(64, 2).subarray(0, 8)), actual: hexs(bytes(256, 1).subarray(64, 72)) });
    expect(f.fix).toBe("Call dma_sync_single_for_device() after writing and before starting the device.");
    dma_unmap_single(t.dev, h, 256, DMA_TO_DEVICE);
  });

  it("dirty lines elsewhere, or dirty bytes equal to RAM, are not stale", () => {
    const t = setup();
    const a = kzalloc(128, 0);
    const b = kzalloc(128, 0);
    copy_from_user(a, bytes(128));
    const h = t.map(a, 128, DMA_TO_DEVICE);
    memset(b, 7, 128); // another buffer's dirty lines
    t.devRead(h, 128);
    dma_unmap_single(t.dev, h, 128, DMA_TO_DEVICE);
    expect(t.k.findings.count).toBe(0);
  });
});

describe("effects on a coherent machine", () => {
  it("never happen: every effect sequence above keeps its data on x86-coherent, and only causes are reported", () => {
    const t = setup("x86-coherent");
    const rx = kzalloc(256, 0);
    const h1 = t.map(rx, 256, DMA_FROM_DEVICE);
    t.devWrite(h1, bytes(256));
    expect(t.cpuRead(rx, 256)).toEqual(bytes(256));
    dma_unmap_single(t.dev, h1, 256, DMA_FROM_DEVICE);
    const bidi = kzalloc(128, 0);
    const h2 = t.map(bidi, 128, DMA_BIDIRECTIONAL);
    kwrite32(bidi + 8, 0xdeadbeef);
    t.devWrite(h2, bytes(128));
    dma_sync_single_for_device(t.dev, h2, 128, DMA_BIDIRECTIONAL);
    expect(t.ram(virt_to_phys(bidi), 128)).toEqual(bytes(128));
    dma_unmap_single(t.dev, h2, 128, DMA_BIDIRECTIONAL);
    const tx = kzalloc(256, 0);
    const h3 = t.map(tx, 256, DMA_TO_DEVICE);
    copy_from_user(tx, bytes(256, 2));
    expect(t.devRead(h3, 256)).toEqual(bytes(256, 2));
    dma_unmap_single(t.dev, h3, 256, DMA_TO_DEVICE);
    expect([...new Set(t.kinds())]).toEqual(["cpu-access-device-owned"]);
    expect(t.kinds().length).toBe(3);
    expect(t.san.shadow.size).toBe(0);
  });
});

describe("correct drivers", () => {
  it("report nothing under random evictions and speculative fills, and leave no shadow behind", () => {
    for (const seed of [1, 2, 3, 4]) {
      const t = setup("arm64-noncoherent", seed, true);
      const bufs = [kzalloc(1000, 0), kzalloc(4096, 0), kzalloc(100, 0)];
      for (let round = 0; round < 5; round++) {
        for (const [i, b] of bufs.entries()) {
          const size = [1000, 4096, 100][i];
          copy_from_user(b, bytes(size, round));
          const h = t.map(b, size, DMA_BIDIRECTIONAL);
          expect(t.devRead(h, size)).toEqual(bytes(size, round));
          t.devWrite(h, bytes(size, round + 10));
          dma_sync_single_for_cpu(t.dev, h, size, DMA_BIDIRECTIONAL);
          expect(t.cpuRead(b, size)).toEqual(bytes(size, round + 10));
          dma_unmap_single(t.dev, h, size, DMA_BIDIRECTIONAL);
        }
      }
      expect(t.k.findings.list).toEqual([]);
      expect(t.san.shadow.size).toBe(0);
    }
  });
});
