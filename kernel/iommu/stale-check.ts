/**
 * The stale-translation checker: a device access that succeeded through the IOMMU although the
 * kernel's I/O page table no longer maps that IOVA to that physical page (spec §9.4).
 *
 * Theory of operation
 * - Only a simulator can see this. Clearing a PTE does not stop a device while the IOTLB still
 *   caches the translation (hw/iommu/SPEC.md §4.4): until the invalidation completes, the
 *   device reaches the old page, which the kernel may already have freed and reused. That is
 *   the lazy flush-queue window (DMA_FQ domains) and the forgotten `iommu_iotlb_sync()` after
 *   `iommu_unmap_fast()`. The hardware does exactly what it should; the kernel's view and the
 *   hardware's have parted.
 * - The DMA port observer (the coherence sanitizer) calls iommu_stale_check_access() for every
 *   device access that reached RAM through a port with an IOMMU, with both addresses. When the
 *   device's domain translates, the checker walks the domain's page table as the kernel knows
 *   it (the CPU's newest view of the table memory, read side-effect free: no cache fill, no CPU
 *   time, no sanitizer callback) and compares: IOVA page not mapped, mapped to another frame,
 *   or mapped without the permission the access used, is stale use.
 * - One finding per (device, IOVA page, episode); an episode is one unmap of that page (or, when
 *   the unmap was not seen, the page for the whole run). The finding names the device, its
 *   driver, the IOVA, the physical page reached, what that page holds now (a kmalloc object
 *   allocated after the unmap: reallocated), the access, when the IOVA was unmapped and by
 *   which call, and the missing invalidation.
 * - When the IOVA went away: DMA API unmaps (DMA, DMA_FQ domains) are learnt from dma-debug's
 *   table, which tells its listeners about every mapping removed (the call and its time);
 *   unmaps through the IOMMU API (UNMANAGED domains) from iommu_stale_note_unmap(), a one-line
 *   call in iommu_unmap_fast. A small ring of recent unmapped ranges per domain
 *   (STALE_UNMAPS_PER_DOMAIN) is kept and searched only when a stale access is found.
 * - Cost: nothing when no port has an IOMMU (the sanitizer tests `port.translator` first);
 *   a domain lookup when the device is not translated; a 4-level peek walk per device access
 *   chunk (at most 4 KiB: the port splits at IOVA pages) otherwise.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { KERN_ERR, dmesgStamp } from "../core/printk.ts";
import type { device } from "../include/device.ts";
import { PAGE_SIZE } from "../include/types.ts";
import * as pgtable from "./io-pgtable.ts";
import { IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_DMA_FQ, IOMMU_DOMAIN_UNMANAGED, iommu_domain, iommu_get_domain_for_dev, iommu_is_dma_domain } from "./iommu.ts";
import type { dma_debug_entry } from "../dma/debug-entry.ts";
import { dma_state } from "../dma/state.ts";

/** Recent unmapped IOVA ranges remembered per domain, to say when a stale IOVA went away. */
export const STALE_UNMAPS_PER_DOMAIN = 256;
/** dmesg prefix of the checker's reports. */
export const STALE_PREFIX = "IOMMU-STALE: ";

/** What the checker needs to know of the domain a device is attached to. */
export interface stale_domain_view {
  /** The domain itself: unmap records are kept per domain object. */
  readonly domain: object;
  /** Physical address of the level-4 table the kernel built (translating domains only). */
  readonly root: number;
  /** Printable domain type: "UNMANAGED", "DMA", "DMA_FQ". */
  readonly type: string;
  /** Unmapped IOVAs wait in a flush queue for a batched invalidation (DMA_FQ). */
  readonly lazy: boolean;
  /** The DMA API owns the domain's IOVAs (DMA, DMA_FQ); false: its driver does (UNMANAGED). */
  readonly dmaApi: boolean;
}

/** iommu_stale_check_access() result bits. */
export const STALE_ACCESS_OK = 0;
/** The access used a translation the kernel no longer has (reported). */
export const STALE_ACCESS_STALE = 1;
/**
 * The device is attached to a domain its driver manages (iommu_map): its IOVAs are no DMA API
 * mappings, so the DMA API's ownership checks have nothing to judge the access by.
 */
export const STALE_ACCESS_UNMANAGED = 2;

/**
 * The device's translating domain, or null when its DMA is not translated (no IOMMU, policy
 * off, identity / blocked domain). The default asks the IOMMU core; tests may supply another.
 */
export type stale_domain_resolver = (dev: device) => stale_domain_view | null;

