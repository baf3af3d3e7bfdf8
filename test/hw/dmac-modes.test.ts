/**
 * The interconnect and the dmac's transfer modes (SPEC.md section 6.2): arbitration rules on
 * their own, then a DMA copy beside a synthetic CPU that misses in its caches, in each mode.
 * No kernel: the "CPU" is an event loop doing cached reads through the memory system.
 */

import { describe, expect, it } from "vitest";
import {
  BUS_MODE_BURST, BUS_MODE_CYCLE_STEAL, BUS_MODE_TRANSPARENT, Interconnect,
} from "../../hw/bus/interconnect.ts";
import { MEM_CACHED } from "../../hw/cpu/memory-types.ts";
import { CHAIN_DONE, LAST, burst, ch, mode, pattern, rig, STATUS, type Rig } from "./dmac-rig.ts";

describe("interconnect: arbitration rules", () => {
  const make = (now = 0): { ic: Interconnect; clock: { t: number } } => {
    const clock = { t: now };
    return { ic: new Interconnect({ cpus: 2, now: () => clock.t }), clock };
  };

  it("has 8 ns beats of 64 bytes by default", () => {
    const { ic } = make();
    expect(ic.beatNs).toBe(8);
    expect(ic.beatsFor(65)).toBe(2);
  });

  it("burst: a CPU access stalls until the burst ends, then holds the bus; the next burst waits", () => {
    const { ic } = make();
    ic.dmaBegin(0, 512, BUS_MODE_BURST);
    expect(ic.holderAt(100)).toBe("dma");
    expect(ic.cpuAccessAt(1, 100, 80)).toBe(412);
    expect(ic.dmaEnd()).toBe(true);
    expect(ic.dmaReadyAt(512)).toBe(592);
    expect(ic.holderAt(550)).toBe("cpu");
    expect(ic.stats.cpuStallNs[1]).toBe(412);
    expect(ic.stats.cpuStalls[1]).toBe(1);
    expect(ic.stats.dmaBusNs).toBe(512);
  });

  it("cycle stealing: a CPU access waits at most one beat", () => {
    const { ic } = make();
    ic.dmaBegin(0, 8, BUS_MODE_CYCLE_STEAL);
    expect(ic.cpuAccessAt(0, 3, 80)).toBe(5);
    expect(ic.dmaEnd()).toBe(true);
    expect(ic.dmaReadyAt(8)).toBe(88);
  });

  it("transparent: a CPU access never waits, and the beat it hits is lost", () => {
    const { ic } = make();
    ic.dmaBegin(0, 8, BUS_MODE_TRANSPARENT);
    expect(ic.cpuAccessAt(0, 3, 80)).toBe(0);
    expect(ic.dmaEnd()).toBe(false);
    expect(ic.stats.dmaLost).toBe(1);
    expect(ic.stats.dmaBusNs).toBe(0);
    expect(ic.dmaReadyAt(8)).toBe(83);
    ic.dmaBegin(83, 8, BUS_MODE_TRANSPARENT);
    expect(ic.dmaEnd()).toBe(true);
  });

  it("DMA waits for CPU accesses in progress; a CPU access outside a tenure is free", () => {
    const { ic } = make();
    expect(ic.cpuAccessAt(0, 0, 80)).toBe(0);
    expect(ic.dmaReadyAt(10)).toBe(80);
    expect(ic.holderAt(90)).toBe("idle");
    expect(ic.busyUntil).toBe(80);
  });

  it("estimates a CPU's time from its charged counter, or asks the platform's clock", () => {
    const { ic, clock } = make(1000);
    ic.dmaBegin(1000, 512, BUS_MODE_BURST);
    // First access at event time 1000; the CPU then charges 80 + 20 ns before the next one.
    expect(ic.cpuAccess(1, 0, 80)).toBe(512);
    expect(ic.cpuAccess(1, 512 + 100, 80)).toBe(0); // at 1000 + 612: after the burst
    expect(ic.dmaEnd()).toBe(true);
    clock.t = 5000; // idle since: a new slice starts at the event time
    ic.dmaBegin(5000, 64, BUS_MODE_BURST);
    expect(ic.cpuAccess(1, 700, 80)).toBe(64);
    ic.dmaEnd();
    ic.cpuClock = () => 6010;
    ic.dmaBegin(6000, 64, BUS_MODE_BURST);
    expect(ic.cpuAccess(0, 0, 80)).toBe(54);
  });

  it("reports a window's stall and utilisation from two snapshots", () => {
    const { ic, clock } = make();
    const a = ic.snapshot();
    ic.dmaBegin(0, 400, BUS_MODE_BURST);
    ic.cpuAccessAt(0, 100, 80);
    ic.dmaEnd();
    clock.t = 1000;
    const w = Interconnect.window(a, ic.snapshot());
    expect(w).toMatchObject({ ns: 1000, cpuBusNs: 80, dmaBusNs: 400, dmaLost: 0, utilisation: 0.48 });
    expect(w.cpuStallNs).toEqual([300, 0]);
  });
});

