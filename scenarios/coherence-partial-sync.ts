/**
 * coherence-partial-sync: an RX path that recycles one long-lived buffer and syncs only the
 * bytes a packet needs (dma_sync_single_range_for_cpu, §4), as NIC drivers do. The first packet
 * is synced correctly (no finding: a partial sync hands the CPU exactly its range, and the
 * device may write the buffer again because the CPU only read it). The second packet is longer
 * than the bytes the driver syncs (it reuses the first packet's length, a classic bug).
 *
 * arm64-noncoherent: the bytes past the synced range come from cache lines the CPU filled
 * before the transfer: cpu-access-device-owned for exactly those bytes (cause) and
 * stale-cpu-read (effect). x86-coherent: the data is intact, and the cause is still reported.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import { cohdemo_rx_recycle } from "../drivers/misc/cohdemo/cohdemo_ops.ts";
import { cohPattern, coherenceClaim, differingBytes, expectsIntact, runCoherence, sameBytes, type CoherenceExpectation } from "./coherence-common.ts";

/** The first packet's length: what the driver keeps syncing. */
const SHORT = 256;
const LONG = 1024;

export const EXPECT: CoherenceExpectation = { causes: ["cpu-access-device-owned"], effects: ["stale-cpu-read"] };

async function run(ctx: ScenarioContext): Promise<void> {
  await runCoherence(ctx, EXPECT, async (cd) => {
    const first = cohPattern(SHORT, ctx.seed, 1);
    const second = cohPattern(LONG, ctx.seed, 2);
    const findingsBefore = ctx.kernel.findings.count;
    const r1 = await cohdemo_rx_recycle(cd, [{ data: first, sync: SHORT }]);
    ctx.check("rx-err", 0, r1.err);
    ctx.check("first-packet-intact", true, r1.rounds.length === 1 && sameBytes(r1.rounds[0], first));
    // the correct partial sync and the recycle are no finding
    ctx.check("findings-after-correct-round", 0, ctx.kernel.findings.count - findingsBefore);
    const r2 = await cohdemo_rx_recycle(cd, [
      { data: first, sync: SHORT },
      { data: second, sync: SHORT }, // BUG: synced as long as the first packet
    ]);
    ctx.check("rx2-err", 0, r2.err);
    const got = r2.rounds[1] ?? new Uint8Array(0);
    ctx.check("data-intact", expectsIntact(ctx.machine), sameBytes(got, second));
    ctx.result("stale-bytes", differingBytes(got, second));
    const cause = ctx.kernel.findings.list.find((f) => f.kind === "cpu-access-device-owned");
    ctx.check("cause-names-the-unsynced-bytes", `${SHORT}..${LONG - 1}`, cause ? `${cause.details?.offset_start}..${cause.details?.offset_end}` : "none");
  });
}

export const coherencePartialSync: Scenario = {
  name: "coherence-partial-sync",
  summary: "recycled RX buffer synced only partly (dma_sync_single_range_for_cpu): correct for a short packet, stale past the synced bytes for a long one",
  defaultMachine: "arm64-noncoherent",
  claim: (m) =>
    coherenceClaim(
      m,
      "non-coherent DMA: the correctly synced packet is no finding; the long one reads stale bytes past the synced range (cpu-access-device-owned for those bytes, stale-cpu-read)",
      "coherent DMA: both packets read back intact, yet the read past the synced range is still reported (cpu-access-device-owned)",
    ),
  run,
};
