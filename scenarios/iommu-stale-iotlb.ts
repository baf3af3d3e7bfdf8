/**
 * iommu-stale-iotlb: a driver that unmaps without invalidating lets its device use the stale
 * translation (issue 4; reference §9.2, §9.4, §13 bug 8).
 *
 * The iommu_demo driver uses the IOMMU API directly, as VFIO or a GPU driver does: it allocates
 * an UNMANAGED paging domain, attaches its device (a rogue function, whose firmware stands in
 * for a device still running after the driver thinks it stopped) and maps one page of its own
 * at IOVA 0x100000. The device uses the page (a write and a read: the IOTLB now caches the
 * translation). Then:
 *
 * 1. Bug: the driver unmaps with iommu_unmap_fast() and never calls iommu_iotlb_sync(), then
 *    frees the page. The kernel reuses the page at once for its own data. The device reads
 *    through the old IOVA and gets the kernel's data; it writes and corrupts it. The page table
 *    says "unmapped" the whole time: the IOTLB entry nobody invalidated still translates. The
 *    stale-translation checker (kernel/iommu/stale-check.ts) reports `stale-iotlb-access`,
 *    naming the missing iommu_iotlb_sync().
 * 2. Correct: the same steps on a second page at IOVA 0x200000 with iommu_unmap(), which
 *    invalidates before it returns. The device's read and write both fault (`iommu-fault`,
 *    DMAR lines in dmesg), the reused page is untouched.
 *
 * UNMANAGED domains are the driver's own: the machine's policy (lazy, strict, even passthrough,
 * which only makes the DMA API's default domains identity: VFIO works under iommu=pt) changes
 * nothing here, so x86-iommu and arm64-iommu show the same. Without an IOMMU the kernel drives
 * (none, or policy off) the driver cannot get a paging domain (-ENODEV) and the scenario
 * claims exactly that.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import { GFP_KERNEL, __get_free_pages, free_pages, virt_to_phys } from "../kernel/include/slab.ts";
import { copy_from_user, copy_to_user } from "../kernel/include/string.ts";
import { ENODEV } from "../kernel/include/errno.ts";
import type { vaddr_t } from "../kernel/include/types.ts";
import { asDevice, bindDriver, inProcessContext, unbindDriver } from "../sim/driver-harness.ts";
import {
  iommu_demo_devices, iommu_demo_domain_exit, iommu_demo_domain_init, iommu_demo_domain_map, iommu_demo_domain_unmap,
  iommu_demo_domain_unmap_nosync, iommu_demo_driver, type iommu_demo_device,
} from "../drivers/misc/iommu_demo/iommu_demo.ts";
import { demoFirmware, hexBytes, iommuPattern, isolationWords, sameBytes, withRogues } from "./iommu-common.ts";

const PAGE = 4096;
const IOVA_BUG = 0x100000;
const IOVA_OK = 0x200000;
/** Bytes the device moves in each access. */
const LEN = 64;

/** Write a range's cache lines back and drop them: "time passes" before the device looks (matters only without snooping). */
function settle(k: Kernel, va: vaddr_t, len: number): void {
  k.platform.cacheFlush(k.exec.cpu, virt_to_phys(va), len);
}

interface PhaseResult {
  reused: boolean;
  read: Uint8Array | null;
  wrote: boolean;
  kernelData: Uint8Array;
  after: Uint8Array;
  phys: number;
}

/**
 * One life of a page: map at @iova, the device uses it, the driver unmaps (@sync: correctly,
 * or with the forgotten sync) and frees it, the kernel reuses it, the device reads and writes
 * through the old IOVA.
 */
async function phase(ctx: ScenarioContext, id: iommu_demo_device, iova: number, sync: boolean, salt: number): Promise<PhaseResult | null> {
  const k = ctx.kernel;
  const fw = demoFirmware(ctx, id);
  let page: vaddr_t = 0;
  let ok = false;
  await inProcessContext(k, "iommu-demo", async () => {
    page = __get_free_pages(GFP_KERNEL, 0);
    ok = page !== 0 && iommu_demo_domain_map(id, iova, page, PAGE) === 0;
  }, iommu_demo_driver.name);
  ctx.check(`${sync ? "strict" : "nosync"}: map`, true, ok);
  if (!ok) return null;
  const phys = virt_to_phys(page);
  // The device uses its page: the IOTLB caches IOVA -> phys.
  const own = iommuPattern(LEN, ctx.seed, salt);
  const used = await asDevice(k, 1000, () => fw.firmwareWrite(iova, own) && sameBytes(fw.firmwareRead(iova, LEN), own));
  ctx.check(`${sync ? "strict" : "nosync"}: device used its page`, true, used);

  let reusedVa: vaddr_t = 0;
  const kernelData = iommuPattern(PAGE, ctx.seed, salt + 1);
  await inProcessContext(k, "iommu-demo", async () => {
    const n = sync ? iommu_demo_domain_unmap(id, iova, PAGE) : iommu_demo_domain_unmap_nosync(id, iova, PAGE);
    ctx.check(`${sync ? "strict" : "nosync"}: bytes unmapped`, PAGE, n);
    free_pages(page, 0);
  }, iommu_demo_driver.name);
  // The kernel takes the page for its own data (first fit: the page just freed).
  await inProcessContext(k, "kernel", async () => {
    reusedVa = __get_free_pages(GFP_KERNEL, 0);
    copy_from_user(reusedVa, kernelData, PAGE);
    settle(k, reusedVa, PAGE);
  });
  const reused = reusedVa !== 0 && virt_to_phys(reusedVa) === phys;
  // The device, unaware, keeps going at the old IOVA: reads, then writes.
  const read = await asDevice(k, 1000, () => fw.firmwareRead(iova, LEN));
  const wrote = await asDevice(k, 1000, () => fw.firmwareWrite(iova + LEN, iommuPattern(LEN, ctx.seed, salt + 2)));
  const after = new Uint8Array(PAGE);
  await inProcessContext(k, "kernel", async () => {
    settle(k, reusedVa, PAGE); // drop stale lines: the CPU must see what the device wrote
    copy_to_user(after, reusedVa, PAGE);
    free_pages(reusedVa, 0);
  });
  return { reused, read, wrote, kernelData, after, phys };
}

