/**
 * What the IOMMU isolation scenarios share: machines with rogue devices added, binding the rogue
 * driver, reaching a device's firmware (the attacker's handle, hw/dev/rogue/SPEC.md section 8),
 * and reading back what the IOMMU and the checkers said.
 *
 * Whether a machine isolates devices is a property of the machine, stated up front:
 * an IOMMU whose kernel policy is strict or lazy translates every DMA; no IOMMU, or the policy
 * off or passthrough, lets a device's bus address be a physical address.
 */

import type { ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import { MachineConfigError, parseMachineObject } from "../hw/machine/load.ts";
import type { RogueDevice } from "../hw/dev/rogue/rogue.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import type { Finding } from "../kernel/core/findings.ts";
import { rogue_devices, rogue_driver, type rogue_device } from "../drivers/misc/rogue/rogue_main.ts";
import type { iommu_demo_device } from "../drivers/misc/iommu_demo/iommu_demo.ts";
import { bindDriver, unbindDriver } from "../sim/driver-harness.ts";

/** Where the scenarios plug rogue functions when they are free: 00:05.0, then 00:06.0, ... */
export const ROGUE_FIRST_SLOT = 5;

/** True when the machine's IOMMU translates device DMA (policy strict or lazy). */
export function isolates(m: MachineDesc): boolean {
  return m.iommu !== null && (m.iommu.policy === "strict" || m.iommu.policy === "lazy");
}

/** One phrase for claims: what stands between a device and memory on this machine. */
export function isolationWords(m: MachineDesc): string {
  if (isolates(m)) return `IOMMU translating (${m.iommu!.policy} invalidation)`;
  if (m.iommu) return `IOMMU policy ${m.iommu.policy}: no isolation`;
  return "no IOMMU";
}

/** The first free interrupt lines at or above 16, skipping the IOMMU's. */
function freeIrqs(m: MachineDesc, n: number): number[] {
  const used = new Set([...m.pci.devices.map((d) => d.irq), ...m.platform.map((d) => d.irq), ...(m.iommu ? [m.iommu.irq] : [])]);
  const out: number[] = [];
  for (let i = 16; i < m.interrupts.lines && out.length < n; i++) if (!used.has(i)) out.push(i);
  if (out.length < n) throw new MachineConfigError(`machine "${m.name}"`, [{ path: "interrupts.lines", message: "no free interrupt line for a rogue device" }]);
  return out;
}

/**
 * withRogues - the machine asked for with at least `count` rogue functions: those it lists, plus
 * new ones in the first free slots from ROGUE_FIRST_SLOT, each on its own free interrupt line.
 * The result is validated like a machine file, so a clash is a configuration error (exit 2).
 */
export function withRogues(m: MachineDesc, count: number): MachineDesc {
  const missing = count - m.pci.devices.filter((d) => d.model === "rogue").length;
  if (missing <= 0) return m;
  const irqs = freeIrqs(m, missing);
  const taken = new Set(m.pci.devices.map((d) => d.slot));
  const added: { slot: number; model: string; irq: number; msi: boolean }[] = [];
  for (let slot = ROGUE_FIRST_SLOT; slot < 32 && added.length < missing; slot++) {
    if (!taken.has(slot)) added.push({ slot, model: "rogue", irq: irqs[added.length]!, msi: true });
  }
  return parseMachineObject({ ...structuredClone(m), pci: { ...m.pci, devices: [...m.pci.devices, ...added] } }, `machine "${m.name}" with rogue devices`);
}

/** The model of the rogue function the driver bound as `rg` (its firmware is the attacker). */
export function firmwareOf(ctx: ScenarioContext, rg: rogue_device): RogueDevice {
  const slot = ctx.board.pciDevices.find((p) => p.slot === rg.pdev.devfn >> 3);
  if (!slot) throw new Error(`no rogue function for ${rg.dev.name}`);
  return slot.device as RogueDevice;
}

/**
 * withRogueDriver - bind the rogue driver, run `fn` with the bound devices, then unbind it
 * whatever happens. Records a "probe" check against `want` devices.
 */
export async function withRogueDriver(ctx: ScenarioContext, want: number, fn: (devs: rogue_device[]) => Promise<void>): Promise<void> {
  const k = ctx.kernel;
  try {
    const bound = await bindDriver(k, rogue_driver);
    ctx.check("probe", want, bound);
    if (bound !== want) return;
    await fn([...rogue_devices]);
  } finally {
    await unbindDriver(k, rogue_driver);
  }
}

/** iommu-fault findings naming device `name`. */
export function faultsOf(k: Kernel, name: string): Finding[] {
  return k.findings.ofKind("iommu-fault").filter((f) => f.device === name);
}

/** dmesg lines of the IOMMU's fault reports (VT-d style "DMAR:" lines). */
export function dmarLines(k: Kernel): string[] {
  return k.printk.dmesg().filter((l) => /DMAR|dmar_fault/.test(l));
}

/** "0a1b2c..." for reports. */
export function hexBytes(b: Uint8Array | null): string {
  return b ? [...b].map((v) => v.toString(16).padStart(2, "0")).join("") : "(nothing)";
}

export function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A payload different at every byte and for every seed and salt. */
export function iommuPattern(len: number, seed: number, salt = 0): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 2654435761 + 7919 * salt + 1) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

/** The model behind a bound device: its firmware is the attacker's (or the runaway engine's) handle. */
export function demoFirmware(ctx: ScenarioContext, id: iommu_demo_device): RogueDevice {
  const slot = ctx.board.pciDevices.find((p) => p.slot === id.pdev.devfn >> 3);
  if (!slot) throw new Error(`no PCI function behind ${id.dev.name}`);
  return slot.device as RogueDevice;
}
