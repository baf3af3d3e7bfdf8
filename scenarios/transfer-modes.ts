/**
 * transfer-modes: one DMA copy in burst, cycle-stealing and transparent mode beside a CPU that
 * misses in its caches, showing what each mode costs whom (hw/dev/dmac/SPEC.md section 6.2).
 *
 * The machine gets a dmac (the profiles have none: withDmacMachine adds one at 0xd1000000
 * before boot, unless the machine file already lists one) and the simdmac driver. A client in
 * process context takes channel 0, maps a 256 KiB source and destination against the
 * controller's device and, for each mode, configures the channel (dma_slave_config's
 * peripheral_config), starts a kernel thread on CPU 1 that walks a 4 MiB buffer one cache line
 * at a time (every line a miss to RAM, which holds the bus), and runs one memcpy transaction
 * to completion beside it. It reports per mode the DMA completion time, the stall the CPU
 * suffered waiting for the bus, the bus utilisation and how far the CPU got, and expects:
 *   burst          fastest DMA, largest CPU stall (the CPU waits out whole bursts);
 *   cycle stealing in between (the CPU waits at most one beat per access);
 *   transparent    no CPU stall at all, slowest DMA (it only gets the idle bus);
 * with the data intact every time, zero findings, and everything released.
 *
 * The CPU-bound thread lets the event clock catch up after every line (a simulation device,
 * not a real scheduling point): kernel code runs ahead of the event clock by the CPU time it
 * charges, and the bus arbitrates in the order it sees accesses, so a thread that ran a whole
 * millisecond ahead in one go would be granted the bus before the DMA for all of it.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import { DmacDevice } from "../hw/dev/dmac/dmac.ts";
import { BUS_MODE_NAMES, Interconnect } from "../hw/bus/interconnect.ts";
import { boundCount, inProcessContext, runUntilDone } from "../sim/driver-harness.ts";
import { simdmac_driver } from "../drivers/dma/simdmac/simdmac_main.ts";
import { platform_driver_register, platform_driver_unregister } from "../kernel/include/platform_device.ts";
import { MachineConfigError, parseMachineObject } from "../hw/machine/load.ts";
import {
  DMA_PREP_INTERRUPT, DMA_XFER_BURST, DMA_XFER_CYCLE_STEAL, DMA_XFER_TRANSPARENT, dma_async_issue_pending,
  dma_release_channel, dma_request_chan, dmaengine_get_dma_device, dmaengine_prep_dma_memcpy, dmaengine_slave_config,
  dmaengine_submit, type dma_chan,
} from "../kernel/include/dmaengine.ts";
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_single } from "../kernel/include/dma-mapping.ts";
import { GFP_KERNEL, kfree, kmalloc, kzalloc } from "../kernel/include/slab.ts";
import { copy_from_user, copy_to_user, kread64, memset } from "../kernel/include/string.ts";
import { DECLARE_COMPLETION, complete, wait_for_completion } from "../kernel/include/completion.ts";
import { IS_ERR } from "../kernel/include/errno.ts";
import type { vaddr_t } from "../kernel/include/types.ts";
import { sleep_until_ns } from "../kernel/time/wait.ts";
import { ENTRY_COST_NS } from "../kernel/core/sched.ts";
import { pattern } from "./edu.ts";

/** Where the scenario puts a dmac when the machine has none. */
export const DMAC_DEFAULT_BASE = 0xd1000000;
const COPY = 256 * 1024;
const HOG = 4 << 20; // four times the LLC: every line the CPU walks is a miss
const BURST_BEATS = 64; // burst mode: 64 beats = 2 KiB copied per bus tenure (512 ns)
const CLIENT = "dmatest";

// ---------------------------------------------------------------- the controller

export interface DmacSetup {
  readonly dmac: DmacDevice;
  readonly interconnect: Interconnect;
}

/** The first free interrupt line at or above 16. */
function freeIrq(m: MachineDesc): number {
  const used = new Set([...m.pci.devices.map((d) => d.irq), ...m.platform.map((d) => d.irq)]);
  for (let i = 16; i < m.interrupts.lines; i++) if (!used.has(i)) return i;
  throw new MachineConfigError(`machine "${m.name}"`, [{ path: "interrupts.lines", message: "no free interrupt line for a dmac" }]);
}

/**
 * withDmacMachine - the machine the DMA-controller scenarios run on: the one asked for, plus a
 * dmac at DMAC_DEFAULT_BASE on a free line when it lists none (the built-in profiles do not).
 * The result is validated like a machine file, so a clash is a configuration error (exit 2).
 */
export function withDmacMachine(m: MachineDesc): MachineDesc {
  if (m.platform.some((d) => d.model === "dmac")) return m;
  const dmac = { name: "dmac", model: "dmac", base: DMAC_DEFAULT_BASE, size: 0x1000, irq: freeIrq(m) };
  return parseMachineObject({ ...structuredClone(m), platform: [...m.platform, dmac] }, `machine "${m.name}" with a dmac`);
}

