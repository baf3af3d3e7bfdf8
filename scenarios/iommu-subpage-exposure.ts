/**
 * iommu-subpage-exposure: a 256-byte buffer mapped for a device exposes its whole page,
 * including a neighbouring allocation holding a secret; marking the device untrusted (bounce)
 * closes it (issue 4; reference §6.1, §9.1, §9.3).
 *
 * The machine gets two rogue functions side by side: 00:05.0, an ordinary (trusted) device, and
 * 00:06.0, marked untrusted (`pci.devices[i].untrusted: true`, as firmware marks an
 * external-facing Thunderbolt port). Both are bound by iommu_demo. For each, the kernel
 * allocates a 256-byte kmalloc object holding a secret, and the driver allocates its 256-byte
 * buffer from the same slab page, fills it with a message and maps it DMA_TO_DEVICE with
 * dma_map_single. The compromised firmware then reads the whole 4 KiB IOVA page around the
 * address it was given.
 *
 * Why one run with two devices (and not an option, or two boards): the report then shows the
 * two outcomes side by side, from the same kernel, the same allocator state and the same
 * machine, so the only difference a reader sees is the untrusted flag.
 *
 * - IOMMU translating (strict or lazy): the IOMMU maps pages, not bytes (§9.3). The trusted
 *   device's IOVA page is the buffer's physical page: the read returns the secret. The
 *   untrusted device's buffer was bounced through swiotlb into a slot padded to whole pages
 *   with zeros: the same read returns the message and zeros, nothing else.
 * - No IOMMU, or policy off / passthrough: a bus address is a physical address and nothing
 *   bounces for an untrusted device (bouncing untrusted devices is dma-iommu's job): both
 *   devices read the secret.
 * Either way the coherence sanitizer names the device's read of bytes outside its mapping
 * (`device-access-unmapped`): the device read what it was never given.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import { GFP_KERNEL, kfree, kmalloc, virt_to_phys } from "../kernel/include/slab.ts";
import { copy_from_user } from "../kernel/include/string.ts";
import { DMA_TO_DEVICE } from "../kernel/include/dma-mapping.ts";
import type { vaddr_t } from "../kernel/include/types.ts";
import { asDevice, bindDriver, inProcessContext, unbindDriver } from "../sim/driver-harness.ts";
import { iommu_demo_devices, iommu_demo_driver, iommu_demo_map, iommu_demo_unmap, type iommu_demo_device } from "../drivers/misc/iommu_demo/iommu_demo.ts";
import { demoFirmware, hexBytes, iommuPattern, isolates, isolationWords, withRogues } from "./iommu-common.ts";

const PAGE = 4096;
const LEN = 256;

/** The machine plus two rogue functions, the second one untrusted (kept as given if it lists rogues). */
function machineFor(m: MachineDesc): MachineDesc {
  if (m.pci.devices.some((d) => d.model === "rogue")) return m;
  const out = withRogues(m, 2);
  const rogues = out.pci.devices.filter((d) => d.model === "rogue").sort((a, b) => a.slot - b.slot);
  rogues[rogues.length - 1]!.untrusted = true;
  return out;
}

const pageOf = (a: number): number => Math.floor(a / PAGE) * PAGE;

/** An IOMMU the kernel drives (any policy but off): untrusted devices then always translate. */
function iommuUp(m: MachineDesc): boolean {
  return m.iommu !== null && m.iommu.policy !== "off";
}

/**
 * Does this device get its sub-page buffers bounced? Only if untrusted and an IOMMU is up:
 * untrusted devices get a strict translated domain even under passthrough (§9.1), and
 * bouncing them is dma-iommu's job (the direct path does not).
 */
function bounces(m: MachineDesc, untrusted: boolean): boolean {
  return iommuUp(m) && untrusted;
}

interface Exposure {
  readonly leaked: boolean;
  readonly secretOffset: number;
  readonly bufferOffset: number;
  readonly onlyBufferAndZeros: boolean;
  readonly nonZeroOutside: number;
  readonly dma: number;
  /** What the device read where the secret sits in the physical page (first bytes). */
  readonly atSecret: string;
}

