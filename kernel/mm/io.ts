/**
 * MMIO: ioremap and the register accessors (readl/writel and friends), plus barriers.
 *
 * `writel(value, addr)` keeps Linux's argument order. The plain accessors are ordered against
 * normal memory (a writel drains write-combining buffers first, so descriptors written before
 * a doorbell are visible to the device); the _relaxed ones only against the same device, which
 * here means they skip the drain.
 */

import { current_kernel } from "../core/current.ts";
import { BusError, type AccessSize } from "../platform/platform.ts";
import { KernelOops } from "../core/oops.ts";
import { PAGE_SIZE, type iomem_t, type phys_addr_t } from "../include/types.ts";
import { REGION_IOREMAP, type Translation } from "./layout.ts";
import { TRACE_PID_CPU } from "../platform/platform.ts";

const tr: Translation = { phys: 0, type: 0, mmio: false };

/** ioremap - map `size` bytes of MMIO at `phys`; returns a cookie for readl/writel, or 0. */
export function ioremap(phys: phys_addr_t, size: number): iomem_t {
  if (size <= 0) return 0;
  const k = current_kernel();
  const first = Math.floor(phys / PAGE_SIZE);
  const last = Math.floor((phys + size - 1) / PAGE_SIZE);
  const pfns: number[] = [];
  for (let p = first; p <= last; p++) pfns.push(p);
  const va = k.aspace.mapPages(REGION_IOREMAP, pfns);
  k.state("ioremap", () => new Map<number, number>()).set(va, pfns.length);
  return va + (phys % PAGE_SIZE);
}

/** iounmap - undo ioremap. */
export function iounmap(addr: iomem_t): void {
  if (!addr) return;
  const k = current_kernel();
  const base = addr - (addr % PAGE_SIZE);
  const maps = k.state("ioremap", () => new Map<number, number>());
  const pages = maps.get(base);
  if (pages === undefined) {
    k.warn(`iounmap: bad address 0x${addr.toString(16)}`);
    return;
  }
  maps.delete(base);
  k.aspace.unmapPages(base, pages);
}

function resolveIo(addr: iomem_t, isWrite: boolean): number {
  current_kernel().aspace.translate(addr, tr, isWrite);
  if (!tr.mmio) throw new KernelOops(`BUG: MMIO accessor used on non-MMIO address 0x${addr.toString(16)}`, addr);
  return tr.phys;
}

function ioRead(addr: iomem_t, size: AccessSize, relaxed: boolean): number {
  const k = current_kernel();
  const phys = resolveIo(addr, false);
  try {
    if (!relaxed) k.platform.barrier(k.exec.cpu);
    const v = k.platform.mmioRead(k.exec.cpu, phys, size);
    traceIo(k, "mmio_read", phys, v, size);
    return v;
  } catch (e) {
    if (e instanceof BusError) throw new KernelOops(`Unhandled bus error: MMIO read at 0x${addr.toString(16)} (physical 0x${phys.toString(16)})`, addr);
    throw e;
  }
}

function ioWrite(value: number, addr: iomem_t, size: AccessSize, relaxed: boolean): void {
  const k = current_kernel();
  const phys = resolveIo(addr, true);
  try {
    if (!relaxed) k.platform.barrier(k.exec.cpu);
    k.platform.mmioWrite(k.exec.cpu, phys, value, size);
    traceIo(k, "mmio_write", phys, value, size);
  } catch (e) {
    if (e instanceof BusError) throw new KernelOops(`Unhandled bus error: MMIO write at 0x${addr.toString(16)} (physical 0x${phys.toString(16)})`, addr);
    throw e;
  }
}

function traceIo(k: ReturnType<typeof current_kernel>, name: string, phys: number, v: number, size: number): void {
  const t = k.platform.trace;
  if (!t.enabled) return;
  t.instant(t.track(TRACE_PID_CPU, `CPU ${k.exec.cpu}`), "mmio", name, k.exec.now(), { addr: `0x${phys.toString(16)}`, value: `0x${v.toString(16)}`, size });
}

export const readb = (a: iomem_t): number => ioRead(a, 1, false);
export const readw = (a: iomem_t): number => ioRead(a, 2, false);
export const readl = (a: iomem_t): number => ioRead(a, 4, false);
export const readq = (a: iomem_t): number => ioRead(a, 8, false);
export const readb_relaxed = (a: iomem_t): number => ioRead(a, 1, true);
export const readw_relaxed = (a: iomem_t): number => ioRead(a, 2, true);
export const readl_relaxed = (a: iomem_t): number => ioRead(a, 4, true);
export const readq_relaxed = (a: iomem_t): number => ioRead(a, 8, true);
export const writeb = (v: number, a: iomem_t): void => ioWrite(v, a, 1, false);
export const writew = (v: number, a: iomem_t): void => ioWrite(v, a, 2, false);
export const writel = (v: number, a: iomem_t): void => ioWrite(v, a, 4, false);
export const writeq = (v: number, a: iomem_t): void => ioWrite(v, a, 8, false);
export const writeb_relaxed = (v: number, a: iomem_t): void => ioWrite(v, a, 1, true);
export const writew_relaxed = (v: number, a: iomem_t): void => ioWrite(v, a, 2, true);
export const writel_relaxed = (v: number, a: iomem_t): void => ioWrite(v, a, 4, true);
export const writeq_relaxed = (v: number, a: iomem_t): void => ioWrite(v, a, 8, true);

/** Barriers: all drain this CPU's write-combining buffer; loads need nothing more here. */
function barrier(): void {
  const k = current_kernel();
  k.platform.barrier(k.exec.cpu);
}
export const wmb = barrier;
export const rmb = barrier;
export const mb = barrier;
export const dma_wmb = barrier;
export const dma_rmb = barrier;
export const dma_mb = barrier;
