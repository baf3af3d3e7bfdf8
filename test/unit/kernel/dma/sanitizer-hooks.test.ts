/**
 * The hooks the coherence sanitizer stands on: the memory system's write-back observer and
 * side-effect-free views, the platform's port owner lookup, boot's `checks` option, and the
 * per-kernel dispatch of CPU accesses.
 */
import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { DmaPort } from "../../../../hw/dma/dma-port.ts";
import { MEM_CACHED } from "../../../../hw/cpu/memory-types.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { boot } from "../../../../kernel/platform/boot.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { device } from "../../../../kernel/include/device.ts";
import { kzalloc } from "../../../../kernel/mm/slab-api.ts";
import { kread32 } from "../../../../kernel/mm/access.ts";
import { DMA_FROM_DEVICE, dma_map_single, dma_mapping_error } from "../../../../kernel/include/dma-mapping.ts";
import { dma_sanitizer, dma_sanitizer_init } from "../../../../kernel/dma/sanitizer/index.ts";

function board(profile = "arm64-noncoherent", devices = false): Board {
  const desc = getProfile(profile);
  if (!devices) desc.pci.devices = [];
  desc.platform = [];
  return new Board(desc, { seed: 1 });
}

describe("memory system: write-back observer", () => {
  it("sees every dirty line on its way to RAM, before RAM changes, and nothing else", () => {
    const b = board();
    const mem = b.mem;
    const seen: { addr: number; first: number; ramFirst: number }[] = [];
    mem.observer = {
      onWriteBack(addr, data, off) {
        const ram = new Uint8Array(1);
        b.map.ram.read(addr, ram, 0, 1);
        seen.push({ addr, first: data[off], ramFirst: ram[0] });
      },
      onCpuStore() {},
      onCpuLoad() {},
      onLineGone() {},
    };
    mem.cpuStore(0, 0x1000, 0xab, 1, MEM_CACHED);
    mem.cpuLoad(0, 0x2000, 4, MEM_CACHED); // a clean line
    mem.cacheClean(0, 0x1000, 64);
    mem.cacheClean(0, 0x2000, 64);
    expect(seen).toEqual([{ addr: 0x1000, first: 0xab, ramFirst: 0 }]);
    mem.cpuStore(1, 0x1040, 0xcd, 1, MEM_CACHED);
    mem.cacheFlush(1, 0x1000, 128);
    expect(seen.map((s) => s.addr)).toEqual([0x1000, 0x1040]);
    mem.cpuStore(0, 0x3000, 1, 1, MEM_CACHED);
    mem.cacheInvalidate(0, 0x3000, 64); // dropped, not written back
    expect(seen.length).toBe(2);
  });

  it("sees write-backs forced by LLC evictions too", () => {
    const b = board();
    const mem = b.mem;
    let n = 0;
    mem.observer = { onWriteBack: () => void n++, onCpuStore() {}, onCpuLoad() {}, onLineGone() {} };
    const llcSets = mem.llc.sets;
    // dirty more lines of one LLC set than it has ways, through one CPU's L1 (which evicts to the LLC)
    for (let i = 0; i < mem.llc.ways * 4; i++) mem.cpuStore(0, i * llcSets * 64, i, 1, MEM_CACHED);
    expect(n).toBeGreaterThan(0);
    expect(n).toBe(mem.stats.writebacks);
  });

  it("hears every CPU store line by line, as it lands, whatever the memory type", () => {
    const b = board();
    const mem = b.mem;
    const stores: [number, number][] = [];
    mem.observer = { onWriteBack() {}, onCpuStore: (addr, len) => void stores.push([addr, len]), onCpuLoad() {}, onLineGone() {} };
    mem.cpuWrite(0, 0x1030, new Uint8Array(100), 0, 100, MEM_CACHED);
    expect(stores).toEqual([[0x1030, 16], [0x1040, 64], [0x1080, 20]]);
    stores.length = 0;
    mem.cpuFill(1, 0x2000, 0, 70, MEM_CACHED);
    expect(stores).toEqual([[0x2000, 64], [0x2040, 6]]);
    stores.length = 0;
    mem.cpuWrite(0, 0x3038, new Uint8Array(16), 0, 16, 1 /* MEM_UNCACHED */);
    expect(stores).toEqual([[0x3038, 8], [0x3040, 8]]);
  });

  it("hears every cached CPU load line by line, with the bytes it returned, before the next line's miss", () => {
    const b = board();
    const mem = b.mem;
    mem.cpuStore(0, 0x6010, 0x77, 1, MEM_CACHED);
    const loads: [number, number, number, number][] = [];
    mem.observer = { onWriteBack() {}, onCpuStore() {}, onLineGone() {}, onCpuLoad: (cpu, addr, len, dst, off) => void loads.push([cpu, addr, len, dst[off]]) };
    const out = new Uint8Array(100);
    mem.cpuRead(1, 0x6010, out, 0, 100, MEM_CACHED);
    expect(loads).toEqual([[1, 0x6010, 48, 0x77], [1, 0x6040, 52, 0]]);
    loads.length = 0;
    mem.cpuRead(0, 0x6010, out, 0, 4, 1 /* MEM_UNCACHED: RAM itself, never stale */);
    expect(loads).toEqual([]);
  });

  it("hears a line leave every level (invalidate, flush), not a line that was never cached", () => {
    const b = board();
    const mem = b.mem;
    const gone: number[] = [];
    mem.observer = { onWriteBack() {}, onCpuStore() {}, onCpuLoad() {}, onLineGone: (addr) => void gone.push(addr) };
    mem.cpuLoad(0, 0x5000, 4, MEM_CACHED);
    mem.cpuStore(1, 0x5040, 1, 1, MEM_CACHED);
    mem.cacheInvalidate(0, 0x5000, 64);
    mem.cacheFlush(0, 0x5040, 64);
    mem.cacheInvalidate(0, 0x9000, 64);
    expect(gone).toEqual([0x5000, 0x5040]);
  });

  it("peeks change nothing: no fills, no charges, no counters", () => {
    const b = board();
    const mem = b.mem;
    mem.cpuStore(0, 0x4000, 0x55, 1, MEM_CACHED);
    const stats = { ...mem.stats };
    const charged = mem.charged[0];
    const out = new Uint8Array(4);
    mem.peekCached(0, 0x4000, out, 0, 4);
    expect(out[0]).toBe(0x55);
    mem.peekCached(1, 0x4000, out, 0, 4); // another CPU would snoop the dirty copy
    expect(out[0]).toBe(0x55);
    mem.peekCached(-1, 0x4000, out, 0, 4);
    expect(out[0]).toBe(0x55);
    mem.peekRam(0x4000, out, 0, 4);
    expect(out[0]).toBe(0);
    mem.peekCached(0, 0x8000, out, 0, 4); // uncached line: RAM, and it stays uncached
    expect(mem.isCached(0x8000)).toBe(false);
    expect(mem.isCached(0x4000)).toBe(true);
    expect(mem.isDirty(0x4000)).toBe(true);
    expect(mem.isDirty(0x8000)).toBe(false);
    expect(mem.hasDirtyLines()).toBe(true);
    expect(mem.stats).toEqual(stats);
    expect(mem.charged[0]).toBe(charged);
    mem.cacheClean(0, 0x4000, 64);
    expect(mem.hasDirtyLines()).toBe(false);
  });
});

