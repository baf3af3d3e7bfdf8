/**
 * The coherence sanitizer's causes (§1.2, §4.5): who touched memory it did not own.
 * A bare kernel with the sanitizer on; the device is played by a DmaPort attached by hand.
 */
import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { kmalloc, kzalloc, virt_to_phys } from "../../../../kernel/mm/slab-api.ts";
import { copy_from_user, kread32, kwrite32 } from "../../../../kernel/mm/access.ts";
import {
  DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_addr_holder, dma_alloc_coherent, dma_alloc_noncoherent, dma_free_coherent,
  dma_free_noncoherent, dma_map_single, dma_mapping_error, dma_sync_single_for_cpu, dma_sync_single_for_device, dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { dma_sanitizer, dma_sanitizer_internal } from "../../../../kernel/dma/sanitizer/index.ts";
import { setup } from "./sanitizer-rig.ts";

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (seed * 37 + i * 11) & 0xff);

describe("cpu-access-device-owned", () => {
  it("a CPU read between map and sync_for_cpu is reported once, with the mapping, the bytes and the history", () => {
    const t = setup();
    const buf = kzalloc(256, 0);
    const h = t.map(buf, 256, DMA_FROM_DEVICE);
    t.cpuRead(buf + 16, 32);
    kread32(buf + 100);
    expect(t.kinds()).toEqual(["cpu-access-device-owned"]);
    const f = t.k.findings.list[0];
    expect(f).toMatchObject({ severity: "error", driver: "testdrv", device: "0000:00:05.0" });
    expect(f.details).toMatchObject({ access: "read", offset_start: 16, offset_end: 47, bytes: 32, direction: "DMA_FROM_DEVICE", size: 256, domain: "DEVICE" });
    expect(f.details!.dev_addr).toBe(`0x${h.toString(16).padStart(16, "0")}`);
    expect(f.fix).toBe("Call dma_sync_single_for_cpu() (or unmap the buffer) before reading what the device wrote.");
    expect(f.history!.map((x) => x.op)).toEqual(["dma_map_single", "dma_mapping_error"]);
    expect(f.message).toMatch(/^DMA-SAN: testdrv 0000:00:05\.0: CPU read of DMA memory the device owns \[offset=16\.\.47\]/);
  });

  it("reads and writes are separate findings; a new ownership epoch reports again", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    const h = t.map(buf, 128, DMA_BIDIRECTIONAL);
    kwrite32(buf, 1);
    kwrite32(buf + 4, 2);
    kread32(buf);
    expect(t.kinds()).toEqual(["cpu-access-device-owned", "cpu-access-device-owned"]);
    dma_sync_single_for_cpu(t.dev, h, 128, DMA_BIDIRECTIONAL);
    kwrite32(buf, 3); // the CPU owns it now: fine
    dma_sync_single_for_device(t.dev, h, 128, DMA_BIDIRECTIONAL);
    kwrite32(buf, 4);
    expect(t.k.findings.count).toBe(3);
    dma_unmap_single(t.dev, h, 128, DMA_BIDIRECTIONAL);
    kwrite32(buf, 5);
    expect(t.k.findings.count).toBe(3);
  });

  it("names the right fix for each direction, and a read of a TO_DEVICE buffer is only a warning", () => {
    const t = setup();
    const tx = kzalloc(128, 0);
    const rx = kzalloc(128, 0);
    t.map(tx, 128, DMA_TO_DEVICE);
    t.map(rx, 128, DMA_FROM_DEVICE);
    kread32(tx);
    kwrite32(tx, 1);
    kwrite32(rx, 1);
    const [r, wt, wr] = t.k.findings.list;
    expect(r.severity).toBe("warning");
    expect(wt.fix).toMatch(/^Finish writing before mapping the buffer, or call dma_sync_single_for_cpu\(\) before writing and dma_sync_single_for_device\(\) after/);
    expect(wr.fix).toMatch(/^Do not write the buffer while the device owns it/);
  });

  it("a store to a field sharing a cache-line granule with a FROM_DEVICE buffer is reported; TO_DEVICE neighbours are not", () => {
    const t = setup();
    const msg = kzalloc(64, 0); // rx[48] then u32 seq, one allocation
    t.map(msg, 48, DMA_FROM_DEVICE);
    kread32(msg + 48); // reading the neighbour is harmless
    expect(t.k.findings.count).toBe(0);
    kwrite32(msg + 48, 1);
    kwrite32(msg + 52, 1);
    expect(t.kinds()).toEqual(["cpu-access-device-owned"]);
    expect(t.k.findings.list[0].details).toMatchObject({ shared_line: true, granule: 128, write_len: 4 });
    expect(t.k.findings.list[0].fix).toBe("Do not write fields sharing a cache line with a DMA_FROM_DEVICE buffer while it is mapped; align the buffer to dma_get_cache_alignment().");
    const tx = kzalloc(64, 0);
    t.map(tx, 48, DMA_TO_DEVICE);
    kwrite32(tx + 48, 1);
    expect(t.k.findings.count).toBe(1);
  });

  it("the shared-line hazard stops at the allocation: another kmalloc object in the same line is not the driver's field (x86, 8-byte kmalloc alignment)", () => {
    const t = setup("x86-coherent");
    const a = kmalloc(32, 0);
    const b = kmalloc(32, 0);
    expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64));
    t.map(a, 32, DMA_FROM_DEVICE);
    kwrite32(b, 1);
    expect(t.k.findings.count).toBe(0);
  });

  it("coherent allocations have no owner: CPU and device may touch them at any time", () => {
    const t = setup();
    const hd = dma_addr_holder();
    const va = dma_alloc_coherent(t.dev, 4096, hd, 0);
    kwrite32(va, 7);
    t.devWrite(hd.value, bytes(64));
    t.devRead(hd.value, 64);
    expect(kread32(va)).toBe(bytes(64)[0] | (bytes(64)[1] << 8) | (bytes(64)[2] << 16) | ((bytes(64)[3] << 24) >>> 0));
    dma_free_coherent(t.dev, 4096, va, hd.value);
    expect(t.k.findings.count).toBe(0);
  });

  it("DMA-layer code inside dma_sanitizer_internal() is not a finding", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    t.map(buf, 128, DMA_FROM_DEVICE);
    dma_sanitizer_internal(() => copy_from_user(buf, bytes(128)));
    expect(t.k.findings.count).toBe(0);
    expect(t.san.internal).toBe(0);
  });
});

