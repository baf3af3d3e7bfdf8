/**
 * coherence-shared-cacheline: a small DMA_FROM_DEVICE buffer inside a structure, followed by a
 * counter the CPU updates during the transfer (reference §5.4, §13 bug 3).
 *
 * struct cohdemo_msg { u8 rx[48]; u32 seq; } is one kzalloc(64): rx and seq share a cache line
 * (and the 128-byte ARCH_DMA_MINALIGN granule of arm64). arm64-noncoherent: the CPU's store to
 * seq re-dirties the line with the old rx bytes; unmapping cleans+invalidates the partial line
 * and writes those stale bytes over what the device wrote: cause cpu-access-device-owned
 * (shared line), effect lost-device-write, rx reads back zeroes. x86-coherent: the device's
 * write snoops the line, rx is intact, the shared-line store is still reported.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import { cohdemo_load, cohdemo_rx_shared_line, MSG_RX_LEN } from "../drivers/misc/cohdemo/cohdemo_ops.ts";
import { cohPattern, coherenceClaim, differingBytes, expectsIntact, runCoherence, sameBytes, type CoherenceExpectation } from "./coherence-common.ts";

export const EXPECT: CoherenceExpectation = { causes: ["cpu-access-device-owned"], effects: ["lost-device-write"] };

async function run(ctx: ScenarioContext): Promise<void> {
  await runCoherence(ctx, EXPECT, async (cd) => {
    const data = cohPattern(MSG_RX_LEN, ctx.seed);
    ctx.check("load", 0, await cohdemo_load(cd, data));
    const r = await cohdemo_rx_shared_line(cd);
    ctx.check("rx-err", 0, r.err);
    ctx.check("data-intact", expectsIntact(ctx.machine), r.err === 0 && sameBytes(r.data, data));
    ctx.check("seq", 1, r.seq); // the CPU's own field survives either way
    ctx.result("lost-bytes", r.err ? 0 : differingBytes(r.data, data));
  });
}

export const coherenceSharedCacheline: Scenario = {
  name: "coherence-shared-cacheline",
  summary: "DMA_FROM_DEVICE buffer sharing a cache line with a field the CPU writes during the transfer",
  defaultMachine: "arm64-noncoherent",
  claim: (m) =>
    coherenceClaim(
      m,
      "non-coherent DMA: the dirty shared line is written back over the received bytes; findings cpu-access-device-owned and lost-device-write",
      "coherent DMA: the received bytes survive, yet the store into the shared line is reported (cpu-access-device-owned)",
    ),
  run,
};