/** The machine's dmac (withDmacMachine put one there) and the bus it arbitrates for. */
export function attachDmac(ctx: ScenarioContext): DmacSetup {
  const listed = ctx.board.platformDevices.find((d) => d.device instanceof DmacDevice);
  if (!listed) throw new Error(`machine "${ctx.machine.name}" has no dmac: the scenario must run on withDmacMachine()`);
  return { dmac: listed.device as DmacDevice, interconnect: ctx.board.interconnect };
}

/**
 * withDmac - attach a dmac, bind simdmac, run `fn`, then unbind and detach whatever happens
 * Returns: false (and records a failed "probe" check) when the driver did not bind.
 */
export async function withDmac(ctx: ScenarioContext, fn: (s: DmacSetup) => Promise<void>): Promise<boolean> {
  const k = ctx.kernel;
  const s = attachDmac(ctx);
  try {
    await runUntilDone(k, () => platform_driver_register(simdmac_driver));
    const bound = boundCount(k, simdmac_driver.driver.name);
    ctx.check("probe", 1, bound);
    if (bound !== 1) return false;
    await fn(s);
    return true;
  } finally {
    await runUntilDone(k, () => platform_driver_unregister(simdmac_driver));
  }
}

// ---------------------------------------------------------------- the CPU-bound thread

/** Where the CPU-bound thread's walk is: it goes on across modes so it never meets lines it left in a cache. */
interface Walk {
  readonly buf: vaddr_t;
  off: number;
}

interface Hog {
  stop: boolean;
  /** Cache lines walked. */
  lines: number;
  readonly done: ReturnType<typeof DECLARE_COMPLETION>;
}

/** A kernel thread on CPU 1 reading the next line of the walk, and the next, until told to stop. */
function startHog(k: Kernel, walk: Walk): Hog {
  const hog: Hog = { stop: false, lines: 0, done: DECLARE_COMPLETION() };
  k.exec.spawn("cpu-hog", 1, CLIENT, async () => {
    let sum = 0;
    while (!hog.stop) {
      // One miss, then 0..7 hits: work that varies a little, as real code does, so the CPU
      // does not fall into lockstep with the 8 ns bus beats.
      const words = 1 + ((hog.lines * 5) & 7);
      for (let w = 0; w < words; w++) sum += kread64(walk.buf + walk.off + 8 * w);
      walk.off = (walk.off + 64) % HOG;
      hog.lines++;
      // Let the event clock reach this CPU's time (see the header comment).
      await sleep_until_ns(k, k.exec.now() + ENTRY_COST_NS);
    }
    void sum;
    complete(hog.done);
  });
  return hog;
}

// ---------------------------------------------------------------- one mode

interface ModeResult {
  dmaNs: number;
  stallNs: number;
  stalls: number;
  utilisation: number;
  cpuLines: number;
  intact: boolean;
  err: string;
}

async function oneCopy(ctx: ScenarioContext, s: DmacSetup, chan: dma_chan, mode: number | null, src: vaddr_t, dst: vaddr_t, walk: Walk, data: Uint8Array): Promise<ModeResult> {
  const k = ctx.kernel;
  const dev = dmaengine_get_dma_device(chan);
  const fail = (err: string): ModeResult => ({ dmaNs: 0, stallNs: 0, stalls: 0, utilisation: 0, cpuLines: 0, intact: false, err });
  if (dmaengine_slave_config(chan, { peripheral_config: { xfer_mode: mode ?? DMA_XFER_BURST, burst_beats: BURST_BEATS } }) !== 0) return fail("slave_config");
  memset(dst, 0, COPY);
  const s_ = dma_map_single(dev, src, COPY, DMA_TO_DEVICE);
  if (dma_mapping_error(dev, s_)) return fail("map src");
  const d_ = dma_map_single(dev, dst, COPY, DMA_FROM_DEVICE);
  if (dma_mapping_error(dev, d_)) {
    dma_unmap_single(dev, s_, COPY, DMA_TO_DEVICE);
    return fail("map dst");
  }
  // This thread's CPU time is ahead of the event clock by what it just charged (the memset,
  // the cache maintenance of the maps): catch up, so the DMA and the CPU-bound thread start
  // together.
  await sleep_until_ns(k, k.exec.now());
  const hog = mode === null ? null : startHog(k, walk);
  const done = DECLARE_COMPLETION();
  const tx = dmaengine_prep_dma_memcpy(chan, d_, s_, COPY, DMA_PREP_INTERRUPT);
  let measured: Omit<ModeResult, "intact" | "err"> | null = null;
  if (tx) {
    tx.callback = () => complete(done);
    const before = s.interconnect.snapshot();
    dmaengine_submit(tx);
    dma_async_issue_pending(chan);
    await wait_for_completion(done);
    const st = s.dmac.channelStats(chan.chan_id);
    const dmaNs = st.runEndNs - st.runStartNs;
    const w = Interconnect.window(before, s.interconnect.snapshot(), dmaNs);
    measured = { dmaNs, stallNs: w.cpuStallNs[1], stalls: w.cpuStalls[1], utilisation: w.utilisation, cpuLines: hog?.lines ?? 0 };
  }
  if (hog) {
    hog.stop = true;
    await wait_for_completion(hog.done);
  }
  dma_unmap_single(dev, s_, COPY, DMA_TO_DEVICE);
  dma_unmap_single(dev, d_, COPY, DMA_FROM_DEVICE);
  if (!measured) return fail("prep");
  const out = new Uint8Array(COPY);
  copy_to_user(out, dst);
  return { ...measured, intact: out.every((v, i) => v === data[i]), err: "" };
}

