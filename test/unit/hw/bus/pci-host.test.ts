import { describe, expect, it } from "vitest";
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_MEMORY, PciDevice } from "../../../../hw/bus/pci.ts";
import { ECAM_SIZE, PciHost } from "../../../../hw/bus/pci-host.ts";
import type { DeviceContext } from "../../../../hw/core/device-context.ts";
import { GuestLog } from "../../../../hw/core/guest-log.ts";
import { Prng } from "../../../../hw/core/prng.ts";
import { Scheduler } from "../../../../hw/core/scheduler.ts";
import { Trace } from "../../../../hw/core/trace.ts";
import { MemorySystem } from "../../../../hw/cpu/memory-system.ts";
import { MmioRegion, type AccessSize } from "../../../../hw/mem/mmio.ts";
import { PhysMap } from "../../../../hw/mem/phys-map.ts";

const ECAM_BASE = 0xe0000000;
const WINDOW = { base: 0xc0000000, size: 0x100000 };

/** A function whose BARs have the given sizes (0 = absent); each register reads back its offset. */
class TestDevice extends PciDevice {
  constructor(ctx: DeviceContext, name: string, device: number, barSizes: number[]) {
    super(name, ctx, { vendor: 0x1af4, device, revision: 1, classCode: 0xff0000, msi: false });
    barSizes.forEach((size, i) => {
      if (size) this.declareBar(i, new MmioRegion(`${name}-bar${i}`, size, { read: (o) => 0x10000 * i + o, write: () => {} }));
    });
  }
}

function rig() {
  const scheduler = new Scheduler();
  const log = new GuestLog(() => scheduler.now);
  const ctx: DeviceContext = { scheduler, log, trace: new Trace(false), prng: new Prng(1) };
  const map = new PhysMap();
  map.addRam(0, 1 << 20, 0);
  const mem = new MemorySystem(map, {
    cpus: 1,
    l1: { size: 512, ways: 2 },
    llc: { size: 2048, ways: 4 },
    timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 },
    evictionRate: 0,
    prefetchRate: 0,
    prng: new Prng(1),
  });
  const host = new PciHost(map, log, ECAM_BASE, WINDOW);
  const ecam = (slot: number, fn: number, reg: number): number => ECAM_BASE + (slot << 15) + (fn << 12) + reg;
  const cfgRead = (slot: number, reg: number, size: AccessSize = 4, fn = 0): number => mem.mmioRead(0, ecam(slot, fn, reg), size);
  const cfgWrite = (slot: number, reg: number, value: number, size: AccessSize = 4): void => mem.mmioWrite(0, ecam(slot, 0, reg), value, size);
  return { ctx, log, map, mem, host, cfgRead, cfgWrite };
}

describe("PciHost", () => {
  it("maps a 1 MiB ECAM window for bus 0", () => {
    const { map, host } = rig();
    expect(ECAM_SIZE).toBe(1 << 20);
    expect(host.ecam.base).toBe(ECAM_BASE);
    expect(map.mmioAt(ECAM_BASE + ECAM_SIZE - 1)).toBe(host.ecam);
    expect(map.mmioAt(ECAM_BASE + ECAM_SIZE)).toBeNull();
  });

  it("reads all ones from an empty slot at every access size", () => {
    const { cfgRead } = rig();
    expect(cfgRead(0, 0, 4)).toBe(0xffffffff);
    expect(cfgRead(31, 0, 2)).toBe(0xffff);
    expect(cfgRead(7, 0x3c, 1)).toBe(0xff);
  });

  it("decodes device and register from the ECAM offset", () => {
    const { ctx, host, cfgRead } = rig();
    host.plug(4, new TestDevice(ctx, "a", 0x1111, [16]));
    host.plug(31, new TestDevice(ctx, "b", 0x2222, [16]));
    expect(cfgRead(4, 0)).toBe(0x11111af4);
    expect(cfgRead(31, 2, 2)).toBe(0x2222);
    expect(cfgRead(5, 0)).toBe(0xffffffff);
    expect(host.slots[4]!.slot).toBe(4);
  });

  it("answers only function 0 of a slot", () => {
    const { ctx, host, cfgRead } = rig();
    host.plug(2, new TestDevice(ctx, "a", 0x1111, [16]));
    expect(cfgRead(2, 0, 4, 0)).toBe(0x11111af4);
    expect(cfgRead(2, 0, 4, 1)).toBe(0xffffffff);
    expect(cfgRead(2, 0, 2, 7)).toBe(0xffff);
  });

  it("reads zero beyond the 256-byte space and logs writes there", () => {
    const { ctx, host, log, cfgRead, cfgWrite } = rig();
    host.plug(1, new TestDevice(ctx, "a", 0x1111, [16]));
    expect(cfgRead(1, 0x100)).toBe(0);
    cfgWrite(1, 0x100, 5);
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0]).toMatchObject({ device: "a" });
    expect(log.errors[0].message).toContain("beyond 256 bytes");
  });

  it("ignores config writes to an empty slot without a guest error", () => {
    const { log, cfgWrite } = rig();
    cfgWrite(9, PCI_COMMAND, 6, 2);
    expect(log.entries).toEqual([]);
  });

  it("places BARs naturally aligned, in order, inside the window", () => {
    const { ctx, host, map } = rig();
    const a = new TestDevice(ctx, "a", 1, [0x100, 0, 0x1000, 0x10]);
    const b = new TestDevice(ctx, "b", 2, [0x10000]);
    host.plug(0, a);
    host.plug(1, b);
    expect(a.bars[0]!.base).toBe(0xc0000000);
    expect(a.bars[2]!.base).toBe(0xc0001000);
    expect(a.bars[3]!.base).toBe(0xc0002000);
    expect(b.bars[0]!.base).toBe(0xc0010000);
    const all = [...a.bars, ...b.bars].filter((r): r is MmioRegion => r !== null);
    for (const r of all) {
      expect(r.base % r.size).toBe(0);
      expect(r.base).toBeGreaterThanOrEqual(WINDOW.base);
      expect(r.base + r.size).toBeLessThanOrEqual(WINDOW.base + WINDOW.size);
      expect(map.mmioAt(r.base)).toBe(r);
    }
  });

  it("reports BAR addresses and sizes through ECAM", () => {
    const { ctx, host, cfgRead, cfgWrite } = rig();
    host.plug(3, new TestDevice(ctx, "a", 1, [0x100, 0x4000]));
    const bar1 = PCI_BASE_ADDRESS_0 + 4;
    const addr = cfgRead(3, bar1);
    expect(addr).toBe(0xc0004000);
    cfgWrite(3, bar1, 0xffffffff);
    expect(cfgRead(3, bar1)).toBe(0xffffc000);
    cfgWrite(3, bar1, addr);
    expect(cfgRead(3, bar1)).toBe(addr);
  });

  it("routes CPU accesses to a placed BAR once memory decoding is on", () => {
    const { ctx, host, mem, cfgWrite } = rig();
    const a = new TestDevice(ctx, "a", 1, [0x100, 0x1000]);
    host.plug(0, a);
    cfgWrite(0, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    expect(mem.mmioRead(0, a.bars[1]!.base + 0x24, 4)).toBe(0x10024);
  });

  it("refuses a taken slot and a window too small", () => {
    const { ctx, host } = rig();
    host.plug(0, new TestDevice(ctx, "a", 1, [16]));
    expect(() => host.plug(0, new TestDevice(ctx, "b", 2, [16]))).toThrow(/already taken by a/);
    expect(() => host.plug(1, new TestDevice(ctx, "big", 3, [0x200000]))).toThrow(/window too small/);
  });
});
