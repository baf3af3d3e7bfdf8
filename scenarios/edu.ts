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
 *
 * Both scenarios register the PCI driver and the platform driver (whichever finds devices
 * binds them: a `pci.devices` edu, a `platform` edu, or both) and unregister both at the end.
 * "probe" expects as many bound devices as the machine describes edus (at least one). Every
 * bound device runs the same workload, in probe order (PCI first): the first one's checks and
 * results carry the plain names ("factorial(5)", "irq-mode"), each further one's are prefixed
 * with its device name ("edu0: factorial(5)", "edu0: irq-mode"), so a one-edu machine reports
 * exactly as before. "irq-mode" is "MSI" or "INTx" on PCI and "platform IRQ" on the platform
 * bus.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import { edu_devices, edu_driver, edu_params, type edu_device } from "../drivers/misc/edu/edu_main.ts";
import { edu_platform_driver } from "../drivers/misc/edu/edu_platform.ts";
import { edu_dma_roundtrip_coherent, edu_dma_roundtrip_single, edu_factorial } from "../drivers/misc/edu/edu_ops.ts";
import { platform_driver_register, platform_driver_unregister } from "../kernel/include/platform_device.ts";
import { bindDriver, boundCount, inProcessContext, runUntilDone, unbindDriver } from "../sim/driver-harness.ts";

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

/** How many edus the machine describes, on either bus. */
function eduCount(m: MachineDesc): number {
  return m.pci.devices.filter((d) => d.model === "edu").length + m.platform.filter((d) => d.model === "edu").length;
}

/** Register both drivers and run until their probes finished; true when some edu is bound. */
async function probeEdu(ctx: ScenarioContext): Promise<boolean> {
  const k = ctx.kernel;
  await bindDriver(k, edu_driver);
  await runUntilDone(k, () => platform_driver_register(edu_platform_driver));
  // At least one: the scenario is about an edu, so a machine without any fails it.
  const want = Math.max(1, eduCount(ctx.machine));
  ctx.check("probe", want, boundCount(k, edu_driver.name));
  ctx.check("edu-bound", true, edu_devices.length > 0 && edu_devices.length === want);
  return edu_devices.length > 0;
}

/** Unregister both drivers (remove, then devres) and run until done. */
async function removeEdu(k: Kernel): Promise<void> {
  await runUntilDone(k, () => platform_driver_unregister(edu_platform_driver));
  await unbindDriver(k, edu_driver);
}

/** The device's checks and results are named plainly for the first device, prefixed after. */
function namer(edu: edu_device, i: number): (name: string) => string {
  return i === 0 ? (name) => name : (name) => `${edu.dev.name}: ${name}`;
}

async function exerciseEdu(ctx: ScenarioContext, edu: edu_device, i: number): Promise<void> {
  const n = namer(edu, i);
  ctx.result(n("irq-mode"), edu.irq_mode);
  for (const [arg, want] of FACTORIALS) ctx.check(n(`factorial(${arg})`), want, await edu_factorial(edu, arg));
  const data = pattern(4096, ctx.seed + i);
  const single = await edu_dma_roundtrip_single(edu, data);
  ctx.check(n("dma-single-err"), 0, single.err);
  ctx.check(n("dma-single-intact"), true, single.err === 0 && firstMismatch(single.data, data) < 0);
  const coh = await edu_dma_roundtrip_coherent(edu, data.subarray(0, 2048));
  ctx.check(n("dma-coherent-err"), 0, coh.err);
  ctx.check(n("dma-coherent-intact"), true, coh.err === 0 && firstMismatch(coh.data, data.subarray(0, 2048)) < 0);
}

async function runEdu(ctx: ScenarioContext): Promise<void> {
  try {
    if (!(await probeEdu(ctx))) return;
    const devs = [...edu_devices];
    await inProcessContext(ctx.kernel, "edu-test", async () => {
      for (const [i, edu] of devs.entries()) await exerciseEdu(ctx, edu, i);
    });
    for (const [i, edu] of devs.entries()) {
      const n = namer(edu, i);
      ctx.result(n("factorial-irqs"), edu.irqs_fact);
      ctx.result(n("dma-irqs"), edu.irqs_dma);
    }
  } finally {
    await removeEdu(ctx.kernel);
  }
}

export const eduScenario: Scenario = {
  name: "edu",
  summary: "edu teaching device: probe, factorial by interrupt, DMA round trips (streaming and coherent), remove",
  defaultMachine: "x86-coherent",
  claim: () => "the driver probes, computes factorials and moves data intact both ways, with no findings",
  run: runEdu,
};

async function runStaleRead(ctx: ScenarioContext): Promise<void> {
  // The coherence sanitizer names the bug: the read of device-owned memory, and the stale bytes where DMA does not snoop.
  ctx.expectFindings("cpu-access-device-owned", ...(ctx.machine.dma.coherent ? [] : (["stale-cpu-read"] as const)));
  edu_params.skip_sync_for_cpu = true;
  try {
    if (!(await probeEdu(ctx))) return;
    const devs = [...edu_devices];
    await inProcessContext(ctx.kernel, "edu-test", async () => {
      for (const [i, edu] of devs.entries()) {
        const n = namer(edu, i);
        const data = pattern(1024, ctx.seed + i);
        const r = await edu_dma_roundtrip_single(edu, data);
        ctx.check(n("dma-err"), 0, r.err);
        const at = r.err ? 0 : firstMismatch(r.data, data);
        ctx.check(n("data-intact"), staleReadExpectsIntact(ctx.machine), r.err === 0 && at < 0);
        ctx.result(n("first-stale-byte"), at);
        ctx.result(n("stale-bytes"), r.err ? 0 : r.data.reduce((c, v, j) => c + (v !== data[j] ? 1 : 0), 0));
      }
    });
  } finally {
    await removeEdu(ctx.kernel);
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