describe("device-access-cpu-owned", () => {
  it("a device access after sync_for_cpu and a CPU write, before sync_for_device, is reported", () => {
    const t = setup();
    const buf = kzalloc(512, 0);
    const h = t.map(buf, 512, DMA_TO_DEVICE);
    t.devRead(h, 512);
    dma_sync_single_for_cpu(t.dev, h, 512, DMA_TO_DEVICE);
    copy_from_user(buf, bytes(512));
    t.devRead(h + 256, 128);
    t.devRead(h, 64);
    // and the device really read old bytes: the CPU's are still in dirty lines (an effect)
    expect(t.kinds()).toEqual(["device-access-cpu-owned", "stale-device-read"]);
    const f = t.k.findings.list[0];
    expect(f.details).toMatchObject({ access: "read", offset_start: 256, offset_end: 383, domain: "CPU" });
    expect(f.fix).toBe("Call dma_sync_single_for_device() after the CPU is done with the buffer and before starting the device.");
    expect(f.history!.at(-1)!.op).toBe("dma_sync_single_for_cpu");
    dma_sync_single_for_device(t.dev, h, 512, DMA_TO_DEVICE);
    t.devRead(h, 512);
    expect(t.k.findings.count).toBe(2);
  });

  it("the documented RX recycle is not a finding: the CPU only read after sync_for_cpu, the device writes again", () => {
    const t = setup();
    const buf = kzalloc(256, 0);
    const h = t.map(buf, 256, DMA_FROM_DEVICE);
    t.devWrite(h, bytes(256, 1));
    dma_sync_single_for_cpu(t.dev, h, 256, DMA_FROM_DEVICE);
    t.cpuRead(buf, 16); // peek at the header, reject the packet
    t.devWrite(h, bytes(256, 2)); // give_rx_buf_to_card() without a sync: allowed for FROM_DEVICE
    expect(t.k.findings.count).toBe(0);
    // ...but the device owns it again: reading before the next sync_for_cpu is the usual bug
    t.cpuRead(buf, 16);
    expect(t.kinds()).toEqual(["cpu-access-device-owned", "stale-cpu-read"]);
    dma_sync_single_for_cpu(t.dev, h, 256, DMA_FROM_DEVICE);
    expect(t.cpuRead(buf, 256)).toEqual(bytes(256, 2));
    expect(t.k.findings.count).toBe(2);
  });

  it("a recycle the direction forbids is reported (the device writes a TO_DEVICE buffer the CPU owns)", () => {
    const t = setup();
    const buf = kzalloc(128, 0);
    const h = t.map(buf, 128, DMA_TO_DEVICE);
    dma_sync_single_for_cpu(t.dev, h, 128, DMA_TO_DEVICE);
    t.devWrite(h, bytes(16));
    expect(t.kinds()).toEqual(["device-access-cpu-owned"]);
  });

  it("dma_alloc_noncoherent memory starts CPU-owned: the device must wait for sync_for_device", () => {
    const t = setup();
    const hd = dma_addr_holder();
    const va = dma_alloc_noncoherent(t.dev, 4096, hd, DMA_BIDIRECTIONAL, 0);
    t.devRead(hd.value, 64);
    expect(t.kinds()).toEqual(["device-access-cpu-owned"]);
    dma_sync_single_for_device(t.dev, hd.value, 4096, DMA_BIDIRECTIONAL);
    t.devRead(hd.value, 64);
    dma_sync_single_for_cpu(t.dev, hd.value, 4096, DMA_BIDIRECTIONAL);
    dma_free_noncoherent(t.dev, 4096, va, hd.value, DMA_BIDIRECTIONAL);
    expect(t.k.findings.count).toBe(1);
  });
});