// ---------------------------------------------------------------- the scenario

const MODES: [string, number][] = [
  [BUS_MODE_NAMES[DMA_XFER_BURST], DMA_XFER_BURST],
  [BUS_MODE_NAMES[DMA_XFER_CYCLE_STEAL], DMA_XFER_CYCLE_STEAL],
  [BUS_MODE_NAMES[DMA_XFER_TRANSPARENT], DMA_XFER_TRANSPARENT],
];

async function runTransferModes(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  await withDmac(ctx, async (s) => {
    const res = new Map<string, ModeResult>();
    await inProcessContext(k, "transfer-modes", async () => {
      const chan = dma_request_chan(null, "ch0");
      ctx.check("dma_request_chan", true, !IS_ERR(chan));
      if (IS_ERR(chan)) return;
      const data = pattern(COPY, ctx.seed);
      const src = kmalloc(COPY, GFP_KERNEL);
      const dst = kzalloc(COPY, GFP_KERNEL);
      const hogBuf = kzalloc(HOG, GFP_KERNEL);
      copy_from_user(src, data);
      const walk: Walk = { buf: hogBuf, off: 0 };
      res.set("alone", await oneCopy(ctx, s, chan, null, src, dst, walk, data));
      for (const [name, mode] of MODES) res.set(name, await oneCopy(ctx, s, chan, mode, src, dst, walk, data));
      kfree(hogBuf);
      kfree(dst);
      kfree(src);
      dma_release_channel(chan);
    }, CLIENT);
    report(ctx, res);
  });
  ctx.check("findings", 0, ctx.kernel.findings.list.length);
}

function report(ctx: ScenarioContext, res: Map<string, ModeResult>): void {
  const alone = res.get("alone");
  if (alone) ctx.result("alone: dma-ns", alone.dmaNs);
  for (const [name] of MODES) {
    const r = res.get(name);
    if (!r) continue;
    ctx.check(`${name}: data intact`, true, r.intact && r.err === "");
    ctx.result(`${name}: dma-ns`, r.dmaNs);
    ctx.result(`${name}: cpu-stall-ns`, r.stallNs);
    ctx.result(`${name}: cpu-stalls`, r.stalls);
    ctx.result(`${name}: bus-utilisation`, Math.round(r.utilisation * 1000) / 1000);
    ctx.result(`${name}: cpu-lines-walked`, r.cpuLines);
  }
  const [b, c, t] = MODES.map(([n]) => res.get(n));
  if (!b || !c || !t) return;
  ctx.check("burst: fastest DMA", true, b.dmaNs < c.dmaNs && b.dmaNs < t.dmaNs);
  ctx.check("burst: largest CPU stall", true, b.stallNs > c.stallNs && b.stallNs > t.stallNs);
  ctx.check("cycle-stealing: DMA time between burst and transparent", true, b.dmaNs < c.dmaNs && c.dmaNs < t.dmaNs);
  ctx.check("cycle-stealing: some CPU stall, at most one beat (8 ns) per stalled access", true, c.stallNs > 0 && c.stallNs <= 8 * c.stalls);
  ctx.check("transparent: no CPU stall", 0, t.stallNs);
  ctx.check("transparent: slowest DMA", true, t.dmaNs > b.dmaNs && t.dmaNs > c.dmaNs);
}

export const transferModesScenario: Scenario = {
  name: "transfer-modes",
  summary: "one 256 KiB DMA copy in burst, cycle-stealing and transparent mode beside a cache-missing CPU: DMA time vs CPU stall",
  defaultMachine: "arm64-noncoherent",
  machineFor: withDmacMachine,
  claim: () =>
    "burst gives the fastest DMA and the largest CPU stall, transparent no CPU stall and the slowest DMA, cycle stealing lies between; data intact, no findings",
  run: runTransferModes,
};
