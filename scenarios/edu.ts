/**
 * edu and edu-stale-read: the edu driver end to end.
 *
 * `edu` probes the driver, computes factorials with completion by interrupt, runs a DMA round
 * trip through streaming mappings and another through coherent memory, and removes the driver.
 * It must work, with zero findings, on every machine.
 *
 * `edu-stale-read` loads the driver with `skip_sync_for_cpu=1`: it reads its DMA_FROM_DEVICE
 * buffer without dma_sync_single_for_cpu(). On a non-coherent machine the CPU then reads the
 * zeroes still in its cache instead of what the device wrote; on a coherent machine the
 * device's write invalidated those lines and the data is intact. The scenario states which
 * outcome it expects from the machine's coherence, so it passes when it demonstrates that.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import { edu_devices, edu_driver, edu_params } from "../drivers/misc/edu/edu_main.ts";
import { edu_dma_roundtrip_coherent, edu_dma_roundtrip_single, edu_factorial } from "../drivers/misc/edu/edu_ops.ts";
import { bindDriver, inProcessContext, unbindDriver } from "../sim/driver-harness.ts";

const FACTORIALS: [number, number][] = [
  [0, 1],
  [5, 120],
  [10, 3628800],
  [12, 479001600],
];

/** A payload that is different at every byte position and different for every seed. */
export function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

function firstMismatch(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function probeEdu(ctx: ScenarioContext): Promise<boolean> {
  const bound = await bindDriver(ctx.kernel, edu_driver);
  ctx.check("probe", 1, bound);
  ctx.check("edu-bound", true, edu_devices.length === 1);
  return edu_devices.length === 1;
}

async function runEdu(ctx: ScenarioContext): Promise<void> {
  if (!(await probeEdu(ctx))) return;
  const edu = edu_devices[0];
  ctx.result("irq-mode", edu.msi ? "MSI" : "INTx");
  await inProcessContext(ctx.kernel, "edu-test", async () => {
    for (const [n, want] of FACTORIALS) ctx.check(`factorial(${n})`, want, await edu_factorial(edu, n));
    const data = pattern(4096, ctx.seed);
    const single = await edu_dma_roundtrip_single(edu, data);
    ctx.check("dma-single-err", 0, single.err);
    ctx.check("dma-single-intact", true, single.err === 0 && firstMismatch(single.data, data) < 0);
    const coh = await edu_dma_roundtrip_coherent(edu, data.subarray(0, 2048));
    ctx.check("dma-coherent-err", 0, coh.err);
    ctx.check("dma-coherent-intact", true, coh.err === 0 && firstMismatch(coh.data, data.subarray(0, 2048)) < 0);
  });
  ctx.result("factorial-irqs", edu.irqs_fact);
  ctx.result("dma-irqs", edu.irqs_dma);
  await unbindDriver(ctx.kernel, edu_driver);
}

export const eduScenario: Scenario = {
  name: "edu",
  summary: "edu teaching device: probe, factorial by interrupt, DMA round trips (streaming and coherent), remove",
  defaultMachine: "x86-coherent",
  claim: () => "the driver probes, computes factorials and moves data intact both ways, with no findings",
  run: runEdu,
};

async function runStaleRead(ctx: ScenarioContext): Promise<void> {
  edu_params.skip_sync_for_cpu = true;
  try {
    if (!(await probeEdu(ctx))) return;
    const edu = edu_devices[0];
    await inProcessContext(ctx.kernel, "edu-test", async () => {
      const data = pattern(1024, ctx.seed);
      const r = await edu_dma_roundtrip_single(edu, data);
      ctx.check("dma-err", 0, r.err);
      const at = r.err ? 0 : firstMismatch(r.data, data);
      ctx.check("data-intact", staleReadExpectsIntact(ctx.machine), r.err === 0 && at < 0);
      ctx.result("first-stale-byte", at);
      ctx.result("stale-bytes", r.err ? 0 : r.data.reduce((n, v, i) => n + (v !== data[i] ? 1 : 0), 0));
    });
    await unbindDriver(ctx.kernel, edu_driver);
  } finally {
    edu_params.skip_sync_for_cpu = false;
  }
}

/** Only a machine whose DMA snoops the CPU caches survives the missing sync. */
function staleReadExpectsIntact(m: MachineDesc): boolean {
  return m.dma.coherent;
}

export const eduStaleReadScenario: Scenario = {
  name: "edu-stale-read",
  summary: "edu driver that skips dma_sync_single_for_cpu(): stale data on non-coherent DMA, intact on coherent",
  defaultMachine: "arm64-noncoherent",
  claim: (m) =>
    staleReadExpectsIntact(m)
      ? "coherent DMA: the device's write invalidates the CPU's lines, so the data reads back intact despite the missing sync"
      : "non-coherent DMA: without dma_sync_single_for_cpu() the CPU reads stale cached bytes instead of what the device wrote",
  run: runStaleRead,
};