// A function, not a table built at load: iommu.ts imports this module, so its constants are
// not initialised yet while this one loads.
function type_name(type: number): string {
  if (type === IOMMU_DOMAIN_UNMANAGED) return "UNMANAGED";
  if (type === IOMMU_DOMAIN_DMA) return "DMA";
  if (type === IOMMU_DOMAIN_DMA_FQ) return "DMA_FQ";
  return `type ${type}`;
}
/** One view per paging domain, made once (the check runs per device access: no allocation). */
const views = new WeakMap<iommu_domain, stale_domain_view>();

// Copied into module constants: V8 does not fold an imported binding, and the walk runs on every
// translated device access while checks are on.
const { IOPTE_PS, IOPTE_R, IOPTE_W, IOPT_LARGE_SIZE, IOPT_PAGE_SIZE } = pgtable;
/** Bytes one entry of a level maps (index 1..4): 4 KiB, 2 MiB, 1 GiB, 512 GiB. */
const LEVEL_SPAN = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39];

/** The device's domain from the IOMMU core, when it is a live paging domain. */
export function stale_default_resolver(dev: device): stale_domain_view | null {
  if (dev.iommu === null) return null;
  const d = iommu_get_domain_for_dev(dev);
  if (d === null || d._pgtbl === null || d._freed) return null;
  let v = views.get(d);
  if (v === undefined) {
    v = { domain: d, root: d._pgtbl.root, type: type_name(d.type), lazy: d.type === IOMMU_DOMAIN_DMA_FQ, dmaApi: iommu_is_dma_domain(d) };
    views.set(d, v);
  }
  return v;
}

/** One unmap the IOMMU core told us about. */
export interface stale_unmap_record {
  readonly seq: number;
  readonly iova: number;
  readonly size: number;
  /** The call that cleared the PTEs: "iommu_unmap", "iommu_unmap_fast". */
  readonly fn: string;
  readonly timeNs: number;
  /** Who was running (the driver that unmapped, or "" for the kernel). */
  readonly owner: string;
}

interface unmap_ring {
  readonly recs: stale_unmap_record[];
  next: number;
}

/** What a physical page holds now, as far as the kernel's allocators know. */
export interface stale_page_state {
  /** "reallocated" (allocated after the unmap), "in use", "page block", "free". */
  readonly state: string;
  readonly text: string;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const stamp = (ns: number): string => dmesgStamp(ns).trim();

export class StaleIotlbCheck {
  /** Finds a device's translating domain; null turns the checker off. */
  resolver: stale_domain_resolver | null = stale_default_resolver;
  readonly stats = { checked: 0, stale: 0, findings: 0, unmaps_noted: 0 };
  private readonly unmaps = new WeakMap<object, unmap_ring>();
  private readonly seen = new Set<string>();
  private seq = 0;
  private readonly pte = new Uint8Array(8);
  private readonly pteView = new DataView(this.pte.buffer);

  constructor(readonly k: Kernel) {
    // DMA API unmaps: dma-debug tells its listeners about each mapping removed.
    dma_state(k).table.listen({
      onAdd: () => {},
      onRemove: (e) => this.onDmaRemove(e),
      // an sg run is one device's: its entries are needed only if that device translates
      onRemoveRun: (run) => {
        const view = this.resolver?.(run.call.dev) ?? null;
        if (view !== null && view.dmaApi) for (let i = 0; i < run.n; i++) this.onDmaRemove(run.entryAt(i));
      },
    });
  }

  /** A DMA API mapping went away: if its device translates, note the IOVA range. */
  private onDmaRemove(e: dma_debug_entry): void {
    const view = this.resolver?.(e.dev) ?? null;
    if (view === null || !view.dmaApi) return;
    const last = e.history[e.history.length - 1];
    const lo = Math.floor(e.dev_addr / IOPT_PAGE_SIZE) * IOPT_PAGE_SIZE;
    const hi = Math.ceil((e.dev_addr + Math.max(e.size, 1)) / IOPT_PAGE_SIZE) * IOPT_PAGE_SIZE;
    this.noteUnmap(view.domain, lo, hi - lo, last?.op ?? "dma_unmap");
  }

  /** Record that [iova, iova+size) of @domain was unmapped now by @fn. */
  noteUnmap(domain: object, iova: number, size: number, fn: string): void {
    this.stats.unmaps_noted++;
    let r = this.unmaps.get(domain);
    if (!r) this.unmaps.set(domain, (r = { recs: [], next: 0 }));
    r.recs[r.next] = { seq: ++this.seq, iova, size, fn, timeNs: this.k.exec.now(), owner: this.k.exec.owner };
    r.next = (r.next + 1) % STALE_UNMAPS_PER_DOMAIN;
  }

  /** The most recent remembered unmap of @domain covering @iova, or null. */
  lastUnmap(domain: object, iova: number): stale_unmap_record | null {
    const r = this.unmaps.get(domain);
    if (!r) return null;
    let best: stale_unmap_record | null = null;
    for (const u of r.recs) if (iova >= u.iova && iova < u.iova + u.size && (best === null || u.seq > best.seq)) best = u;
    return best;
  }

