/**
 * The DMA remapping hardware driver (drivers/iommu/intel/dmar.c + iommu.c, VT-d style), for the
 * unit of hw/iommu/SPEC.md. It reaches the hardware only through its registers (ioremap,
 * readl/writel/readq/writeq) and the tables it writes to RAM.
 *
 * Theory of operation
 * - Bring-up: read VER and CAP, allocate the context table (big enough for every requester id
 *   in the firmware's device scope), program CTX_BASE, request the fault interrupt (level) and
 *   set FECTL.IE, then set GCMD.TE and poll GSTS.TES.
 * - Context entries: qword 1 (DID) is written before qword 0 (present, mode, root) so the
 *   hardware never sees a present entry with a stale DID. On a non-snooping walker each entry
 *   is cleaned to RAM. The hardware caches context entries and tags IOTLB entries by DID;
 *   a DOMAIN invalidation flushes both, so attach and detach invalidate the old and the new
 *   domain, and releasing a device (context cleared) is followed by a global one.
 * - Invalidation: INV_DID / INV_ADDR / INV_PAGES, then INV_CMD with IVT, then poll
 *   INV_STATUS.DONE and clear it (W1C). RANGE for unmaps, DOMAIN for attach, GLOBAL for
 *   flush-all.
 * - Faults: the handler reads FSTS, walks the eight records from FRI (oldest first), reads
 *   and clears each (W1C F), clears PFO, and reports every fault to the domain of the device
 *   (report_iommu_fault); when no handler takes it, prints VT-d's two-line report, rate
 *   limited (a burst, then "callbacks suppressed").
 */

import type { Kernel } from "../core/kernel.ts";
import { KERN_ERR, KERN_INFO } from "../core/printk.ts";
import type { device } from "../include/device.ts";
import { ENODEV, ENOMEM, ENOSYS } from "../include/errno.ts";
import { IRQF_TRIGGER_HIGH, IRQ_HANDLED, IRQ_NONE } from "../irq/flags.ts";
import { request_irq } from "../irq/manage.ts";
import { ioremap, readl, readq, writel, writeq } from "../mm/io.ts";
import { kwrite64, memset } from "../mm/access.ts";
import { PAGE_OFFSET } from "../mm/layout.ts";
import { ndelay } from "../time/delay.ts";
import { RateLimit } from "../dma/swiotlb-ratelimit.ts";
import type { iomem_t, phys_addr_t } from "../include/types.ts";
import { IOMMU_DOMAIN_BLOCKED, IOMMU_DOMAIN_IDENTITY, IOMMU_FAULT_READ, IOMMU_FAULT_WRITE, iommu_device_by_rid, iommu_get_domain_for_dev, report_iommu_fault, type iommu_domain, type iommu_hw_ops } from "./iommu.ts";

// ---- registers (the driver's own copy of SPEC.md sections 1 to 6)
export const DMAR_VER = 0x000;
export const DMAR_CAP = 0x008;
export const DMAR_GCMD = 0x010;
export const DMAR_GSTS = 0x014;
export const DMAR_CTX_BASE = 0x018;
export const DMAR_FSTS = 0x020;
export const DMAR_FECTL = 0x024;
export const DMAR_INV_CMD = 0x040;
export const DMAR_INV_STATUS = 0x044;
export const DMAR_INV_DID = 0x048;
export const DMAR_INV_PAGES = 0x04c;
export const DMAR_INV_ADDR = 0x050;
export const DMAR_FRCD_ADDR = (i: number): number => 0x200 + 16 * i;
export const DMAR_FRCD_INFO = (i: number): number => 0x208 + 16 * i;