/** Allocate a neighbour holding a secret and a buffer in the same page; map, let the firmware read the page. */
async function expose(ctx: ScenarioContext, id: iommu_demo_device, who: string, salt: number): Promise<Exposure | null> {
  const k = ctx.kernel;
  const secretBytes = iommuPattern(LEN, ctx.seed, salt);
  const message = iommuPattern(LEN, ctx.seed, salt + 1);
  let secret: vaddr_t = 0;
  let buf: vaddr_t = 0;
  let dma: number | null = null;
  const rejects: vaddr_t[] = [];
  // The driver's buffer first, then a kernel object in the same page (the slab hands out
  // neighbours; one that lands in the next page is held until we have one in this page).
  await inProcessContext(k, "iommu-demo", async () => {
    buf = kmalloc(LEN, GFP_KERNEL);
    copy_from_user(buf, message, LEN);
  }, iommu_demo_driver.name);
  await inProcessContext(k, "kernel", async () => {
    for (let i = 0; i < 32 && buf; i++) {
      const s = kmalloc(LEN, GFP_KERNEL);
      if (!s) break;
      if (pageOf(virt_to_phys(s)) === pageOf(virt_to_phys(buf))) {
        secret = s;
        break;
      }
      rejects.push(s);
    }
    for (const r of rejects) kfree(r);
    if (secret) {
      copy_from_user(secret, secretBytes, LEN);
      // "Time passes": the secret reaches RAM (matters only where DMA does not snoop).
      k.platform.cacheFlush(k.exec.cpu, virt_to_phys(secret), LEN);
    }
  });
  ctx.check(`${who}: secret in the buffer's page`, true, secret !== 0);
  if (secret) {
    await inProcessContext(k, "iommu-demo", async () => {
      dma = iommu_demo_map(id, buf, LEN, DMA_TO_DEVICE);
    }, iommu_demo_driver.name);
  }
  ctx.check(`${who}: map`, true, dma !== null);
  let out: Exposure | null = null;
  if (dma !== null) {
    const handle = dma;
    const fw = demoFirmware(ctx, id);
    const page = await asDevice(k, 1000, () => fw.firmwareRead(pageOf(handle), PAGE));
    ctx.check(`${who}: firmware read of the IOVA page`, true, page !== null);
    if (page) {
      const so = virt_to_phys(secret) % PAGE;
      const bo = handle % PAGE;
      const leaked = hexBytes(page.subarray(so, so + LEN)) === hexBytes(secretBytes);
      let nonZeroOutside = 0;
      for (let i = 0; i < PAGE; i++) if ((i < bo || i >= bo + LEN) && page[i] !== 0) nonZeroOutside++;
      const bufferSeen = hexBytes(page.subarray(bo, bo + LEN)) === hexBytes(message);
      const atSecret = `${hexBytes(page.subarray(so, so + 16))}... (secret: ${hexBytes(secretBytes.subarray(0, 16))}...)`;
      out = { leaked, secretOffset: so, bufferOffset: bo, onlyBufferAndZeros: bufferSeen && nonZeroOutside === 0, nonZeroOutside, dma: handle, atSecret };
    }
    await inProcessContext(k, "iommu-demo", async () => iommu_demo_unmap(id, handle, LEN, DMA_TO_DEVICE), iommu_demo_driver.name);
  }
  await inProcessContext(k, "iommu-demo", async () => kfree(buf), iommu_demo_driver.name);
  await inProcessContext(k, "kernel", async () => kfree(secret));
  return out;
}

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  ctx.expectFindings("device-access-unmapped");
  const rogues = ctx.machine.pci.devices.filter((d) => d.model === "rogue");
  try {
    const bound = await bindDriver(k, iommu_demo_driver);
    ctx.check("probe", rogues.length, bound);
    for (const [i, id] of [...iommu_demo_devices].entries()) {
      const desc = rogues.find((d) => d.slot === id.pdev.devfn >> 3);
      const untrusted = desc?.untrusted === true;
      const who = `${id.dev.name} (${untrusted ? "untrusted" : "trusted"})`;
      const e = await expose(ctx, id, who, 10 * i + 1);
      if (!e) continue;
      const bounced = bounces(ctx.machine, untrusted);
      ctx.check(`${who}: secret leaked`, !bounced, e.leaked);
      ctx.check(`${who}: page read shows only the buffer and zeros`, bounced, e.onlyBufferAndZeros);
      ctx.result(`${who}: bus address`, `0x${e.dma.toString(16)}`);
      ctx.result(`${who}: buffer offset in page`, e.bufferOffset);
      ctx.result(`${who}: secret offset in page`, e.secretOffset);
      ctx.result(`${who}: secret leaked`, e.leaked);
      ctx.result(`${who}: read at the secret's offset`, e.atSecret);
      ctx.result(`${who}: non-zero bytes outside the buffer`, e.nonZeroOutside);
    }
  } finally {
    await unbindDriver(k, iommu_demo_driver);
  }
  const unmapped = k.findings.ofKind("device-access-unmapped");
  ctx.check("device-access-unmapped names each device's out-of-buffer read", rogues.length, new Set(unmapped.map((f) => f.device)).size);
}

function claim(m: MachineDesc): string {
  const rogues = m.pci.devices.filter((d) => d.model === "rogue");
  const mixed = rogues.length === 0 || (rogues.some((d) => d.untrusted) && rogues.some((d) => !d.untrusted));
  const who = mixed ? "a trusted and an untrusted rogue device each get" : `${rogues.length} rogue device(s) each get`;
  const head = `${isolationWords(m)}: ${who} a 256-byte DMA_TO_DEVICE buffer whose slab page holds a kernel secret, and read the whole IOVA page`;
  if (!iommuUp(m)) return `${head}; bus addresses are physical and nothing bounces, so every device reads the secret (device-access-unmapped)`;
  if (!isolates(m)) {
    return `${head}; the trusted device's bus address is physical and it reads the secret, while the untrusted one still gets a strict translated domain and a zero-padded bounce slot and reads only its buffer and zeros (device-access-unmapped for both reads)`;
  }
  return `${head}; the IOMMU maps whole pages, so the trusted device reads the secret, while the untrusted one's buffer is bounced into a zero-padded swiotlb slot and it reads only its buffer and zeros (device-access-unmapped for both reads)`;
}

export const iommuSubpageExposureScenario: Scenario = {
  name: "iommu-subpage-exposure",
  summary: "a 256-byte mapping exposes its whole page (a neighbour's secret) to the device; untrusted devices are bounced and see only zeros",
  defaultMachine: "x86-iommu",
  machineFor,
  claim,
  run,
};