function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Can a driver get a paging domain here? Any IOMMU the kernel drives (policy not off). */
function pagingDomains(m: MachineDesc): boolean {
  return m.iommu !== null && m.iommu.policy !== "off";
}

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  const iso = pagingDomains(ctx.machine);
  if (iso) ctx.expectFindings("stale-iotlb-access", "iommu-fault");
  try {
    const bound = await bindDriver(k, iommu_demo_driver);
    ctx.check("probe", 1, bound);
    const id = iommu_demo_devices[0];
    if (bound !== 1 || !id) return;
    let err = 0;
    await inProcessContext(k, "iommu-demo", async () => {
      err = iommu_demo_domain_init(id);
    }, iommu_demo_driver.name);
    ctx.check("domain", iso ? 0 : -ENODEV, err);
    if (err) return;
    try {
      const bug = await phase(ctx, id, IOVA_BUG, false, 1);
      const good = await phase(ctx, id, IOVA_OK, true, 11);
      if (bug) reportBug(ctx, bug);
      if (good) reportStrict(ctx, good);
    } finally {
      await inProcessContext(k, "iommu-demo", async () => iommu_demo_domain_exit(id), iommu_demo_driver.name);
    }
  } finally {
    await unbindDriver(k, iommu_demo_driver);
  }
  if (iso) reportFindings(ctx);
}

function reportBug(ctx: ScenarioContext, r: PhaseResult): void {
  ctx.check("nosync: page reused by the kernel", true, r.reused);
  ctx.check("nosync: device read the kernel's data through the stale IOTLB entry", true, sameBytes(r.read, r.kernelData.subarray(0, LEN)));
  ctx.check("nosync: device write went through", true, r.wrote);
  ctx.check("nosync: kernel data corrupted", true, differing(r.after, r.kernelData) > 0);
  ctx.result("nosync: phys page", `0x${r.phys.toString(16)}`);
  ctx.result("nosync: leaked bytes", r.read ? `${r.read.length}: ${hexBytes(r.read.subarray(0, 16))}...` : "(none)");
  ctx.result("nosync: corrupted bytes", differing(r.after, r.kernelData));
}

function reportStrict(ctx: ScenarioContext, r: PhaseResult): void {
  ctx.check("strict: page reused by the kernel", true, r.reused);
  ctx.check("strict: device read faulted", null, r.read === null ? null : "data");
  ctx.check("strict: device write faulted", false, r.wrote);
  ctx.check("strict: kernel data intact", 0, differing(r.after, r.kernelData));
}

function reportFindings(ctx: ScenarioContext): void {
  const k = ctx.kernel;
  const stale = k.findings.ofKind("stale-iotlb-access");
  ctx.check("stale-iotlb-access findings", 1, stale.length);
  const f = stale[0];
  if (f) {
    ctx.check("finding names the IOVA", `0x${IOVA_BUG.toString(16)}`, String(f.details?.iova_page ?? ""));
    ctx.check("finding names the missing invalidation", true, f.fix.startsWith("Call iommu_iotlb_sync()"));
    ctx.result("stale finding", f.message);
    ctx.result("stale finding fix", f.fix);
    ctx.result("stale page now", String(f.details?.page_now ?? ""));
  }
  const faults = k.findings.ofKind("iommu-fault");
  ctx.check("strict: faults at the unmapped IOVA", true, faults.length >= 2 && faults.every((x) => Number(x.details?.iova) >= IOVA_OK && Number(x.details?.iova) < IOVA_OK + PAGE));
  ctx.result("iommu-fault findings", faults.length);
  const kinds = [...new Set(k.findings.list.map((x) => x.kind))].sort().join(",");
  ctx.result("finding kinds", kinds);
}

function claim(m: MachineDesc): string {
  if (!pagingDomains(m)) {
    return `${isolationWords(m)}: iommu_paging_domain_alloc() fails with -ENODEV, there is no IOTLB to forget; nothing else is claimed`;
  }
  return (
    `IOMMU up (policy ${m.iommu!.policy}), UNMANAGED domain (the policy does not apply to it): after iommu_unmap_fast() without iommu_iotlb_sync() ` +
    "the device still reads and corrupts the page the kernel reused (stale-iotlb-access naming iommu_iotlb_sync()); " +
    "with iommu_unmap() the same read and write fault (iommu-fault) and the page is untouched"
  );
}

export const iommuStaleIotlbScenario: Scenario = {
  name: "iommu-stale-iotlb",
  summary: "IOMMU API user unmaps with iommu_unmap_fast() and never syncs: the device keeps a stale translation to a reused page",
  defaultMachine: "x86-iommu",
  machineFor: (m) => withRogues(m, 1),
  claim,
  run,
};