export const GCMD_TE = 0x1;
export const GSTS_TES = 0x1;
export const FSTS_PFO = 0x1;
export const FSTS_PPF = 0x2;
export const FECTL_IE = 0x1;
export const FRCD_F = 2 ** 31;
export const FRCD_WNR = 1 << 24;
export const FRCD_PR = 1 << 25;
export const INV_GLOBAL = 1;
export const INV_DOMAIN = 2;
export const INV_RANGE = 3;
export const INV_IVT = 2 ** 31;
export const INV_STATUS_DONE = 0x1;
export const CTX_P = 0x1;
export const CTX_MODE_BLOCKED = 0;
export const CTX_MODE_PASSTHROUGH = 1;
export const CTX_MODE_TRANSLATED = 2;

/** VT-d's legacy fault reason texts (dmar.c's dma_remap_fault_reasons). */
export const DMAR_FAULT_REASONS: Readonly<Record<number, string>> = {
  0x01: "Present bit in root entry is clear",
  0x02: "Present bit in context entry is clear",
  0x03: "Invalid context entry",
  0x04: "Access beyond MGAW",
  0x05: "PTE Write access is not set",
  0x06: "PTE Read access is not set",
  0x07: "Next page table ptr is invalid",
  0x08: "Root table address invalid",
  0x09: "Context table ptr is invalid",
  0x0a: "non-zero reserved fields in RTP",
  0x0b: "non-zero reserved fields in CTP",
  0x0c: "non-zero reserved fields in PTE",
  0x0d: "PCE for translation request specifies blocking",
};

export function dmar_fault_reason(code: number): string {
  return DMAR_FAULT_REASONS[code] ?? "Unknown";
}

const POLL_NS = 100;
const POLL_LIMIT = 10_000;
const CAP_NFR_MASK = 0xff;

const hex = (n: number): string => n.toString(16);

/** One DMA remapping unit (struct intel_iommu). */
export class DmarUnit implements iommu_hw_ops {
  readonly coherentWalk: boolean;
  private readonly reg: iomem_t;
  private ctxPhys = 0;
  private ctxEntries = 0;
  private ctxOrder = 0;
  private nfr = 8;
  /** VT-d's dmar_fault ratelimit state: a burst of reports, then "callbacks suppressed". */
  readonly ratelimit = new RateLimit();
  /** Counters for the run report. */
  faultInterrupts = 0;
  faultsReported = 0;
  overflows = 0;

  constructor(
    private readonly k: Kernel,
    readonly base: number,
    readonly irq: number,
  ) {
    this.coherentWalk = k.platform.coherentDma;
    this.reg = ioremap(base as phys_addr_t, 0x1000);
  }

  /**
   * probe - check the unit, allocate and program the context table for @maxRid
   * Returns: 0, or -errno (no memory, no unit answering at base).
   */
  probe(maxRid: number): number {
    const ver = readl(this.reg + DMAR_VER);
    if (ver === 0xffffffff || ver === 0) {
      this.k.printk.log(KERN_ERR, `DRHD 0x${hex(this.base)}: no remapping hardware (VER 0x${hex(ver)})`, "DMAR: ");
      return -ENODEV;
    }
    const cap = readq(this.reg + DMAR_CAP);
    this.nfr = cap % 256 & CAP_NFR_MASK || 8;
    let size = 0;
    while ((256 << size) <= maxRid && size < 8) size++;
    this.ctxEntries = 256 << size;
    const bytes = this.ctxEntries * 16;
    this.ctxOrder = Math.max(0, Math.ceil(Math.log2(bytes / 4096)));
    const phys = this.k.pages.alloc(this.ctxOrder, 0);
    if (phys < 0) return -ENOMEM;
    this.ctxPhys = phys;
    memset(PAGE_OFFSET + phys, 0, 4096 << this.ctxOrder);
    if (!this.coherentWalk) this.k.platform.cacheClean(this.k.exec.cpu, phys, 4096 << this.ctxOrder);
    writeq(phys + size, this.reg + DMAR_CTX_BASE);
    this.k.printk.log(KERN_INFO, `DRHD base: 0x${hex(this.base).padStart(16, "0")} flags: 0x0`, "DMAR: ");
    this.k.printk.log(KERN_INFO, `dmar0: reg_base_addr ${hex(this.base)} ver ${ver >>> 16}:${ver & 0xffff} cap ${hex(cap)} ecap 0`, "DMAR: ");
    return 0;
  }

