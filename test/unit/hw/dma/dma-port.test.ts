import { describe, expect, it } from "vitest";
import { PhysMap } from "../../../../hw/mem/phys-map.ts";
import { Prng } from "../../../../hw/core/prng.ts";
import { GuestLog } from "../../../../hw/core/guest-log.ts";
import { Scheduler } from "../../../../hw/core/scheduler.ts";
import { MemorySystem } from "../../../../hw/cpu/memory-system.ts";
import { MEM_CACHED } from "../../../../hw/cpu/memory-types.ts";
import { InterruptController } from "../../../../hw/irq/intc.ts";
import { DmaPort, type DmaObserver } from "../../../../hw/dma/dma-port.ts";

const MSI_BASE = 0xfee00000;

function rig(opts: { coherent?: boolean; addressBits?: number } = {}) {
  const sched = new Scheduler();
  const log = new GuestLog(() => sched.now);
  const map = new PhysMap();
  map.addRam(0, 1 << 20, 0);
  map.addRam(0x100000000, 1 << 20, 0);
  const mem = new MemorySystem(map, {
    cpus: 2,
    l1: { size: 512, ways: 2 },
    llc: { size: 2048, ways: 4 },
    timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 },
    evictionRate: 0,
    prefetchRate: 0,
    prng: new Prng(1),
  });
  const intc = new InterruptController({ lines: 16, msiVectors: 8, cpus: 2 }, log);
  map.addMmio(intc.msiRegion, MSI_BASE);
  const port = new DmaPort(mem, log, { name: "dev0", coherent: opts.coherent ?? false, addressBits: opts.addressBits ?? 64 });
  const ram = (addr: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    map.ram.read(addr, out, 0, len);
    return out;
  };
  return { sched, log, map, mem, intc, port, ram };
}

