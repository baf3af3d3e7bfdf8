/**
 * coherence-cpu-writes-while-mapped: a driver plants a sentinel in the last 4 bytes of its
 * mapped receive buffer and, after the interrupt, reads it to see whether the device wrote
 * that far, all while the device owns the buffer.
 *
 * The buffer is 1000 bytes, so its last cache line is shared with the allocation's slack.
 * arm64-noncoherent: the sentinel store leaves that line dirty with old bytes; the check reads
 * the sentinel back from the cache (stale-cpu-read: the device had overwritten it in RAM), so
 * the driver thinks the tail never arrived; unmapping cleans+invalidates the partial line and
 * the stale bytes overwrite the device's (lost-device-write). Causes: cpu-access-device-owned
 * (the store and the load). x86-coherent: everything arrives, the causes are still reported.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import { cohdemo_load, cohdemo_rx_sentinel } from "../drivers/misc/cohdemo/cohdemo_ops.ts";
import { cohPattern, coherenceClaim, differingBytes, expectsIntact, runCoherence, sameBytes, type CoherenceExpectation } from "./coherence-common.ts";

const LEN = 1000;

export const EXPECT: CoherenceExpectation = { causes: ["cpu-access-device-owned"], effects: ["stale-cpu-read", "lost-device-write"] };

async function run(ctx: ScenarioContext): Promise<void> {
  await runCoherence(ctx, EXPECT, async (cd) => {
    const data = cohPattern(LEN, ctx.seed);
    ctx.check("load", 0, await cohdemo_load(cd, data));
    const r = await cohdemo_rx_sentinel(cd, LEN);
    ctx.check("rx-err", 0, r.err);
    const intact = expectsIntact(ctx.machine);
    ctx.check("tail-seen", intact, r.tail_seen);
    ctx.check("data-intact", intact, r.err === 0 && sameBytes(r.data, data));
    ctx.result("lost-bytes", r.err ? 0 : differingBytes(r.data, data));
  });
}

export const coherenceCpuWritesWhileMapped: Scenario = {
  name: "coherence-cpu-writes-while-mapped",
  summary: "CPU writes and polls a sentinel inside a mapped RX buffer: stale read and lost device data on non-coherent DMA",
  defaultMachine: "arm64-noncoherent",
  claim: (m) =>
    coherenceClaim(
      m,
      "non-coherent DMA: the sentinel reads stale and its dirty line destroys received bytes; findings cpu-access-device-owned, stale-cpu-read and lost-device-write",
      "coherent DMA: the data and the tail arrive intact, yet the store and load of device-owned memory are reported (cpu-access-device-owned)",
    ),
  run,
};
