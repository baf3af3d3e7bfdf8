/**
 * What the coherence-* scenarios share: bind cohdemo to the edu, run one buggy operation in
 * process context, check the data against what the machine's coherence predicts, and check
 * that the sanitizer named exactly the expected finding kinds.
 *
 * On a non-coherent machine the bug corrupts data and the sanitizer reports the causes (who
 * touched memory it did not own) and the effects (stale or lost bytes). On a coherent machine
 * the same driver moves the data intact and only the causes are reported: the bug is latent.
 */

import type { ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { FindingKind } from "../kernel/core/findings.ts";
import { cohdemo_devices, cohdemo_driver, type cohdemo_device } from "../drivers/misc/cohdemo/cohdemo_main.ts";
import { bindDriver, inProcessContext, unbindDriver } from "../sim/driver-harness.ts";

/** The findings a coherence scenario expects: causes everywhere, effects only where DMA does not snoop. */
export interface CoherenceExpectation {
  readonly causes: readonly FindingKind[];
  readonly effects: readonly FindingKind[];
}

/** Sorted, deduplicated kinds the scenario expects on this machine. */
export function expectedKinds(m: MachineDesc, x: CoherenceExpectation): FindingKind[] {
  return [...new Set([...x.causes, ...(m.dma.coherent ? [] : x.effects)])].sort();
}

/** Only a machine whose DMA snoops the CPU caches keeps the data intact despite the bug. */
export function expectsIntact(m: MachineDesc): boolean {
  return m.dma.coherent;
}

/** A payload different at every byte and for every seed (and every `salt`). */
export function cohPattern(len: number, seed: number, salt = 0): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 2654435761 + 977 * salt + 12345) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Bytes that differ (a length difference counts as the missing bytes). */
export function differingBytes(a: Uint8Array, b: Uint8Array): number {
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) n++;
  return n;
}

/**
 * Bind cohdemo, run `op` on the first device in a kernel thread, unbind, and check the finding
 * kinds: the scenario passes only if they are exactly the expected ones.
 */
export async function runCoherence(ctx: ScenarioContext, x: CoherenceExpectation, op: (cd: cohdemo_device) => Promise<void>): Promise<void> {
  const k = ctx.kernel;
  const want = expectedKinds(ctx.machine, x);
  ctx.expectFindings(...want);
  try {
    const bound = await bindDriver(k, cohdemo_driver);
    ctx.check("probe", 1, bound);
    const cd = cohdemo_devices[0];
    if (!cd) return;
    await inProcessContext(k, "cohdemo-test", () => op(cd), cohdemo_driver.name);
  } finally {
    await unbindDriver(k, cohdemo_driver);
  }
  const got = [...new Set(k.findings.list.map((f) => f.kind))].sort();
  ctx.check("finding-kinds", want.join(","), got.join(","));
  ctx.result("findings", k.findings.count);
}

/** The claim's second half, per machine. */
export function coherenceClaim(m: MachineDesc, onNonCoherent: string, onCoherent: string): string {
  return m.dma.coherent ? onCoherent : onNonCoherent;
}
