/**
 * iommu-rogue-device: a device under an attacker's control reads a secret planted in kernel
 * memory and overwrites a kernel structure (issue 4; reference §9.5, §13 bug 12).
 *
 * The rogue driver binds normally and a legitimate transfer goes through. The kernel then plants
 * a 64-byte key in a kmalloc'd buffer and keeps a kmalloc'd structure whose second word is a
 * function pointer (to an ops table). "Time passes": both reach RAM (their cache lines are
 * written back, as they would long before an attacker strikes; this matters only where DMA
 * does not snoop). The compromised firmware (hw/dev/rogue/SPEC.md section 8) then reads the
 * key at its physical address and overwrites the function pointer with the address of the
 * device's own receive buffer, where it could have planted code.
 *
 * No IOMMU, or its policy off / passthrough: both accesses go through. The report shows the
 * leaked bytes next to the secret and the structure before and after; the coherence sanitizer
 * names the device's access to memory no mapping covers (`device-access-unmapped`).
 * IOMMU translating (strict or lazy): both accesses fault. The IOMMU logs them (dmesg DMAR
 * lines; `iommu-fault` findings naming the device, the address and the access), the device
 * reports ERROR to its driver, nothing leaks and the structure is unchanged.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import { GFP_KERNEL, kfree, kmalloc, kzalloc, virt_to_phys } from "../kernel/include/slab.ts";
import { copy_from_user, copy_to_user, kwrite64 } from "../kernel/include/string.ts";
import type { vaddr_t } from "../kernel/include/types.ts";
import type { rogue_device } from "../drivers/misc/rogue/rogue_main.ts";
import { rogue_receive, rogue_send } from "../drivers/misc/rogue/rogue_ops.ts";
import { inProcessContext } from "../sim/driver-harness.ts";
import {
  dmarLines, faultsOf, firmwareOf, hexBytes, iommuPattern, isolates, isolationWords, sameBytes, withRogueDriver, withRogues,
} from "./iommu-common.ts";

const SECRET_LEN = 64;
const STRUCT_LEN = 64;
/** The structure: a magic word, then the function pointer the attacker wants. */
const STRUCT_MAGIC = 0x5ec0de5;
const FN_PTR_OFF = 8;

interface Victims {
  secret: vaddr_t;
  ops: vaddr_t;
  obj: vaddr_t;
  secretBytes: Uint8Array;
  before: Uint8Array;
}

/** Write a structure's cache lines back to RAM and drop them: "time passes" (see the header). */
function settle(k: Kernel, addr: vaddr_t, len: number): void {
  k.platform.cacheFlush(k.exec.cpu, virt_to_phys(addr), len);
}

function plant(k: Kernel, seed: number): Victims {
  const secretBytes = iommuPattern(SECRET_LEN, seed, 1);
  const secret = kmalloc(SECRET_LEN, GFP_KERNEL);
  const ops = kzalloc(64, GFP_KERNEL);
  const obj = kzalloc(STRUCT_LEN, GFP_KERNEL);
  copy_from_user(secret, secretBytes, SECRET_LEN);
  kwrite64(obj, STRUCT_MAGIC);
  kwrite64(obj + FN_PTR_OFF, ops);
  const before = new Uint8Array(16);
  copy_to_user(before, obj, 16);
  settle(k, secret, SECRET_LEN);
  settle(k, obj, STRUCT_LEN);
  return { secret, ops, obj, secretBytes, before };
}

function le64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

