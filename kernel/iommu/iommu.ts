/**
 * The IOMMU core (drivers/iommu/iommu.c, §9.1 and §9.2 of the DMA reference): domains,
 * one group per device, default domains, attach/detach, map/unmap with IOTLB flushing, and
 * fault reporting to a domain's handler.
 *
 * Theory of operation
 * - A domain is one I/O address space: BLOCKED (nothing reaches memory), IDENTITY (IOVA ==
 *   phys), or a paging domain with its own page table in RAM (UNMANAGED for iommu_map users,
 *   DMA / DMA_FQ for the DMA API, strict or with a flush queue). Paging domains get a domain
 *   id (DID) that tags their IOTLB entries in the hardware.
 * - The hardware driver (dmar.ts) registers itself as `hw` (an iommu_ops-like table): it
 *   writes context entries and issues invalidations through its registers. This file never
 *   touches registers; io-pgtable.ts writes the tables.
 * - Every device in the firmware's scope gets a group of its own and a default domain when it
 *   is added (iommu_probe_device), before any driver probes it. iommu_attach_device moves the
 *   group to another domain; iommu_detach_device moves it back.
 * - Unmapping clears PTEs; the IOTLB keeps translating until an invalidation completes. That
 *   is why iommu_unmap syncs before it returns, and why iommu_unmap_fast leaves the caller a
 *   gather to sync (or to queue, for lazy DMA_FQ domains).
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { TRACE_PID_DEVICE } from "../platform/platform.ts";
import type { device } from "../include/device.ts";
import { EBUSY, EINVAL, ENODEV, ENOMEM, ENOSYS, ERR_PTR, type err_ptr } from "../include/errno.ts";
import type { bus_type } from "../base/core.ts";
import { IoPgtable, IOPT_IOVA_BITS, IOPT_LARGE_SIZE, IOPT_PAGE_SIZE, type IommuPgtableCounters } from "./io-pgtable.ts";

// ---- domain types (include/linux/iommu.h)
const __IOMMU_DOMAIN_PAGING = 1 << 0;
const __IOMMU_DOMAIN_DMA_API = 1 << 1;
const __IOMMU_DOMAIN_PT = 1 << 2;
const __IOMMU_DOMAIN_DMA_FQ = 1 << 3;
export const IOMMU_DOMAIN_BLOCKED = 0;
export const IOMMU_DOMAIN_IDENTITY = __IOMMU_DOMAIN_PT;
export const IOMMU_DOMAIN_UNMANAGED = __IOMMU_DOMAIN_PAGING;
export const IOMMU_DOMAIN_DMA = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API;
export const IOMMU_DOMAIN_DMA_FQ = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API | __IOMMU_DOMAIN_DMA_FQ;

// ---- protection flags
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;
export const IOMMU_NOEXEC = 8;
export const IOMMU_MMIO = 16;

// ---- fault flags for report_iommu_fault
export const IOMMU_FAULT_READ = 0;
export const IOMMU_FAULT_WRITE = 1;

/** int handler(domain, dev, iova, flags, token): 0 when handled, -ENOSYS to get the default report. */
export type iommu_fault_handler_t = (domain: iommu_domain, dev: device, iova: number, flags: number, token: unknown) => number;

export interface iommu_domain_geometry {
  aperture_start: number;
  aperture_end: number;
  force_aperture: boolean;
}

/** What the core knows of a domain's dma-iommu cookie. */
export interface iommu_dma_cookie_ref {
  /** iommu_put_dma_cookie: the domain is being freed; its IOTLB entries are already gone. */
  put(): void;
}