  /** request the fault interrupt (level, kernel-owned) and enable it in FECTL. */
  enableFaults(): number {
    const ret = request_irq(this.irq, (_irq, unit) => (unit as DmarUnit).faultIrq(), IRQF_TRIGGER_HIGH, "dmar0", this);
    if (ret) return ret;
    writel(FECTL_IE, this.reg + DMAR_FECTL);
    return 0;
  }

  /** Set GCMD.TE and poll GSTS.TES, as VT-d's iommu_enable_translation. */
  enableTranslation(): boolean {
    writel(GCMD_TE, this.reg + DMAR_GCMD);
    for (let i = 0; i < POLL_LIMIT; i++) {
      if (readl(this.reg + DMAR_GSTS) & GSTS_TES) return true;
      ndelay(POLL_NS);
    }
    this.k.printk.log(KERN_ERR, "DMAR hardware is malfunctioning: translation enable timed out", "DMAR: ");
    return false;
  }

  // ---------------------------------------------------------------- context entries

  private ctxEntry(rid: number): number {
    return this.ctxPhys + 16 * rid;
  }

  private writeCtx(rid: number, q0: number, q1: number): void {
    const e = this.ctxEntry(rid);
    kwrite64(PAGE_OFFSET + e, 0); // not present while the DID changes
    kwrite64(PAGE_OFFSET + e + 8, q1);
    kwrite64(PAGE_OFFSET + e, q0);
    if (!this.coherentWalk) this.k.platform.cacheClean(this.k.exec.cpu, e, 16);
  }

  attach_dev(dev: device, rid: number, domain: iommu_domain, old: iommu_domain | null): void {
    if (rid >= this.ctxEntries) {
      this.k.printk.log(KERN_ERR, `${dev.name}: requester id 0x${hex(rid)} beyond the context table`, "DMAR: ");
      return;
    }
    let q0: number;
    if (domain.type === IOMMU_DOMAIN_BLOCKED) q0 = CTX_P + (CTX_MODE_BLOCKED << 1);
    else if (domain.type === IOMMU_DOMAIN_IDENTITY) q0 = CTX_P + (CTX_MODE_PASSTHROUGH << 1);
    else q0 = domain._pgtbl!.root + CTX_P + (CTX_MODE_TRANSLATED << 1);
    this.writeCtx(rid, q0, domain.did);
    // Stale translations of the old domain must not serve this device, nor the new domain's
    // tags carry anything from a previous user of its DID.
    if (old) this.invalidate(INV_DOMAIN, old.did, 0, 0);
    this.invalidate(INV_DOMAIN, domain.did, 0, 0);
  }

  /** clear the context entry of @rid (device released): its DMA aborts with reason 0x02. */
  clear_dev(rid: number): void {
    if (rid < this.ctxEntries) this.writeCtx(rid, 0, 0);
  }

  // ---------------------------------------------------------------- invalidation

  flush_range(did: number, iova: number, size: number): void {
    const first = Math.floor(iova / 4096);
    const pages = Math.ceil((iova + size) / 4096) - first;
    if (pages > 0xffffffff) this.invalidate(INV_DOMAIN, did, 0, 0);
    else this.invalidate(INV_RANGE, did, first * 4096, pages);
  }

  flush_all(): void {
    this.invalidate(INV_GLOBAL, 0, 0, 0);
  }

