/**
 * coherence-missing-sync-for-device: a transmit buffer reused without
 * dma_sync_single_for_device() (reference §13 bug 5).
 *
 * The driver maps a DMA_TO_DEVICE buffer holding A and sends it. Round 1 writes B into the
 * still-mapped buffer and sends again with no sync at all; round 2 takes the buffer back with
 * dma_sync_single_for_cpu(), writes C and sends again without giving it back. After each round
 * the device buffer is read back correctly to see what the device received.
 * arm64-noncoherent: B and C stay in dirty cache lines and the device reads the old A from RAM
 * both times: causes cpu-access-device-owned (round 1) and device-access-cpu-owned (round 2),
 * effect stale-device-read. x86-coherent: the device snoops the caches and gets B and C; the
 * causes are still reported.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import { cohdemo_load, cohdemo_tx_reuse } from "../drivers/misc/cohdemo/cohdemo_ops.ts";
import { cohPattern, coherenceClaim, expectsIntact, runCoherence, sameBytes, type CoherenceExpectation } from "./coherence-common.ts";

const LEN = 512;

export const EXPECT: CoherenceExpectation = { causes: ["cpu-access-device-owned", "device-access-cpu-owned"], effects: ["stale-device-read"] };

async function run(ctx: ScenarioContext): Promise<void> {
  await runCoherence(ctx, EXPECT, async (cd) => {
    const [a, b, c] = [1, 2, 3].map((salt) => cohPattern(LEN, ctx.seed, salt));
    ctx.check("clear", 0, await cohdemo_load(cd, new Uint8Array(LEN)));
    const r = await cohdemo_tx_reuse(cd, a, b, c);
    ctx.check("tx-err", 0, r.err);
    const intact = expectsIntact(ctx.machine);
    const [got1, got2] = r.rounds;
    ctx.check("round1-intact", intact, got1 !== undefined && sameBytes(got1, b));
    ctx.check("round2-intact", intact, got2 !== undefined && sameBytes(got2, c));
    ctx.check("data-intact", intact, got1 !== undefined && got2 !== undefined && sameBytes(got1, b) && sameBytes(got2, c));
    ctx.result("device-got-old-data", got1 !== undefined && sameBytes(got1, a));
  });
}

export const coherenceMissingSyncForDevice: Scenario = {
  name: "coherence-missing-sync-for-device",
  summary: "reused TX buffer rewritten without dma_sync_single_for_device(): the device reads old data on non-coherent DMA",
  defaultMachine: "arm64-noncoherent",
  claim: (m) =>
    coherenceClaim(
      m,
      "non-coherent DMA: the device reads the old bytes from RAM twice; findings cpu-access-device-owned, device-access-cpu-owned and stale-device-read",
      "coherent DMA: the device snoops the new bytes, yet both ownership violations are reported (cpu-access-device-owned, device-access-cpu-owned)",
    ),
  run,
};
