/**
 * iommu-readonly-mapping: a device writing into a DMA_TO_DEVICE mapping (issue 4; reference
 * §4.1, §9.6: a TO_DEVICE mapping is read-only for the device behind an IOMMU).
 *
 * The rogue driver transmits a pattern from its transmit buffer, mapped DMA_TO_DEVICE. Then the
 * device writes into that buffer twice: its engine, programmed with the transmit buffer as the
 * destination (the classic wrong-direction bug), and its firmware directly (hw/dev/rogue/SPEC.md
 * section 8). Finally the device fetches the buffer again, which is what it may do, to see what
 * memory holds.
 *
 * IOMMU translating: the page is mapped read-only, so both writes fault with reason 0x05 ("PTE
 * Write access is not set"); the engine's transfer ends with ERROR (-EIO to the driver) and the
 * buffer is unchanged.
 * No IOMMU, or policy off / passthrough: nothing enforces a direction; both writes land and the
 * buffer is overwritten. The device owns the buffer while it is mapped, so the coherence
 * sanitizer has no cause to report; the scenario reports what the checkers said.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { rogue_device } from "../drivers/misc/rogue/rogue_main.ts";
import { rogue_dma, rogue_load, rogue_peek, rogue_send } from "../drivers/misc/rogue/rogue_ops.ts";
import { inProcessContext } from "../sim/driver-harness.ts";
import { EIO } from "../kernel/include/errno.ts";
import { dmarLines, faultsOf, firmwareOf, iommuPattern, isolates, isolationWords, sameBytes, withRogueDriver, withRogues } from "./iommu-common.ts";
import { faultMatches } from "./iommu-rogue-device.ts";

const LEN = 1024;

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  const iso = isolates(ctx.machine);
  if (iso) ctx.expectFindings("iommu-fault");
  await withRogueDriver(ctx, 1, async ([rg]) => {
    const sent = iommuPattern(LEN, ctx.seed, 20);
    // What the buffer should hold: the sent bytes, then the zeroes kzalloc left.
    const want = new Uint8Array(2 * LEN);
    want.set(sent);
    let engineErr = 0;
    await inProcessContext(k, "rogue-test", async () => {
      ctx.check("send", 0, await rogue_send(rg!, sent));
      rogue_load(rg!, iommuPattern(LEN, ctx.seed, 21));
      engineErr = await rogue_dma(rg!, rg!.tx_dma, LEN, true); // device -> a TO_DEVICE buffer
    });
    const fw = firmwareOf(ctx, rg!);
    const fwOk = fw.firmwareWrite(rg!.tx_dma + LEN, iommuPattern(LEN, ctx.seed, 22));
    k.enter();
    await k.run();
    let now: Uint8Array = new Uint8Array(0);
    await inProcessContext(k, "rogue-test", async () => {
      ctx.check("refetch", 0, await rogue_dma(rg!, rg!.tx_dma, 2 * LEN, false));
      now = rogue_peek(rg!, 2 * LEN);
    });
    report(ctx, rg!, engineErr, fwOk, sameBytes(now, want));
  });
}

function report(ctx: ScenarioContext, rg: rogue_device, engineErr: number, fwOk: boolean, unchanged: boolean): void {
  const k = ctx.kernel;
  const iso = isolates(ctx.machine);
  ctx.result("tx-iova", `0x${rg.tx_dma.toString(16)}`);
  ctx.result("engine-write-result", engineErr);
  ctx.result("firmware-write-accepted", fwOk);
  ctx.result("findings", [...new Set(k.findings.list.map((f) => f.kind))].sort().join(",") || "(none)");
  ctx.check("engine-write", iso ? -EIO : 0, engineErr);
  ctx.check("firmware-write-accepted", !iso, fwOk);
  ctx.check("buffer-unchanged", iso, unchanged);
  if (!iso) return;
  const faults = faultsOf(k, rg.dev.name);
  ctx.result("iommu-faults", faults.length);
  ctx.check("write-faults-logged", true, faults.filter((f) => faultMatches(f, rg.tx_dma, true) || faultMatches(f, rg.tx_dma + LEN, true)).length >= 2);
  ctx.check("dmesg-reason-0x05", true, dmarLines(k).some((l) => /fault reason 0x05/.test(l)));
}

function claim(m: MachineDesc): string {
  return isolates(m)
    ? `${isolationWords(m)}: the DMA_TO_DEVICE mapping is read-only for the device; its writes fault (reason 0x05) and the buffer is unchanged`
    : `${isolationWords(m)}: nothing enforces the mapping's direction, so the device's writes land in the DMA_TO_DEVICE buffer`;
}

export const iommuReadonlyMappingScenario: Scenario = {
  name: "iommu-readonly-mapping",
  summary: "a device writes into a DMA_TO_DEVICE mapping: the IOMMU faults it (read-only page), without one it lands",
  defaultMachine: "x86-iommu",
  machineFor: (m) => withRogues(m, 1),
  claim,
  run,
};