// ---------------------------------------------------------------- the modes on a board

const SRC = 0x100000;
const DST = 0x200000;
const D0 = 0x300000;
const HOG = 0x4000000; // 8 MiB walked by the CPU: far beyond the 1 MiB LLC, every read misses
const HOG_SIZE = 8 << 20;
const LEN = 64 * 1024;

interface ModeRun {
  dmaNs: number;
  stallNs: number;
  stalls: number;
  accesses: number;
  lost: number;
  utilisation: number;
}

/**
 * A CPU that reads one new line every `thinkNs` after its previous access completed (so it
 * misses every time), on CPU 1, for as long as `busy()` holds.
 */
function cpuLoad(r: Rig, thinkNs: number, busy: () => boolean): { accesses: number } {
  const mem = r.board.mem;
  const buf = new Uint8Array(8);
  const out = { accesses: 0 };
  let addr = HOG;
  const step = (): void => {
    if (!busy()) return;
    const before = mem.charged[1];
    mem.cpuRead(1, addr, buf, 0, 8, MEM_CACHED);
    addr = addr + 64 >= HOG + HOG_SIZE ? HOG : addr + 64;
    out.accesses++;
    r.board.scheduler.after(mem.charged[1] - before + thinkNs, "cpu1", step);
  };
  r.board.scheduler.after(0, "cpu1", step);
  return out;
}

function runMode(m: number, withCpu: boolean, burstLog2 = 6): ModeRun {
  const r = rig();
  const data = pattern(LEN, m + 1);
  r.fill(SRC, data);
  r.desc(D0, { src: SRC, dst: DST, len: LEN, flags: LAST });
  const done = (): boolean => (r.read(ch(0, STATUS)) & 1) === 0 && r.dmac.channelStats(0).runEndNs > 0;
  // 37 ns of work between misses: not a multiple of the 8 ns beat, so the CPU does not phase-lock with the DMA.
  const load = withCpu ? cpuLoad(r, 37, () => !done()) : { accesses: 0 };
  const snap = r.board.interconnect.snapshot();
  r.start(0, D0, mode(m) | burst(burstLog2), CHAIN_DONE);
  r.run();
  expect(r.ram(DST, LEN)).toEqual(data);
  const s = r.dmac.channelStats(0);
  const w = Interconnect.window(snap, r.board.interconnect.snapshot(), s.runEndNs - s.runStartNs);
  return {
    dmaNs: s.runEndNs - s.runStartNs,
    stallNs: w.cpuStallNs[1],
    stalls: w.cpuStalls[1],
    accesses: load.accesses,
    lost: s.lostUnits,
    utilisation: w.utilisation,
  };
}

describe("dmac transfer modes against a CPU that misses in its caches", () => {
  it("take the same time in every mode when the bus is free", () => {
    const t = [0, 1, 2].map((m) => runMode(m, false).dmaNs);
    expect(t).toEqual([8 + (LEN / 64) * 16, 8 + (LEN / 64) * 16, 8 + (LEN / 64) * 16]);
  });

  it("burst: fastest DMA, largest CPU stall; transparent: no stall, slowest DMA; cycle stealing between", () => {
    const [b, c, t] = [0, 1, 2].map((m) => runMode(m, true));
    expect(b.dmaNs).toBeLessThan(c.dmaNs);
    expect(c.dmaNs).toBeLessThan(t.dmaNs);
    expect(b.stallNs).toBeGreaterThan(c.stallNs);
    expect(c.stallNs).toBeGreaterThan(0);
    expect(t.stallNs).toBe(0);
    // Cycle stealing delays a CPU access by at most one beat.
    expect(c.stallNs / c.stalls).toBeLessThanOrEqual(8);
    // A burst (64 beats = 512 ns) delays it by at most one burst.
    expect(b.stallNs / b.stalls).toBeLessThanOrEqual(512);
    // Transparent beats that a CPU access hit were redone.
    expect(t.lost).toBeGreaterThan(0);
    expect(b.lost + c.lost).toBe(0);
    // The CPU gets most done while the DMA stays out of its way.
    const rate = (x: ModeRun): number => x.accesses / x.dmaNs;
    expect(rate(t)).toBeGreaterThan(rate(b));
    // The bus is busier with both masters than the CPU keeps it alone.
    for (const x of [b, c, t]) expect(x.utilisation).toBeGreaterThan(0.55);
  });

  it("a longer burst stalls the CPU longer per access and finishes the copy sooner", () => {
    const short = runMode(0, true, 2);
    const long = runMode(0, true, 8);
    expect(long.dmaNs).toBeLessThan(short.dmaNs);
    expect(long.stallNs / long.stalls).toBeGreaterThan(short.stallNs / short.stalls);
  });
});