/** struct iommu_domain. Users read the public fields; the core owns the rest. */
export class iommu_domain {
  readonly geometry: iommu_domain_geometry = { aperture_start: 0, aperture_end: 2 ** IOPT_IOVA_BITS - 1, force_aperture: true };
  /** Page sizes the domain can map: 4 KiB | 2 MiB for paging domains, 0 otherwise. */
  readonly pgsize_bitmap: number;
  handler: iommu_fault_handler_t | null = null;
  handler_token: unknown = null;
  /**
   * dma-iommu's per-domain data (IOVA allocator, flush queue); the core only tells it when the
   * domain is freed (iommu_put_dma_cookie).
   */
  iova_cookie: iommu_dma_cookie_ref | null = null;
  /** @internal devices currently attached (their groups' domain is this one). */
  readonly _devices = new Set<device>();
  /** @internal freed by iommu_domain_free. */
  _freed = false;

  constructor(
    readonly type: number,
    /** Domain id tagging this domain's IOTLB entries and fault records. */
    readonly did: number,
    /** @internal the page table (paging domains only). */
    readonly _pgtbl: IoPgtable | null,
  ) {
    this.pgsize_bitmap = _pgtbl ? IOPT_PAGE_SIZE | IOPT_LARGE_SIZE : 0;
  }
}

/** struct iommu_iotlb_gather: the IOVA range unmapped but not yet invalidated. */
export interface iommu_iotlb_gather {
  start: number;
  end: number;
  pgsize: number;
}

/** struct iommu_group: here always exactly one device (every device is isolated). */
export interface iommu_group {
  readonly id: number;
  readonly devices: device[];
  default_domain: iommu_domain;
  domain: iommu_domain;
}

/** struct dev_iommu: what the core knows of a device behind the IOMMU. */
export interface dev_iommu {
  readonly requesterId: number;
  readonly untrusted: boolean;
  group: iommu_group | null;
}

/** What the hardware driver provides (the parts of iommu_ops / iommu_domain_ops used here). */
export interface iommu_hw_ops {
  /** Point the device's context entry at `domain` and invalidate what it may have cached. */
  attach_dev(dev: device, rid: number, domain: iommu_domain, old: iommu_domain | null): void;
  /** Invalidate `[iova, iova + size)` of domain `did` and wait for completion. */
  flush_range(did: number, iova: number, size: number): void;
  /** Invalidate everything (global) and wait for completion. */
  flush_all(): void;
  /** The walker does not snoop CPU caches: tables must be cleaned. */
  readonly coherentWalk: boolean;
}

export type iommu_policy = "off" | "passthrough" | "strict" | "lazy";

/** Per-kernel IOMMU state. */
export class IommuState {
  hw: iommu_hw_ops | null = null;
  policy: iommu_policy = "off";
  /** Requester id -> device, for fault reports. */
  readonly byRid = new Map<number, device>();
  readonly domains = new Set<iommu_domain>();
  readonly pgtables: IommuPgtableCounters = { pages: 0, failAllocs: 0 };
  identity: iommu_domain | null = null;
  blocked: iommu_domain | null = null;
  nextDid = 1;
  private readonly freeDids: number[] = [];
  nextGroup = 0;

  allocDid(): number {
    return this.freeDids.shift() ?? this.nextDid++;
  }

  releaseDid(did: number): void {
    this.freeDids.push(did);
  }
}

/** The IOMMU state of kernel `k` (created empty: no IOMMU). */
export function iommu_state(k: Kernel = current_kernel()): IommuState {
  return k.state("iommu", () => new IommuState());
}

const hex = (n: number): string => n.toString(16);

function dev_iommu_of(dev: device): dev_iommu | null {
  return dev.iommu as dev_iommu | null;
}

/** is_paging - a live paging domain (UNMANAGED, DMA, DMA_FQ) with its own page table. */
export function is_paging(domain: iommu_domain): boolean {
  return (domain.type & __IOMMU_DOMAIN_PAGING) !== 0 && domain._pgtbl !== null;
}

/** iommu_is_dma_domain - is the domain owned by the DMA API (DMA or DMA_FQ)? */
export function iommu_is_dma_domain(domain: iommu_domain): boolean {
  return (domain.type & __IOMMU_DOMAIN_DMA_API) !== 0;
}