  /**
   * A device accessed RAM at [phys, phys+len) through bus address @busAddr (one IOVA page at
   * most). Returns STALE_ACCESS_* bits: STALE when the access used a translation the kernel no
   * longer has, UNMANAGED when the device's domain belongs to its driver.
   */
  check(dev: device, phys: number, len: number, isWrite: boolean, busAddr: number): number {
    const resolver = this.resolver;
    if (resolver === null) return STALE_ACCESS_OK;
    const view = resolver(dev);
    if (view === null) return STALE_ACCESS_OK;
    this.stats.checked++;
    const owner = view.dmaApi ? STALE_ACCESS_OK : STALE_ACCESS_UNMANAGED;
    const want = isWrite ? IOPTE_W : IOPTE_R;
    const leaf = this.walk(view.root, busAddr);
    if (leaf >= 0 && leaf === phys && (this.leafPerm & want) !== 0) return owner;
    this.stats.stale++;
    this.report(dev, view, phys, len, isWrite, busAddr, leaf);
    return owner | STALE_ACCESS_STALE;
  }

  /** Permissions of the leaf the last walk found. */
  private leafPerm = 0;

  /**
   * The physical address the kernel's table maps @iova to (its permissions in leafPerm), or -1.
   * Reads the table as the CPU sees it, without side effects (peekCached).
   */
  private walk(root: number, iova: number): number {
    let t = root;
    for (let level = 4; level >= 1; level--) {
      // the level's 9 index bits (`&` keeps the low 32 bits of the quotient: exact for 9 bits)
      const pte = this.readPte(t + 8 * (Math.floor(iova / LEVEL_SPAN[level]) & 511));
      if ((this.pteLow & 1) === 0) return -1; // P clear
      const addr = pte - this.pteLow; // bits 11:0 are flags
      if (level === 1 || (level === 2 && (this.pteLow & IOPTE_PS) !== 0)) {
        this.leafPerm = this.pteLow & (IOPTE_R | IOPTE_W);
        const size = level === 1 ? IOPT_PAGE_SIZE : IOPT_LARGE_SIZE;
        return Math.floor(addr / size) * size + (iova - Math.floor(iova / size) * size);
      }
      t = addr;
    }
    return -1;
  }

  private pteLow = 0;

  /** One 8-byte entry: bits 51:0 as a number (bits 63:52 are ignored by the format). */
  private readPte(phys: number): number {
    this.k.platform.peekCached(-1, phys, this.pte, 0, 8);
    const lo = this.pteView.getUint32(0, true);
    const hi = this.pteView.getUint32(4, true) & 0xfffff;
    this.pteLow = lo & 0xfff;
    return hi * 0x100000000 + lo;
  }