/** A legitimate round trip through the driver: send a pattern, receive it back. */
async function legit(ctx: ScenarioContext, rg: rogue_device): Promise<void> {
  const data = iommuPattern(256, ctx.seed, 2);
  ctx.check("legit-send", 0, await rogue_send(rg, data));
  const rx = await rogue_receive(rg, data.length);
  ctx.check("legit-receive", 0, rx.err);
  ctx.check("legit-data-intact", true, sameBytes(rx.data, data));
}

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  const iso = isolates(ctx.machine);
  ctx.expectFindings(iso ? "iommu-fault" : "device-access-unmapped");
  await withRogueDriver(ctx, 1, async ([rg]) => {
    let v: Victims | null = null;
    await inProcessContext(k, "rogue-test", async () => {
      await legit(ctx, rg!);
      v = plant(k, ctx.seed);
    });
    const victims = v as Victims | null;
    if (!victims) return;
    const fw = firmwareOf(ctx, rg!);
    const secretPhys = virt_to_phys(victims.secret);
    const fnPtrPhys = virt_to_phys(victims.obj) + FN_PTR_OFF;
    const aborts0 = fw.stats.aborts;
    const errors0 = rg!.irqs_error;
    // The attack: no driver involved, the firmware aims at physical addresses.
    const leaked = fw.firmwareRead(secretPhys, SECRET_LEN);
    const wrote = fw.firmwareWrite(fnPtrPhys, le64(rg!.rx_buf));
    k.enter();
    await k.run();
    const after = new Uint8Array(16);
    await inProcessContext(k, "rogue-test", async () => {
      copy_to_user(after, victims.obj, 16);
      kfree(victims.obj);
      kfree(victims.ops);
      kfree(victims.secret);
    });
    report(ctx, rg!, { victims, leaked, wrote, after, secretPhys, fnPtrPhys, aborts: fw.stats.aborts - aborts0, irqErrors: rg!.irqs_error - errors0 });
  });
}

interface Outcome {
  victims: Victims;
  leaked: Uint8Array | null;
  wrote: boolean;
  after: Uint8Array;
  secretPhys: number;
  fnPtrPhys: number;
  /** Aborts the device counted, and error interrupts its driver took, during the attack. */
  aborts: number;
  irqErrors: number;
}

function report(ctx: ScenarioContext, rg: rogue_device, o: Outcome): void {
  const k = ctx.kernel;
  const iso = isolates(ctx.machine);
  ctx.result("secret", hexBytes(o.victims.secretBytes));
  ctx.result("leaked", hexBytes(o.leaked));
  ctx.result("struct-before", hexBytes(o.victims.before));
  ctx.result("struct-after", hexBytes(o.after));
  ctx.result("secret-phys", `0x${o.secretPhys.toString(16)}`);
  ctx.result("fn-ptr-phys", `0x${o.fnPtrPhys.toString(16)}`);
  ctx.check("secret-leaked", !iso, sameBytes(o.leaked, o.victims.secretBytes));
  ctx.check("struct-corrupted", !iso, !sameBytes(o.after, o.victims.before));
  ctx.check("firmware-write-accepted", !iso, o.wrote);
  ctx.check("device-reported-error", iso, o.irqErrors > 0 && o.aborts === 2);
  const faults = faultsOf(k, rg.dev.name);
  ctx.result("iommu-faults", faults.length);
  ctx.result("device-errors", o.aborts);
  ctx.result("dmesg-dmar-lines", dmarLines(k).length);
  if (iso) {
    ctx.check("fault-logged: read of the secret", true, faults.some((f) => faultMatches(f, o.secretPhys, false)));
    ctx.check("fault-logged: write of the structure", true, faults.some((f) => faultMatches(f, o.fnPtrPhys, true)));
    ctx.check("dmesg-shows-faults", true, dmarLines(k).some((l) => l.includes(rg.dev.name.slice(5)) || l.includes("fault addr")));
  } else {
    ctx.check("sanitizer-saw-the-attack", true, k.findings.ofKind("device-access-unmapped").some((f) => f.device === rg.dev.name));
  }
}

/** An iommu-fault finding names the address (its page at least) and whether it was a write. */
export function faultMatches(f: { message: string; details?: Record<string, string | number | boolean> }, addr: number, write: boolean): boolean {
  const text = `${f.message} ${JSON.stringify(f.details ?? {})}`.toLowerCase();
  const page = Math.floor(addr / 4096) * 4096;
  const hasAddr = [addr, page].some((a) => text.includes(a.toString(16)));
  const access = write ? /write/.test(text) : /read/.test(text);
  return hasAddr && access;
}

function claim(m: MachineDesc): string {
  return isolates(m)
    ? `${isolationWords(m)}: the firmware's read of the secret and write of the structure both fault, are logged (DMAR lines, iommu-fault findings), the device reports an error, nothing leaks and nothing changes`
    : `${isolationWords(m)}: the firmware reads the kernel's secret and overwrites the structure's function pointer; the report shows the leaked bytes and the structure before and after`;
}

export const iommuRogueDeviceScenario: Scenario = {
  name: "iommu-rogue-device",
  summary: "a compromised device reads a kernel secret and corrupts a kernel structure; an IOMMU stops and logs it",
  defaultMachine: "x86-iommu",
  machineFor: (m) => withRogues(m, 1),
  claim,
  run,
};
