/**
 * iommu-lazy-flush-window: with lazy invalidation a device can still write through an unmapped
 * IOVA until the flush queue drains, corrupting a page the kernel already reused; strict mode
 * stops it (issue 4; reference §9.4, §13 bug 8).
 *
 * The iommu_demo driver maps a 4 KiB kmalloc buffer DMA_BIDIRECTIONAL for a rogue function and
 * the device uses it (the IOTLB now caches the translation). The driver unmaps and frees the
 * buffer; the kernel at once reuses the slot for its own data (a kmalloc object of the same
 * size: the slab hands back the slot just freed). 1 ms after the unmap the device, still
 * running, writes 64 bytes through the old IOVA. The scenario then lets virtual time run until
 * the IOMMU's next invalidation and has the device write once more.
 *
 * - Lazy (x86-iommu's default: a DMA_FQ domain): dma_unmap_single() cleared the PTE and queued
 *   the IOVA; the IOTLB entry lives until the flush queue drains (256 entries or 10 ms). The
 *   first write lands in the kernel's object (the stale-translation checker reports
 *   `stale-iotlb-access`, the sanitizer `device-access-unmapped`); the window is reported; after
 *   the flush the same write faults (`iommu-fault`) and changes nothing.
 * - Strict (arm64-iommu, or `--iommu strict`): dma_unmap_single() invalidated before it
 *   returned: both writes fault, nothing is corrupted, the window is 0.
 * - No IOMMU, or policy off / passthrough: the bus address is the physical one and there is no
 *   window to close: both writes land (`device-access-unmapped`).
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { FindingKind } from "../kernel/core/findings.ts";
import { GFP_KERNEL, kfree, kmalloc, virt_to_phys } from "../kernel/include/slab.ts";
import { copy_from_user, copy_to_user } from "../kernel/include/string.ts";
import { DMA_BIDIRECTIONAL } from "../kernel/include/dma-mapping.ts";
import type { dma_addr_t, vaddr_t } from "../kernel/include/types.ts";
import { asDevice, bindDriver, inProcessContext, inThread, unbindDriver } from "../sim/driver-harness.ts";
import { iommu_demo_devices, iommu_demo_driver, iommu_demo_map, iommu_demo_unmap, type iommu_demo_device } from "../drivers/misc/iommu_demo/iommu_demo.ts";
import { demoFirmware, hexBytes, iommuPattern, isolates, isolationWords, sameBytes, withRogues } from "./iommu-common.ts";

const LEN = 4096;
const EVIL = 64;
/** When the device strikes, after the unmap: well inside the 10 ms flush-queue timeout. */
const STRIKE_NS = 1_000_000;

type Mode = "lazy" | "strict" | "none";

function modeOf(m: MachineDesc): Mode {
  if (!isolates(m)) return "none";
  return m.iommu!.policy === "lazy" ? "lazy" : "strict";
}

function expectedKinds(mode: Mode): FindingKind[] {
  if (mode === "lazy") return ["device-access-unmapped", "iommu-fault", "stale-iotlb-access"];
  if (mode === "strict") return ["iommu-fault"];
  return ["device-access-unmapped"];
}

const dma_addr = (a: number): dma_addr_t => a as dma_addr_t;

function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