  private report(dev: device, view: stale_domain_view, phys: number, len: number, isWrite: boolean, busAddr: number, nowMapsTo: number): void {
    const k = this.k;
    const page = Math.floor(busAddr / IOPT_PAGE_SIZE);
    const u = this.lastUnmap(view.domain, busAddr);
    const key = `${dev.name}|${page}|${u ? u.seq : -1}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.stats.findings++;
    const access = isWrite ? "write" : "read";
    const physPage = Math.floor(phys / PAGE_SIZE) * PAGE_SIZE;
    const now = stale_page_now(k, phys, u);
    const table = nowMapsTo < 0 ? "no longer maps it" : nowMapsTo === phys ? `maps it without ${access} permission` : `now maps it to ${hex(nowMapsTo)}`;
    const gone = u ? `unmapped by ${u.fn}() at ${stamp(u.timeNs)}` : "unmapped at a time the checker did not see";
    const pending = view.lazy ? "its invalidation still waits in the flush queue" : u?.fn === "iommu_unmap_fast" ? "no iommu_iotlb_sync() followed" : "the IOTLB was not invalidated";
    const text =
      `device ${access} of ${len} byte(s) through a stale IOTLB entry: IOVA ${hex(busAddr)} reached phys ${hex(phys)}, ` +
      `but the ${view.type} domain's page table ${table} [${gone}; ${pending}] [page now: ${now.text}]`;
    const drv = dev.driver?.name ?? u?.owner ?? "";
    const line = `${drv} ${dev.name}: ${text}`;
    k.printk.log(KERN_ERR, line, STALE_PREFIX);
    const details: Record<string, string | number | boolean> = {
      access,
      iova: hex(busAddr),
      iova_page: hex(page * IOPT_PAGE_SIZE),
      phys: hex(phys),
      phys_page: hex(physPage),
      len,
      domain_type: view.type,
      table_maps_to: nowMapsTo < 0 ? "none" : hex(nowMapsTo),
      page_state: now.state,
      page_now: now.text,
    };
    if (u) {
      details.unmapped_by = u.fn;
      details.unmapped_ns = u.timeNs;
      details.unmapped_iova = hex(u.iova);
      details.unmapped_size = u.size;
      details.window_ns = k.exec.now() - u.timeNs;
    }
    k.findings.add({
      kind: "stale-iotlb-access",
      severity: "error",
      timeNs: k.exec.now(),
      driver: drv,
      device: dev.name,
      // dmesg carries the prefix, driver and device; the finding has them as fields (as iommu-fault)
      message: text,
      fix: stale_fix(view, u),
      details,
      history: u ? [{ timeNs: u.timeNs, op: u.fn, detail: `iova=${hex(u.iova)} size=${u.size}${u.owner ? ` by ${u.owner}` : ""}` }] : [],
    });
  }
}

/** The missing invalidation, in one sentence. */
export function stale_fix(view: stale_domain_view, u: stale_unmap_record | null): string {
  if (view.lazy) {
    return "Lazy invalidation leaves unmapped IOVAs reachable until the flush queue drains (up to 10 ms): boot with iommu.strict=1 (--iommu strict) or mark the device untrusted.";
  }
  if (u === null || u.fn === "iommu_unmap_fast") {
    return "Call iommu_iotlb_sync() (or use iommu_unmap()) before the pages are reused: iommu_unmap_fast() only clears the page table, the IOTLB keeps translating.";
  }
  return "Invalidate the IOTLB (iommu_iotlb_sync() or iommu_flush_iotlb_all()) before the pages are reused.";
}

/**
 * stale_page_now - what the page holding @phys contains now, as the kernel's allocators know it
 * @u: the unmap that made the IOVA stale (an object allocated after it counts as reallocated)
 * Context: any; side-effect free.
 */
export function stale_page_now(k: Kernel, phys: number, u: stale_unmap_record | null): stale_page_state {
  const obj = k.slab.objectAt(phys);
  if (obj) {
    const who = obj.owner || "the kernel";
    const text = `kmalloc(${obj.size}) object ${hex(obj.phys)} of ${who}, allocated at ${stamp(obj.timeNs)}`;
    return { state: u !== null && obj.timeNs >= u.timeNs ? "reallocated" : "in use", text };
  }
  for (let order = 0; order <= 18; order++) {
    const span = PAGE_SIZE * 2 ** order;
    const start = Math.floor(phys / span) * span;
    const n = k.pages.blockPages(start);
    if (n > 0 && start + n * PAGE_SIZE > phys) return { state: "page block", text: `live page block ${hex(start)} (${n} page(s)), no kmalloc object at that address` };
  }
  return { state: "free", text: "free memory (no live allocation)" };
}

/**
 * iommu_stale_check - the checker of @k (created on first use).
 * Context: any.
 */
export function iommu_stale_check(k: Kernel = current_kernel()): StaleIotlbCheck {
  return k.state("iommu-stale-check", () => new StaleIotlbCheck(k));
}

/**
 * iommu_stale_set_resolver - tell the checker how to find a device's translating domain
 * Context: tests (the default asks the IOMMU core). Null turns the checker off.
 */
export function iommu_stale_set_resolver(resolver: stale_domain_resolver | null, k: Kernel = current_kernel()): void {
  iommu_stale_check(k).resolver = resolver;
}

/**
 * iommu_stale_note_unmap - the IOMMU core cleared the PTEs of [iova, iova+size) in @domain
 * @fn: the API call doing it ("iommu_unmap", "iommu_unmap_fast")
 * Context: any; one call per unmap, cheap (a ring slot).
 */
export function iommu_stale_note_unmap(domain: object, iova: number, size: number, fn: string, k: Kernel = current_kernel()): void {
  // DMA API domains are learnt from dma-debug, with the DMA API call's name.
  if (domain instanceof iommu_domain && iommu_is_dma_domain(domain)) return;
  iommu_stale_check(k).noteUnmap(domain, iova, size, fn);
}

/**
 * iommu_stale_check_access - a device accessed RAM through an IOMMU (the DMA port observer)
 * Returns: STALE_ACCESS_* bits: STALE when the access used a stale translation (reported once
 * per episode), UNMANAGED when the device's domain is its driver's, not the DMA API's.
 * Context: device access observer; side-effect free apart from the finding.
 */
export function iommu_stale_check_access(k: Kernel, dev: device, phys: number, len: number, isWrite: boolean, busAddr: number): number {
  const s = k.state("iommu-stale-check", () => new StaleIotlbCheck(k));
  return s.check(dev, phys, len, isWrite, busAddr);
}
