/**
 * dma-api-misuse: a tour of dma-debug's error classes (§7.2), one mistake each.
 *
 * The dmatour driver binds to the edu, first moves data correctly through scatter-gather
 * mappings (to show the right way, and that the machine is sound), then commits fourteen DMA
 * API mistakes, one per step (drivers/misc/dmatour/dmatour_misuse.ts), and finally unbinds with
 * a mapping still live, the fifteenth. Every class is bookkeeping that dma-debug sees the same
 * way whatever the caches do, so all fifteen findings appear, exactly once each, on
 * arm64-noncoherent and on x86-coherent alike; each names its fix in one sentence.
 *
 * dma-debug's all_errors knob is turned on first (as through debugfs), so dmesg prints a
 * "DMA-API:" line for every error instead of Linux's default of the first one only.
 * Teardown: after the unbind report the scenario does what remove() should have done (unmap
 * and free the status page), so the machine ends with no live mapping and nothing leaked.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { FindingKind } from "../kernel/core/findings.ts";
import { dma_debug_set_options } from "../kernel/dma/debug-knobs.ts";
import { dmatour_devices, dmatour_driver, dmatour_release_leak, DRV_NAME } from "../drivers/misc/dmatour/dmatour_main.ts";
import { DMATOUR_STEPS, dmatour_misuse_all } from "../drivers/misc/dmatour/dmatour_misuse.ts";
import { dmatour_sg_roundtrip } from "../drivers/misc/dmatour/dmatour_sg.ts";
import { bindDriver, inProcessContext, unbindDriver } from "../sim/driver-harness.ts";
import { pattern } from "./edu.ts";

/** The fifteen kinds, in the order the tour commits them. */
export const DMA_API_MISUSE_KINDS: readonly FindingKind[] = [...DMATOUR_STEPS.map((s) => s.kind as FindingKind), "mapping-leak"];

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  dma_debug_set_options(k, { all_errors: true });
  ctx.expectFindings(...DMA_API_MISUSE_KINDS);
  const bound = await bindDriver(k, dmatour_driver);
  ctx.check("probe", 1, bound);
  const t = dmatour_devices[0];
  if (!t) return;
  await inProcessContext(
    k,
    "dmatour-tour",
    async () => {
      const data = pattern(3000, ctx.seed);
      const r = await dmatour_sg_roundtrip(t, data);
      ctx.check("sg-roundtrip-err", 0, r.err);
      ctx.check("sg-roundtrip-intact", true, r.err === 0 && r.data.every((b, i) => b === data[i]));
      ctx.check("findings-before-the-tour", 0, k.findings.count);
      dmatour_misuse_all(t.dev);
    },
    DRV_NAME,
  );
  await unbindDriver(k, dmatour_driver);
  let released = 0;
  await inProcessContext(k, "release-leak", async () => {
    released = dmatour_release_leak();
  });
  ctx.check("leaked-status-pages-released", 1, released);
  for (const kind of DMA_API_MISUSE_KINDS) ctx.check(`finding ${kind}`, 1, k.findings.ofKind(kind).length);
  ctx.check("every finding names a fix", true, k.findings.list.every((f) => /^[A-Z].*\.$/.test(f.fix)));
  const lines = k.printk.dmesg().filter((l) => l.includes("DMA-API: dmatour ")).length;
  ctx.result("dma-api-lines", lines);
  ctx.check("a DMA-API line per finding", true, lines >= DMA_API_MISUSE_KINDS.length);
  ctx.result("findings", k.findings.count);
}

export const dmaApiMisuseScenario: Scenario = {
  name: "dma-api-misuse",
  summary: "a buggy driver tours the dma-debug error classes: fifteen DMA API mistakes, each reported once with its fix",
  defaultMachine: "arm64-noncoherent",
  claim: () =>
    "the driver moves data correctly through sg mappings, then each of the 15 dma-debug classes is reported exactly once (on coherent and non-coherent machines alike), with a DMA-API line and a one-sentence fix",
  run,
};