  /**
   * Issue one invalidation and wait for INV_STATUS.DONE. With a hardware latency the wait
   * spins in virtual CPU time; the completion is an event the run loop delivers before
   * anything the CPU starts afterwards.
   */
  private invalidate(scope: number, did: number, addr: number, pages: number): void {
    // A previous command may still be in flight (latency): wait for it first.
    this.waitInvIdle();
    if (scope !== INV_GLOBAL) writel(did & 0xffff, this.reg + DMAR_INV_DID);
    if (scope === INV_RANGE) {
      writeq(addr, this.reg + DMAR_INV_ADDR);
      writel(pages, this.reg + DMAR_INV_PAGES);
    }
    writel(INV_IVT + scope, this.reg + DMAR_INV_CMD);
    for (let i = 0; i < POLL_LIMIT; i++) {
      if (readl(this.reg + DMAR_INV_STATUS) & INV_STATUS_DONE) {
        writel(INV_STATUS_DONE, this.reg + DMAR_INV_STATUS);
        return;
      }
      if (!(readl(this.reg + DMAR_INV_CMD) & INV_IVT)) break;
      ndelay(POLL_NS);
    }
  }

  private waitInvIdle(): void {
    for (let i = 0; i < POLL_LIMIT; i++) {
      if (!(readl(this.reg + DMAR_INV_CMD) & INV_IVT)) return;
      ndelay(POLL_NS);
    }
    this.k.printk.log(KERN_ERR, "VT-d hardware invalidation did not complete", "DMAR: ");
  }

  // ---------------------------------------------------------------- faults

  /** The fault interrupt handler (dmar_fault). Context: hardirq. */
  faultIrq(): number {
    const k = this.k;
    const fsts = readl(this.reg + DMAR_FSTS);
    if (!(fsts & (FSTS_PPF | FSTS_PFO))) return IRQ_NONE;
    this.faultInterrupts++;
    const now = k.exec.now();
    const suppressed = (n: number): void => k.printk.log(KERN_ERR, `dmar_fault: ${n} callbacks suppressed`);
    // As dmar_fault: one ratelimit decision per interrupt covers its whole report.
    const ratelimited = !this.ratelimit.ok(now, suppressed);
    if (!ratelimited) k.printk.log(KERN_ERR, `DRHD: handling fault status reg ${hex(fsts)}`, "DMAR: ");
    const fri = (fsts >>> 8) & 0xff;
    for (let n = 0; n < this.nfr; n++) {
      const i = (fri + n) % this.nfr;
      const lo = readl(this.reg + DMAR_FRCD_INFO(i));
      if (!(lo & FRCD_F)) continue;
      const addr = readq(this.reg + DMAR_FRCD_ADDR(i));
      // Clear F (W1C); the other fields are read-only, so writing the value back is safe.
      writel(lo, this.reg + DMAR_FRCD_INFO(i));
      const rid = lo & 0xffff;
      const reason = (lo >>> 16) & 0xff;
      const write = (lo & FRCD_WNR) !== 0;
      this.faultsReported++;
      const dev = iommu_device_by_rid(k, rid);
      const domain = dev ? iommu_get_domain_for_dev(dev) : null;
      const r = dev && domain ? report_iommu_fault(domain, dev, addr, write ? IOMMU_FAULT_WRITE : IOMMU_FAULT_READ) : -ENOSYS;
      if (r !== -ENOSYS || ratelimited) continue;
      k.printk.log(KERN_ERR, `[${write ? "DMA Write" : "DMA Read"}] Request device [${this.sourceName(rid, dev)}] fault addr 0x${hex(addr)} [fault reason 0x${reason.toString(16).padStart(2, "0")}] ${dmar_fault_reason(reason)}`, "DMAR: ");
    }
    if (fsts & FSTS_PFO) {
      this.overflows++;
      writel(FSTS_PFO, this.reg + DMAR_FSTS);
      if (!ratelimited) k.printk.log(KERN_ERR, "DRHD: primary fault overflow: fault records were lost", "DMAR: ");
    }
    return IRQ_HANDLED;
  }

  private sourceName(rid: number, dev: device | null): string {
    if (dev?.bus === "platform") return dev.name;
    const h2 = (n: number): string => n.toString(16).padStart(2, "0");
    return `${h2(rid >> 8)}:${h2((rid >> 3) & 0x1f)}.${rid & 7}`;
  }
}
