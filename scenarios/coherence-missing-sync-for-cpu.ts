/**
 * coherence-missing-sync-for-cpu: a receive path that reads its DMA_FROM_DEVICE buffer before
 * dma_sync_single_for_cpu() (reference §13 bug 4).
 *
 * The driver zeroes the buffer (its lines are now in the CPU's cache), maps it, lets the edu
 * write a pattern into it and reads it straight away. arm64-noncoherent: the CPU reads its
 * cached zeroes, and the sanitizer reports the read of device-owned memory (cause) and the
 * stale bytes it returned (effect). x86-coherent: the device's write invalidated the lines, the
 * data is intact, and the cause is still reported.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import { cohdemo_fetch, cohdemo_load, cohdemo_rx_no_sync } from "../drivers/misc/cohdemo/cohdemo_ops.ts";
import { cohPattern, coherenceClaim, differingBytes, expectsIntact, runCoherence, sameBytes, type CoherenceExpectation } from "./coherence-common.ts";

const LEN = 1024;

export const EXPECT: CoherenceExpectation = { causes: ["cpu-access-device-owned"], effects: ["stale-cpu-read"] };

async function run(ctx: ScenarioContext): Promise<void> {
  await runCoherence(ctx, EXPECT, async (cd) => {
    const data = cohPattern(LEN, ctx.seed);
    ctx.check("load", 0, await cohdemo_load(cd, data));
    const r = await cohdemo_rx_no_sync(cd, LEN);
    ctx.check("rx-err", 0, r.err);
    ctx.check("data-intact", expectsIntact(ctx.machine), r.err === 0 && sameBytes(r.data, data));
    ctx.result("stale-bytes", r.err ? 0 : differingBytes(r.data, data));
    // the device buffer itself was right all along: a correct read gets it
    const again = await cohdemo_fetch(cd, LEN);
    ctx.check("correct-read-intact", true, again.err === 0 && sameBytes(again.data, data));
  });
}

export const coherenceMissingSyncForCpu: Scenario = {
  name: "coherence-missing-sync-for-cpu",
  summary: "RX buffer read before dma_sync_single_for_cpu(): stale cache on non-coherent DMA, named by the sanitizer",
  defaultMachine: "arm64-noncoherent",
  claim: (m) =>
    coherenceClaim(
      m,
      "non-coherent DMA: the CPU reads stale cached zeroes; findings cpu-access-device-owned and stale-cpu-read",
      "coherent DMA: the data reads back intact, yet the read of device-owned memory is still reported (cpu-access-device-owned)",
    ),
  run,
};