/** iommu_enabled - is an IOMMU up with translation enabled (policy not "off")? */
export function iommu_enabled(k: Kernel = current_kernel()): boolean {
  const st = iommu_state(k);
  return st.hw !== null && st.policy !== "off";
}

// ------------------------------------------------------------------ domain allocation

/** @internal allocate a domain of `type` (with a page table when paging); null on failure. */
export function __iommu_domain_alloc(k: Kernel, type: number): iommu_domain | null {
  const st = iommu_state(k);
  if (!st.hw) return null;
  let pgtbl: IoPgtable | null = null;
  if (type & __IOMMU_DOMAIN_PAGING) {
    pgtbl = IoPgtable.alloc(k, st.hw.coherentWalk, st.pgtables);
    if (!pgtbl) return null;
  }
  const d = new iommu_domain(type, st.allocDid(), pgtbl);
  st.domains.add(d);
  return d;
}

/**
 * iommu_paging_domain_alloc - allocate an UNMANAGED paging domain usable by @dev
 * Context: any (allocates page-table pages).
 * Returns: the domain, or ERR_PTR(-ENODEV) when no translating IOMMU is in front of @dev,
 * ERR_PTR(-ENOMEM) when out of memory.
 */
export function iommu_paging_domain_alloc(dev: device): iommu_domain | err_ptr {
  const k = current_kernel();
  if (!dev_iommu_of(dev) || !iommu_enabled(k)) return ERR_PTR(-ENODEV);
  return __iommu_domain_alloc(k, IOMMU_DOMAIN_UNMANAGED) ?? ERR_PTR(-ENOMEM);
}

/**
 * iommu_domain_alloc - older form: an UNMANAGED domain for devices on @bus
 * Returns: the domain, or null when there is no translating IOMMU or no memory.
 */
export function iommu_domain_alloc(_bus: bus_type | null = null): iommu_domain | null {
  const k = current_kernel();
  if (!iommu_enabled(k)) return null;
  return __iommu_domain_alloc(k, IOMMU_DOMAIN_UNMANAGED);
}

/**
 * iommu_domain_free - free a domain and its page tables
 * Context: any. Freeing a domain some device is still attached to is a bug (WARN; the
 * devices are moved back to their default domains first so the hardware never walks freed
 * tables).
 */
export function iommu_domain_free(domain: iommu_domain): void {
  const k = current_kernel();
  const st = iommu_state(k);
  if (domain._freed) {
    k.warn(`iommu_domain_free: domain ${domain.did} freed twice`);
    return;
  }
  if (domain._devices.size) {
    k.warn(`iommu_domain_free: domain ${domain.did} still attached to ${[...domain._devices].map((d) => d.name).join(", ")}`);
    for (const dev of [...domain._devices]) iommu_detach_device(domain, dev);
  }
  domain._freed = true;
  // Its IOTLB entries must go before the DID and the table pages can be reused.
  if (domain._pgtbl && st.hw) st.hw.flush_all();
  domain.iova_cookie?.put();
  domain.iova_cookie = null;
  domain._pgtbl?.free();
  st.domains.delete(domain);
  if (domain !== st.identity && domain !== st.blocked) st.releaseDid(domain.did);
}

// ------------------------------------------------------------------ attach / detach

/** @internal switch the device's group to `domain` (hardware context + bookkeeping). */
export function __iommu_attach(k: Kernel, dev: device, domain: iommu_domain): void {
  const st = iommu_state(k);
  const di = dev_iommu_of(dev)!;
  const group = di.group!;
  const old = group.domain;
  old._devices.delete(dev);
  group.domain = domain;
  domain._devices.add(dev);
  st.hw!.attach_dev(dev, di.requesterId, domain, old === domain ? null : old);
}

/**
 * iommu_attach_device - move @dev (its group) from its default domain to @domain
 * Context: process context.
 * Returns: 0; -ENODEV when the device is not behind a translating IOMMU; -EINVAL for a
 * non-paging or freed domain or a group of several devices; -EBUSY when the group is already
 * attached to another non-default domain.
 */