describe("DmaPort", () => {
  it("writes and reads RAM", () => {
    const { port, ram, log } = rig();
    expect(port.write(0x1000, Uint8Array.of(0, 1, 2, 3, 4), 1, 4)).toBe(true);
    expect(ram(0x1000, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    const dst = new Uint8Array(6);
    expect(port.read(0x1000, dst, 2, 4)).toBe(true);
    expect(dst).toEqual(Uint8Array.of(0, 0, 1, 2, 3, 4));
    expect(log.entries).toEqual([]);
  });

  it("reads and writes little-endian values", () => {
    const { port, ram } = rig();
    expect(port.writeLe(0x2000, 0x11223344, 4)).toBe(true);
    expect(ram(0x2000, 4)).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    expect(port.readU32(0x2000)).toBe(0x11223344);
    port.writeLe(0x2008, 2 ** 53 - 1, 8);
    expect(port.readLe(0x2008, 8)).toBe(2 ** 53 - 1);
    port.writeLe(0x2010, 0xabcd, 2);
    expect(port.readLe(0x2010, 2)).toBe(0xabcd);
    expect(port.readLe(0x2010, 1)).toBe(0xcd);
  });

  it("fails on a hole with a guest error and returns false, never throwing", () => {
    const { port, log, sched } = rig();
    sched.runFor(1234);
    const buf = new Uint8Array(16);
    expect(port.read(0x80000000, buf, 0, 16)).toBe(false);
    expect(port.write(0x80000000, buf, 0, 16)).toBe(false);
    expect(port.read((1 << 20) - 8, buf, 0, 16)).toBe(false); // runs off the end of RAM
    expect(port.readU32(0x80000000)).toBe(-1);
    expect(port.readLe(0x80000000, 8)).toBe(-1);
    expect(log.errors).toHaveLength(5);
    expect(log.errors[0]).toMatchObject({ device: "dev0", kind: "guest-error", timeNs: 1234 });
    expect(log.errors[0].message).toContain("DMA read of 16 bytes at 0x80000000");
    expect(log.errors[1].message).toContain("DMA write");
  });

  it("reaches RAM above 4 GiB with a wide port", () => {
    const { port, ram } = rig();
    expect(port.writeLe(0x100000010, 0xfeed, 2)).toBe(true);
    expect(ram(0x100000010, 2)).toEqual(Uint8Array.of(0xed, 0xfe));
  });

  it("delivers a 4-byte write to the MSI window as an interrupt", () => {
    const { port, intc, log } = rig();
    const v = intc.msiFirst + 3;
    intc.unmask(v);
    expect(port.writeLe(MSI_BASE, v, 4)).toBe(true);
    expect(intc.highestPending(0)).toBe(v);
    expect(log.entries).toEqual([]);
  });

  it("tells the observer about accesses that reached memory, and only those", () => {
    const { port } = rig();
    const calls: [DmaPort, number, number, boolean][] = [];
    const obs: DmaObserver = { onDeviceAccess: (p, a, l, w) => void calls.push([p, a, l, w]) };
    port.observer = obs;
    port.write(0x3000, new Uint8Array(8), 0, 8);
    port.read(0x3004, new Uint8Array(4), 0, 4);
    port.read(0x80000000, new Uint8Array(4), 0, 4); // failed: not observed
    port.writeLe(MSI_BASE, 16, 4);
    expect(calls).toEqual([
      [port, 0x3000, 8, true],
      [port, 0x3004, 4, false],
      [port, MSI_BASE, 4, true],
    ]);
  });

  it("truncates addresses beyond its address lines, logs it, and reports the bus address", () => {
    const { port, log, ram } = rig({ addressBits: 32 });
    const seen: number[] = [];
    port.observer = { onDeviceAccess: (_p, a) => void seen.push(a) };
    expect(port.writeLe(0x100000020, 0x77, 1)).toBe(true); // lands at 0x20
    expect(ram(0x20, 1)[0]).toBe(0x77);
    expect(ram(0x100000020, 1)[0]).toBe(0);
    expect(seen).toEqual([0x20]);
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0].message).toContain("exceeds the device's 32-bit address lines; bus sees 0x20");
    // Addresses within the lines are not logged.
    port.writeLe(0xfff0, 1, 4);
    expect(log.errors).toHaveLength(1);
  });

  it("passes every address through when it has 53 or more address lines", () => {
    const { port, log } = rig({ addressBits: 53 });
    expect(port.writeLe(0x100000000, 1, 4)).toBe(true);
    expect(log.entries).toEqual([]);
  });

  // Regression test for a bug the hw tests found (fixed).
  it("a transfer straddling the address limit never touches memory above it", () => {
    const { port, log, ram } = rig({ addressBits: 19 }); // 512 KiB of bus inside 1 MiB of RAM
    port.write((1 << 19) - 4, new Uint8Array(8).fill(0xaa), 0, 8);
    expect(log.errors).toHaveLength(1);
    expect(ram(1 << 19, 4)).toEqual(new Uint8Array(4));
  });

  it("a coherent port sees a CPU's dirty data; a non-coherent one does not", () => {
    for (const coherent of [true, false]) {
      const { mem, port } = rig({ coherent });
      mem.cpuStore(0, 0x4000, 0xcafe, 2, MEM_CACHED);
      expect(port.readLe(0x4000, 2)).toBe(coherent ? 0xcafe : 0);
      port.writeLe(0x4000, 0xbeef, 2);
      expect(mem.cpuLoad(0, 0x4000, 2, MEM_CACHED)).toBe(coherent ? 0xbeef : 0xcafe);
    }
  });

  it("switching coherence at run time takes effect on the next access", () => {
    const { mem, port } = rig();
    mem.cpuStore(1, 0x5000, 9, 1, MEM_CACHED);
    expect(port.readLe(0x5000, 1)).toBe(0);
    port.coherent = true;
    expect(port.readLe(0x5000, 1)).toBe(9);
  });
});
