/**
 * Partial syncs (§4: dma_sync_single_range_for_*, or a sub-range passed to
 * dma_sync_single_for_*) hand over only their range (kernel/dma/debug-owner.ts). Correct
 * drivers that rely on that must get no finding; a driver that strays outside what it synced
 * must get the cause, naming the bytes.
 */
import { describe, expect, it } from "vitest";
import { __get_free_pages } from "../../../../kernel/mm/slab-api.ts";
import { copy_from_user } from "../../../../kernel/mm/access.ts";
import {
  DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, dma_sync_single_for_cpu, dma_sync_single_range_for_cpu, dma_sync_single_range_for_device, dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { setup } from "./sanitizer-rig.ts";
import { debug_dma_dump_mappings } from "../../../../kernel/dma/debug.ts";
import { DMA_TO_DEVICE } from "../../../../kernel/include/dma-mapping.ts";

const bytes = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

describe("partial syncs hand over only their range", () => {
  it("RX: sync the bytes a packet filled, read them, recycle the buffer to the device: no finding", () => {
    const t = setup();
    const buf = __get_free_pages(0, 0);
    const h = t.map(buf, 2048, DMA_FROM_DEVICE);
    for (let round = 0; round < 3; round++) {
      t.devWrite(h, bytes(60, 0x10 + round));
      dma_sync_single_range_for_cpu(t.dev, h, 0, 128, DMA_FROM_DEVICE);
      expect(t.cpuRead(buf, 60)).toEqual(bytes(60, 0x10 + round));
      // recycled without sync_for_device (the CPU only read): the device writes the next one
    }
    dma_unmap_single(t.dev, h, 2048, DMA_FROM_DEVICE);
    expect(t.kinds()).toEqual([]);
  });

  it("a header the CPU owns and writes while the device keeps writing the payload: no finding", () => {
    const t = setup();
    const buf = __get_free_pages(0, 0);
    const h = t.map(buf, 4096, DMA_BIDIRECTIONAL);
    dma_sync_single_range_for_cpu(t.dev, h, 0, 128, DMA_BIDIRECTIONAL);
    copy_from_user(buf, bytes(64, 0xaa)); // the header
    t.devWrite(h + 2048, bytes(2048, 0x55)); // the payload, still the device's
    dma_sync_single_range_for_device(t.dev, h, 0, 128, DMA_BIDIRECTIONAL);
    t.devRead(h, 128);
    dma_sync_single_for_cpu(t.dev, h, 4096, DMA_BIDIRECTIONAL);
    expect(t.cpuRead(buf + 2048, 4)).toEqual(bytes(4, 0x55));
    dma_unmap_single(t.dev, h, 4096, DMA_BIDIRECTIONAL);
    expect(t.kinds()).toEqual([]);
  });

  it("a CPU read past the synced range is cpu-access-device-owned for those bytes only", () => {
    const t = setup();
    const buf = __get_free_pages(0, 0);
    const h = t.map(buf, 4096, DMA_FROM_DEVICE);
    t.devWrite(h, bytes(512, 0x33));
    dma_sync_single_range_for_cpu(t.dev, h, 0, 128, DMA_FROM_DEVICE);
    t.cpuRead(buf + 64, 128); // bytes 64..191: 128..191 are still the device's
    expect(t.kinds()).toEqual(["cpu-access-device-owned"]);
    const f = t.k.findings.list[0];
    expect(f.details).toMatchObject({ access: "read", offset_start: 128, offset_end: 191, domain: "CPU", cpu_owned: "0-127" });
    dma_unmap_single(t.dev, h, 4096, DMA_FROM_DEVICE);
  });

  it("the device writing bytes the CPU took and wrote is device-access-cpu-owned, even after a sync of another range for the device", () => {
    const t = setup();
    const buf = __get_free_pages(0, 0);
    const h = t.map(buf, 4096, DMA_BIDIRECTIONAL);
    dma_sync_single_range_for_cpu(t.dev, h, 0, 128, DMA_BIDIRECTIONAL);
    copy_from_user(buf, bytes(16, 1));
    dma_sync_single_range_for_device(t.dev, h, 1024, 128, DMA_BIDIRECTIONAL); // not the CPU's bytes
    t.devWrite(h, bytes(256, 2)); // 0..127 are the CPU's, 128..255 the device's
    const f = t.only("device-access-cpu-owned");
    expect(f).toHaveLength(1);
    expect(f[0].details).toMatchObject({ access: "write", offset_start: 0, offset_end: 127 });
    dma_unmap_single(t.dev, h, 4096, DMA_BIDIRECTIONAL);
  });

  it("a CPU store into its part of a line the device still owns part of is the shared-line hazard (arm64: 128-byte granule)", () => {
    const t = setup();
    const buf = __get_free_pages(0, 0);
    const h = t.map(buf, 4096, DMA_FROM_DEVICE);
    dma_sync_single_range_for_cpu(t.dev, h, 0, 64, DMA_FROM_DEVICE); // half a granule
    copy_from_user(buf, bytes(8, 7));
    const f = t.only("cpu-access-device-owned");
    expect(f).toHaveLength(1);
    expect(f[0].details).toMatchObject({ shared_line: true, granule: 128, write_len: 8 });
    expect(f[0].message).toContain("into the part of the buffer the CPU owns");
    expect(f[0].fix).toContain("whole cache lines");
    dma_unmap_single(t.dev, h, 4096, DMA_FROM_DEVICE);
  });

  it("on x86-coherent the same granule-aligned-to-64 header split is no finding", () => {
    const t = setup("x86-coherent");
    const buf = __get_free_pages(0, 0);
    const h = t.map(buf, 4096, DMA_BIDIRECTIONAL);
    dma_sync_single_range_for_cpu(t.dev, h, 0, 64, DMA_BIDIRECTIONAL);
    copy_from_user(buf, bytes(64, 0xaa));
    t.devWrite(h + 64, bytes(64, 0x55));
    dma_sync_single_range_for_device(t.dev, h, 0, 64, DMA_BIDIRECTIONAL);
    dma_unmap_single(t.dev, h, 4096, DMA_BIDIRECTIONAL);
    expect(t.kinds()).toEqual([]);
  });

  it("dma-debug shows the CPU's ranges of a split mapping: in its findings' details and in the dump", () => {
    const t = setup();
    const buf = __get_free_pages(0, 0);
    const h = t.map(buf, 4096, DMA_FROM_DEVICE);
    dma_sync_single_range_for_cpu(t.dev, h, 0, 128, DMA_FROM_DEVICE);
    dma_sync_single_range_for_cpu(t.dev, h, 1024, 256, DMA_FROM_DEVICE);
    debug_dma_dump_mappings(t.dev);
    expect(t.k.printk.dmesg().filter((l) => l.includes("DMA-API: ") && l.includes(" idx 0 "))).toEqual([expect.stringContaining(" DMA_FROM_DEVICE CPU[0-127,1024-1279] ")]);
    dma_sync_single_range_for_cpu(t.dev, h, 0, 128, DMA_TO_DEVICE); // a dma-debug finding on the split mapping
    expect(t.kinds()).toEqual(["sync-wrong-direction"]);
    expect(t.k.findings.list[0].details).toMatchObject({ domain: "CPU", cpu_owned: "0-127,1024-1279" });
    dma_unmap_single(t.dev, h, 4096, DMA_FROM_DEVICE);
  });
});