async function exercise(ctx: ScenarioContext, id: iommu_demo_device, mode: Mode): Promise<void> {
  const k = ctx.kernel;
  const fw = demoFirmware(ctx, id);
  const inv = (): number => ctx.board.iommu?.stats.invalidations ?? 0;
  let buf: vaddr_t = 0;
  let dma: number | null = null;
  await inProcessContext(k, "iommu-demo", async () => {
    buf = kmalloc(LEN, GFP_KERNEL);
    if (buf) dma = iommu_demo_map(id, buf, LEN, DMA_BIDIRECTIONAL);
  }, iommu_demo_driver.name);
  ctx.check("map", true, dma !== null);
  if (dma === null) {
    await inProcessContext(k, "iommu-demo", async () => kfree(buf), iommu_demo_driver.name);
    return;
  }
  const iova: number = dma;
  const phys = virt_to_phys(buf);
  // The device uses its buffer: the IOTLB caches IOVA -> phys, writable.
  const own = iommuPattern(EVIL, ctx.seed, 1);
  ctx.check("device used its buffer", true, await asDevice(k, 1000, () => fw.firmwareWrite(iova, own) && sameBytes(fw.firmwareRead(iova, EVIL), own)));

  // The driver is done: unmap, free. The kernel reuses the slot at once. (inThread: virtual
  // time must not run on to the flush-queue timer before the device strikes.)
  let unmapNs = 0;
  let invAfterUnmap = 0;
  await inThread(k, "iommu-demo", () => {
    iommu_demo_unmap(id, dma_addr(iova), LEN, DMA_BIDIRECTIONAL);
    unmapNs = k.exec.now();
    kfree(buf);
  }, iommu_demo_driver.name);
  invAfterUnmap = inv();
  const kernelData = iommuPattern(LEN, ctx.seed, 2);
  let obj: vaddr_t = 0;
  await inThread(k, "kernel", () => {
    obj = kmalloc(LEN, GFP_KERNEL);
    if (!obj) return;
    copy_from_user(obj, kernelData, LEN);
    k.platform.cacheFlush(k.exec.cpu, virt_to_phys(obj), LEN); // "time passes": it is in RAM
  });
  ctx.check("kernel reused the page", true, obj !== 0 && virt_to_phys(obj) === phys);
  if (!obj) return;
  const snapshot = async (): Promise<Uint8Array> => {
    const out = new Uint8Array(LEN);
    await inThread(k, "kernel", () => {
      k.platform.cacheFlush(k.exec.cpu, virt_to_phys(obj), LEN); // see what the device wrote
      copy_to_user(out, obj, LEN);
    });
    return out;
  };

  // Inside the window: 1 ms after the unmap.
  const evil = iommuPattern(EVIL, ctx.seed, 3);
  let strikeNs = 0;
  const early = await asDevice(k, Math.max(1000, unmapNs + STRIKE_NS - Math.max(k.platform.now(), ...k.exec.busyUntil)), () => {
    strikeNs = k.platform.now();
    return fw.firmwareWrite(iova, evil);
  });
  const afterEarly = await snapshot();
  const corrupted = differing(afterEarly, kernelData);
  ctx.check("write 1 ms after unmap went through", mode !== "strict", early);
  ctx.check("kernel object corrupted", mode !== "strict", corrupted > 0);
  ctx.result("write 1: time after unmap (ns)", strikeNs - unmapNs);
  ctx.result("corrupted", corrupted > 0 ? `${corrupted} byte(s) at offset 0 of the kernel's kmalloc(${LEN}) object at phys 0x${phys.toString(16)}: ${hexBytes(afterEarly.subarray(0, 16))}...` : "nothing");

  // Let the flush queue drain: run until the IOMMU's next invalidation (strict: already done).
  let windowNs = 0;
  if (mode === "lazy") {
    k.enter();
    await k.run({ until: () => inv() > invAfterUnmap, untilNs: unmapNs + 1e9 });
    windowNs = k.platform.now() - unmapNs;
    ctx.check("flush queue drained within 10 ms of the unmap", true, inv() > invAfterUnmap && windowNs <= 10_000_000);
  }
  ctx.result("window (ns)", windowNs);
  ctx.result("window (ms)", Math.round(windowNs / 1e4) / 100);
  const late = await asDevice(k, 1000, () => fw.firmwareWrite(iova + EVIL, evil));
  const afterLate = await snapshot();
  ctx.check("write after the flush went through", mode === "none", late);
  ctx.check("write after the flush changed the object", mode === "none", differing(afterLate, afterEarly) > 0);
  ctx.result("write 2: time after unmap (ns)", k.platform.now() - unmapNs);
  await inProcessContext(k, "kernel", async () => kfree(obj));
}

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  const mode = modeOf(ctx.machine);
  const want = expectedKinds(mode);
  ctx.expectFindings(...want);
  try {
    const bound = await bindDriver(k, iommu_demo_driver);
    ctx.check("probe", 1, bound);
    const id = iommu_demo_devices[0];
    if (bound === 1 && id) await exercise(ctx, id, mode);
  } finally {
    await unbindDriver(k, iommu_demo_driver);
  }
  const got = [...new Set(k.findings.list.map((f) => f.kind))].sort();
  ctx.check("finding-kinds", want.join(","), got.join(","));
  const stale = k.findings.ofKind("stale-iotlb-access");
  if (mode === "lazy") {
    ctx.check("stale-iotlb-access findings", 1, stale.length);
    ctx.check("finding names the flush queue and the fix", true, stale[0]?.fix.startsWith("Lazy invalidation leaves unmapped IOVAs reachable") ?? false);
    ctx.result("stale finding", stale[0]?.message ?? "");
  }
}

function claim(m: MachineDesc): string {
  const mode = modeOf(m);
  const head = `${isolationWords(m)}: a device writes through the IOVA of a buffer its driver unmapped and freed, 1 ms later and again after the flush queue's 10 ms`;
  if (mode === "lazy") return `${head}; the first write corrupts the kernel object that reused the page (stale-iotlb-access), the second faults once the queue drained (iommu-fault)`;
  if (mode === "strict") return `${head}; strict invalidation closed the window at dma_unmap_single(): both writes fault (iommu-fault), nothing is corrupted`;
  return `${head}; the bus address is the physical page and there is no window to close: both writes land in the reused page (device-access-unmapped)`;
}

export const iommuLazyFlushWindowScenario: Scenario = {
  name: "iommu-lazy-flush-window",
  summary: "lazy IOTLB invalidation: a device writes through an unmapped IOVA into a reused page until the flush queue drains; strict stops it",
  defaultMachine: "x86-iommu",
  machineFor: (m) => withRogues(m, 1),
  claim,
  run,
};
