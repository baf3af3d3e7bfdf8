/**
 * I/O resources (include/linux/ioport.h, kernel/resource.c): `struct resource`, its flags, and
 * the busy-region registry behind request_mem_region / release_mem_region.
 *
 * A driver claims the MMIO ranges it drives so that two drivers (or one driver twice) cannot
 * program the same registers. The registry is flat (no tree of parents): a request fails when
 * it overlaps any busy range, which is the conflict Linux reports for a device's BARs.
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";

export const IORESOURCE_IO = 0x00000100;
export const IORESOURCE_MEM = 0x00000200;
export const IORESOURCE_REG = 0x00000300;
export const IORESOURCE_IRQ = 0x00000400;
export const IORESOURCE_DMA = 0x00000800;
export const IORESOURCE_BUS = 0x00001000;
export const IORESOURCE_TYPE_BITS = 0x00001f00;
export const IORESOURCE_PREFETCH = 0x00002000;
export const IORESOURCE_MEM_64 = 0x00100000;
export const IORESOURCE_BUSY = 0x80000000;

/** struct resource: an inclusive range [start, end] of one type. */
export interface resource {
  start: number;
  end: number;
  flags: number;
  name: string;
}

/** resource_size - number of addresses in the range. */
export function resource_size(r: resource): number {
  return r.end - r.start + 1;
}

/** resource_type - the IORESOURCE_* type bits of a resource. */
export function resource_type(r: resource): number {
  return r.flags & IORESOURCE_TYPE_BITS;
}

/** DEFINE_RES_MEM - a memory resource of `size` bytes at `start`. */
export function DEFINE_RES_MEM(start: number, size: number, name = ""): resource {
  return { start, end: start + size - 1, flags: IORESOURCE_MEM, name };
}

/** DEFINE_RES_IRQ - an interrupt resource for line `irq`. */
export function DEFINE_RES_IRQ(irq: number, name = ""): resource {
  return { start: irq, end: irq, flags: IORESOURCE_IRQ, name };
}

/** "[mem 0xc0000000-0xc00fffff]" as Linux's %pR prints it. */
export function resource_str(r: resource): string {
  const t = resource_type(r);
  const kind = t === IORESOURCE_MEM ? "mem" : t === IORESOURCE_IRQ ? "irq" : t === IORESOURCE_IO ? "io" : "??";
  if (t === IORESOURCE_IRQ) return `[${kind} ${r.start}]`;
  return `[${kind} 0x${r.start.toString(16)}-0x${r.end.toString(16)}]`;
}

interface BusyRegion {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

function busyRegions(k: Kernel): BusyRegion[] {
  return k.state("resource", () => [] as BusyRegion[]);
}

/**
 * request_mem_region - mark `n` bytes of MMIO at `start` busy for `name`.
 * Context: any.
 * Returns: the busy resource, or null when the range overlaps one already claimed.
 */
export function request_mem_region(start: number, n: number, name: string): resource | null {
  if (n <= 0) return null;
  const busy = busyRegions(current_kernel());
  const end = start + n - 1;
  if (busy.some((r) => r.start <= end && start <= r.end)) return null;
  busy.push({ start, end, name });
  return { start, end, flags: IORESOURCE_MEM | IORESOURCE_BUSY, name };
}

/**
 * release_mem_region - release a range claimed with request_mem_region.
 * Context: any. Releasing a range that is not busy warns, as Linux does.
 */
export function release_mem_region(start: number, n: number): void {
  const k = current_kernel();
  const busy = busyRegions(k);
  const end = start + n - 1;
  const i = busy.findIndex((r) => r.start === start && r.end === end);
  if (i < 0) {
    k.warn(`Trying to free nonexistent resource <0x${start.toString(16)}-0x${end.toString(16)}>`);
    return;
  }
  busy.splice(i, 1);
}

/** Who holds the busy range containing `addr` (for messages and tests), or null. */
export function mem_region_owner(addr: number): string | null {
  const r = busyRegions(current_kernel()).find((b) => addr >= b.start && addr <= b.end);
  return r ? r.name : null;
}