describe("platform", () => {
  it("names the PCI slot behind a board's DMA port, and nothing for a stranger", () => {
    const b = board("arm64-noncoherent", true);
    const p = new Platform(b);
    expect(p.dmaPortOwner(b.pciDevices[0].device.dma)).toEqual({ bus: "pci", slot: 3 });
    expect(p.dmaPortOwner(new DmaPort(b.mem, b.log, { name: "x", coherent: false, addressBits: 64 }))).toBeNull();
  });
});

describe("boot", () => {
  it("turns the sanitizer on by default and watches every port and the memory system", () => {
    const b = board("arm64-noncoherent", true);
    const k = boot(b, { logLevel: "silent" });
    const s = dma_sanitizer(k);
    expect(s).not.toBeNull();
    expect(b.pciDevices[0].device.dma.observer).toBe(s);
    expect(b.mem.observer).toBe(s!.effects);
  });

  it("`checks: false` leaves it off", () => {
    const b = board("arm64-noncoherent", true);
    const k = boot(b, { logLevel: "silent", checks: false });
    expect(dma_sanitizer(k)).toBeNull();
    expect(b.pciDevices[0].device.dma.observer).toBeNull();
    expect(b.mem.observer).toBeNull();
  });
});

describe("several kernels in one process", () => {
  it("each CPU access goes to the sanitizer of the kernel running it", () => {
    const mk = (): { k: Kernel; dev: device } => {
      const k = new Kernel(new Platform(board()), { logLevel: "silent" });
      dma_sanitizer_init(k);
      return { k, dev: new device("0000:00:05.0", "pci") };
    };
    const a = mk();
    const b = mk();
    a.k.enter();
    const bufA = kzalloc(128, 0);
    dma_mapping_error(a.dev, dma_map_single(a.dev, bufA, 128, DMA_FROM_DEVICE));
    b.k.enter();
    const bufB = kzalloc(128, 0);
    kread32(bufB); // B has no mapping there (A's buffer may sit at the same physical address)
    expect(b.k.findings.count).toBe(0);
    a.k.enter();
    kread32(bufA);
    expect(a.k.findings.list.map((f) => f.kind)).toEqual(["cpu-access-device-owned"]);
    expect(b.k.findings.count).toBe(0);
    expect(dma_sanitizer_init(a.k)).toBe(dma_sanitizer(a.k));
  });
});
