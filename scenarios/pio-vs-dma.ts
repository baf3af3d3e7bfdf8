/**
 * pio-vs-dma: move 1 MiB by CPU copies (memcpy through the caches: programmed I/O) and by the
 * DMA controller (a dmaengine memcpy), and compare the CPU time each costs.
 *
 * The machine gets a dmac as in transfer-modes (added before boot unless it lists one) and
 * the simdmac driver. Each phase runs in its own kernel thread on CPU 0 and is measured from
 * outside, as the CPU busy time of every CPU between its start and its end, so interrupt and
 * tasklet time count for the DMA:
 *   PIO  memcpy(dst, src, 1 MiB): every line read and written by the CPU, misses and all;
 *   DMA  map src (TO_DEVICE) and dst (FROM_DEVICE) against the controller's device, prepare,
 *        submit, issue, sleep until the completion callback, unmap: the CPU only programs the
 *        transfer (and, on a non-coherent machine, maintains the caches by line for the maps).
 * Both must deliver the data intact, with zero findings; the scenario expects the DMA path to
 * cost at most a third of the CPU time of the PIO path (about a fifth on the arm64 profile,
 * where the maps' cache maintenance is most of it; far less on a coherent machine), and reports
 * both, their ratio and the elapsed (virtual) time of each.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import { inProcessContext } from "../sim/driver-harness.ts";
import {
  DMA_PREP_INTERRUPT, dma_async_issue_pending, dma_release_channel, dma_request_chan, dmaengine_get_dma_device,
  dmaengine_prep_dma_memcpy, dmaengine_submit, type dma_chan,
} from "../kernel/include/dmaengine.ts";
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_single } from "../kernel/include/dma-mapping.ts";
import { GFP_KERNEL, kfree, kmalloc, kzalloc } from "../kernel/include/slab.ts";
import { copy_from_user, copy_to_user, memcpy, memset } from "../kernel/include/string.ts";
import { DECLARE_COMPLETION, complete, wait_for_completion } from "../kernel/include/completion.ts";
import { IS_ERR } from "../kernel/include/errno.ts";
import type { vaddr_t } from "../kernel/include/types.ts";
import { withDmac, withDmacMachine, type DmacSetup } from "./transfer-modes.ts";
import { pattern } from "./edu.ts";

const SIZE = 1 << 20;
const CLIENT = "dmatest";
/** The DMA path must cost at most this fraction of the PIO path's CPU time. */
const MAX_DMA_SHARE = 1 / 3;

interface Phase {
  cpuNs: number;
  elapsedNs: number;
  ok: boolean;
}

/** Sum of every CPU's busy time so far. */
function busy(k: Kernel): number {
  return k.exec.busyNs.reduce((a, b) => a + b, 0);
}

/** The moment everything so far is done: the event clock, or later if a CPU is still busy. */
function horizon(k: Kernel): number {
  return Math.max(k.platform.now(), ...k.exec.busyUntil);
}

/** Run `fn` in its own kernel thread and measure the CPU time and virtual time it took. */
async function phase(k: Kernel, name: string, fn: () => Promise<boolean>): Promise<Phase> {
  const cpu0 = busy(k);
  const t0 = horizon(k);
  let ok = false;
  await inProcessContext(k, name, async () => {
    ok = await fn();
  }, CLIENT);
  return { cpuNs: busy(k) - cpu0, elapsedNs: horizon(k) - t0, ok };
}

async function dmaCopy(chan: dma_chan, dst: vaddr_t, src: vaddr_t): Promise<boolean> {
  const dev = dmaengine_get_dma_device(chan);
  const s = dma_map_single(dev, src, SIZE, DMA_TO_DEVICE);
  if (dma_mapping_error(dev, s)) return false;
  const d = dma_map_single(dev, dst, SIZE, DMA_FROM_DEVICE);
  if (dma_mapping_error(dev, d)) {
    dma_unmap_single(dev, s, SIZE, DMA_TO_DEVICE);
    return false;
  }
  const done = DECLARE_COMPLETION();
  const tx = dmaengine_prep_dma_memcpy(chan, d, s, SIZE, DMA_PREP_INTERRUPT);
  if (tx) {
    tx.callback = () => complete(done);
    dmaengine_submit(tx);
    dma_async_issue_pending(chan);
    await wait_for_completion(done);
  }
  dma_unmap_single(dev, s, SIZE, DMA_TO_DEVICE);
  dma_unmap_single(dev, d, SIZE, DMA_FROM_DEVICE);
  return tx !== null;
}

async function runPioVsDma(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  await withDmac(ctx, async (s: DmacSetup) => {
    const data = pattern(SIZE, ctx.seed);
    let chan: dma_chan | null = null;
    let src = 0;
    let dst = 0;
    const intact = async (): Promise<boolean> => {
      let same = false;
      await inProcessContext(k, "check", async () => {
        const out = new Uint8Array(SIZE);
        copy_to_user(out, dst);
        same = out.every((v, i) => v === data[i]);
        memset(dst, 0, SIZE);
      }, CLIENT);
      return same;
    };
    await inProcessContext(k, "setup", async () => {
      const c = dma_request_chan(null, "any");
      if (IS_ERR(c)) return;
      chan = c;
      src = kmalloc(SIZE, GFP_KERNEL);
      dst = kzalloc(SIZE, GFP_KERNEL);
      copy_from_user(src, data);
    }, CLIENT);
    ctx.check("dma_request_chan", true, chan !== null);
    if (!chan) return;
    const pio = await phase(k, "pio-copy", async () => {
      memcpy(dst, src, SIZE);
      return true;
    });
    ctx.check("pio: data intact", true, pio.ok && (await intact()));
    const ch: dma_chan = chan;
    const dma = await phase(k, "dma-copy", () => dmaCopy(ch, dst, src));
    ctx.check("dma: data intact", true, dma.ok && (await intact()));
    const hw = s.dmac.channelStats(ch.chan_id);
    await inProcessContext(k, "cleanup", async () => {
      kfree(src);
      kfree(dst);
      dma_release_channel(ch);
    }, CLIENT);
    ctx.result("bytes", SIZE);
    ctx.result("pio: cpu-ns", Math.round(pio.cpuNs));
    ctx.result("pio: elapsed-ns", Math.round(pio.elapsedNs));
    ctx.result("dma: cpu-ns", Math.round(dma.cpuNs));
    ctx.result("dma: elapsed-ns", Math.round(dma.elapsedNs));
    ctx.result("dma: transfer-ns", hw.runEndNs - hw.runStartNs);
    ctx.result("cpu-time pio/dma", Math.round((pio.cpuNs / dma.cpuNs) * 10) / 10);
    ctx.check("dma: CPU time at most a third of pio's", true, dma.cpuNs <= MAX_DMA_SHARE * pio.cpuNs);
  });
  ctx.check("findings", 0, k.findings.list.length);
}

export const pioVsDmaScenario: Scenario = {
  name: "pio-vs-dma",
  summary: "move 1 MiB by CPU memcpy and by the DMA controller: CPU busy time of each",
  defaultMachine: "arm64-noncoherent",
  machineFor: withDmacMachine,
  claim: (m: MachineDesc) =>
    `the DMA copy costs the CPU at most a third of what the CPU copy does${m.dma.coherent ? "" : " (cache maintenance for the maps included)"}; data intact both ways, no findings`,
  run: runPioVsDma,
};