export function iommu_attach_device(domain: iommu_domain, dev: device): number {
  const k = current_kernel();
  const di = dev_iommu_of(dev);
  if (!di?.group || !iommu_enabled(k)) return -ENODEV;
  if (domain._freed || !is_paging(domain) || di.group.devices.length !== 1) return -EINVAL;
  if (di.group.domain === domain) return 0;
  if (di.group.domain !== di.group.default_domain) return -EBUSY;
  __iommu_attach(k, dev, domain);
  return 0;
}

/**
 * iommu_detach_device - move @dev back to its default domain
 * Context: process context. WARNs when @dev is not attached to @domain.
 */
export function iommu_detach_device(domain: iommu_domain, dev: device): void {
  const k = current_kernel();
  const di = dev_iommu_of(dev);
  if (!di?.group) return;
  if (di.group.domain !== domain) {
    k.warn(`iommu_detach_device: ${dev.name} is not attached to domain ${domain.did}`);
    return;
  }
  if (domain === di.group.default_domain) return;
  __iommu_attach(k, dev, di.group.default_domain);
}

/** iommu_get_domain_for_dev - the domain @dev's group is attached to now, or null. */
export function iommu_get_domain_for_dev(dev: device): iommu_domain | null {
  return dev_iommu_of(dev)?.group?.domain ?? null;
}

/**
 * iommu_get_dma_domain - @dev's default domain (what the DMA API maps through)
 * Returns: null when the device is not behind an IOMMU or the IOMMU is off.
 */
export function iommu_get_dma_domain(dev: device): iommu_domain | null {
  return dev_iommu_of(dev)?.group?.default_domain ?? null;
}

/** dev_iommu_requester_id - the requester id @dev's DMA carries, or -1 when not behind an IOMMU. */
export function dev_iommu_requester_id(dev: device): number {
  return dev_iommu_of(dev)?.requesterId ?? -1;
}

/** dev_is_untrusted - is @dev external-facing (firmware device scope)? Always strict, bounced. */
export function dev_is_untrusted(dev: device): boolean {
  return dev_iommu_of(dev)?.untrusted ?? false;
}

/** iommu_device_by_rid - the device whose DMA carries requester id @rid, or null. */
export function iommu_device_by_rid(k: Kernel, rid: number): device | null {
  return iommu_state(k).byRid.get(rid) ?? null;
}

// map / unmap / IOTLB sync / iova_to_phys: iommu-map.ts (re-exported here, one API surface).
export {
  iommu_map, iommu_map_sg, iommu_iotlb_gather_init, iommu_unmap_fast, iommu_unmap, iommu_iotlb_sync,
  iommu_flush_iotlb_all, iommu_iova_to_phys,
} from "./iommu-map.ts";

// ------------------------------------------------------------------ faults

/** iommu_set_fault_handler - install @handler (called with @token) for faults in @domain. */
export function iommu_set_fault_handler(domain: iommu_domain, handler: iommu_fault_handler_t | null, token: unknown): void {
  domain.handler = handler;
  domain.handler_token = token;
}

/**
 * report_iommu_fault - tell @domain's owner that @dev faulted at @iova
 * Context: the IOMMU's fault interrupt (hardirq).
 * Returns: the handler's result, or -ENOSYS when none is installed (the IOMMU driver then
 * prints its default report).
 */
export function report_iommu_fault(domain: iommu_domain, dev: device, iova: number, flags: number): number {
  const k = current_kernel();
  const t = k.platform.trace;
  if (t.enabled) t.instant(t.track(TRACE_PID_DEVICE, "iommu"), "iommu", "io_page_fault", k.exec.now(), { device: dev.name, iova: `0x${hex(iova)}`, flags });
  if (!domain.handler) return -ENOSYS;
  return domain.handler(domain, dev, iova, flags, domain.handler_token);
}