describe("device-access-unmapped", () => {
  it("a device access to RAM no mapping covers is reported, once per page", () => {
    const t = setup();
    const buf = kzalloc(4096, 0);
    const phys = virt_to_phys(buf);
    t.devWrite(phys, bytes(64));
    t.devWrite(phys + 64, bytes(64));
    expect(t.kinds()).toEqual(["device-access-unmapped"]);
    const f = t.k.findings.list[0];
    expect(f.details).toMatchObject({ access: "write", len: 64, after_unmap: false });
    expect(f.driver).toBe("testdrv");
    expect(f.fix).toMatch(/^Give the device only addresses returned by a successful dma_map_\*\(\)/);
  });

  it("use after unmap names the dead mapping and its history", () => {
    const t = setup();
    const buf = kzalloc(1024, 0);
    const h = t.map(buf, 1024, DMA_FROM_DEVICE);
    dma_unmap_single(t.dev, h, 1024, DMA_FROM_DEVICE);
    t.devWrite(h + 100, bytes(8));
    expect(t.kinds()).toEqual(["device-access-unmapped"]);
    const f = t.k.findings.list[0];
    expect(f.details).toMatchObject({ after_unmap: true, size: 1024 });
    expect(f.history!.map((x) => x.op)).toEqual(["dma_map_single", "dma_mapping_error", "dma_unmap_single"]);
    expect(f.message).toMatch(/unmapped by dma_unmap_single/);
  });

  it("an access straddling a mapping reports only the uncovered bytes, in one finding", () => {
    const t = setup();
    const page = kzalloc(4096, 0);
    const h = t.map(page + 1024, 1024, DMA_FROM_DEVICE);
    t.devWrite(h - 64, bytes(64 + 1024 + 64));
    expect(t.kinds()).toEqual(["device-access-unmapped"]);
    expect(t.k.findings.list[0].details).toMatchObject({ len: 128, bus_addr: `0x${(h - 64).toString(16).padStart(16, "0")}` });
  });

  it("MSI messages and other non-RAM targets are not memory accesses", () => {
    const t = setup();
    expect(t.port.writeLe(t.board.desc.interrupts.msiBase, 0, 4)).toBe(true);
    expect(t.k.findings.count).toBe(0);
  });
});

describe("causes on a coherent machine", () => {
  it("are reported exactly as on a non-coherent one, and no effect is", () => {
    for (const profile of ["x86-coherent", "arm64-noncoherent"] as const) {
      const t = setup(profile);
      const buf = kzalloc(512, 0);
      t.cpuRead(buf, 512);
      const h = t.map(buf, 512, DMA_FROM_DEVICE);
      t.devWrite(h, bytes(512));
      const seen = t.cpuRead(buf, 512);
      dma_unmap_single(t.dev, h, 512, DMA_FROM_DEVICE);
      const causes = t.kinds().filter((x) => x === "cpu-access-device-owned");
      expect(causes.length, profile).toBe(1);
      if (profile === "x86-coherent") {
        expect(t.kinds()).toEqual(["cpu-access-device-owned"]);
        expect(seen).toEqual(bytes(512));
      } else {
        expect(t.kinds()).toEqual(["cpu-access-device-owned", "stale-cpu-read"]);
        expect(seen).not.toEqual(bytes(512));
      }
    }
  });

  it("the sanitizer is per kernel: a kernel without it sees nothing", () => {
    const t = setup();
    const plain = new Kernel(new Platform(new Board(Object.assign(getProfile("arm64-noncoherent"), { pci: { ...getProfile("arm64-noncoherent").pci, devices: [] } }), { seed: 1 })), { logLevel: "silent" });
    expect(dma_sanitizer(plain)).toBeNull();
    const dev = new device("0000:00:06.0", "pci");
    const buf = kzalloc(128, 0);
    dma_mapping_error(dev, dma_map_single(dev, buf, 128, DMA_FROM_DEVICE));
    kread32(buf);
    expect(plain.findings.count).toBe(0);
    t.k.enter();
    expect(dma_sanitizer()).toBe(t.san);
  });
});
