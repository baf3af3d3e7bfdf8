/**
 * The dma-debug table: every live streaming mapping and DMA allocation, per device.
 *
 * Look-ups by exact device address (unmap, free, dma_mapping_error) hit a Map; look-ups by a
 * contained address (partial syncs, later the coherence sanitizer) binary-search the sorted
 * start addresses (sorted-keys.ts: O(log n) inserts and deletes) and walk back at most as far as the device's largest mapping reaches, the
 * way kernel/dma/debug.c walks hash buckets backwards. Several entries may share an address
 * (one buffer mapped twice without an IOMMU); the best-fit rule of debug.c picks among them.
 * Pure bookkeeping: no kernel calls, so it can be tested and reused on its own.
 */

import type { device } from "../include/device.ts";
import type { vaddr_t } from "../include/types.ts";
import type { FindingHistoryEntry } from "../core/findings.ts";
import type { dma_data_direction } from "./defs.ts";
import { NumMap, SortedMultiMap } from "./sorted-keys.ts";

/**
 * How an entry was created; unmapping with another function is an error. "sg": one segment of
 * a dma_map_sg mapping (Linux's "scather-gather" entries, one per mapped segment).
 */
export type dma_debug_type = "single" | "page" | "coherent" | "noncoherent" | "sg";

/**
 * Who may touch the bytes now (§1.2): CPU after sync_for_cpu/unmap, DEVICE after
 * map/sync_for_device; COHERENT memory is shared and has no hand-over.
 */
export type dma_domain = "CPU" | "DEVICE" | "COHERENT";

export interface dma_debug_entry {
  readonly dev: device;
  readonly type: dma_debug_type;
  readonly dev_addr: number;
  readonly phys: number;
  /** The CPU address the driver passed or was given (linear, stack or uncached alias). */
  readonly cpu_addr: vaddr_t;
  readonly size: number;
  readonly direction: dma_data_direction;
  readonly attrs: number;
  /** Driver that created the entry (the code running at map/alloc time). */
  readonly owner: string;
  readonly timeNs: number;
  /** dma_mapping_error() was called on this handle (always true for allocations). */
  map_err_checked: boolean;
  /** The unchecked error has been reported once already. */
  map_err_reported: boolean;
  domain: dma_domain;
  /** Reported by dma_debug_device_unbind as a leak already. */
  leak_reported: boolean;
  readonly history: FindingHistoryEntry[];
  /** sg entries: the nents the driver passed to dma_map_sg (unmap and sync must pass it too). */
  readonly sg_call_ents?: number;
  /** sg entries: the count dma_map_sg returned (how many segments have entries). */
  readonly sg_mapped_ents?: number;
}

/** What a caller knows when it looks an entry up (the `ref` of debug.c). */
export interface dma_debug_ref {
  readonly type: dma_debug_type;
  readonly size: number;
  readonly direction: dma_data_direction;
}

/**
 * Told whenever an entry comes or goes (the coherence sanitizer keeps its own indexes this
 * way). Called after the table changed, from the map/alloc/unmap/free call itself.
 */
export interface dma_debug_listener {
  onAdd(e: dma_debug_entry): void;
  onRemove(e: dma_debug_entry): void;
}

/**
 * The last entry removed at each address of one device, for the last `max` distinct addresses
 * (the least recently buried address is forgotten first). Kept as a NumMap from address to
 * the position of its latest burial in a ring of burials; a ring slot whose address was buried
 * again later is stale and skipped. The ring is compacted when full, so a burial costs O(1)
 * amortised and allocates nothing in the steady state.
 */
class Graveyard {
  private readonly latest = new NumMap<number>();
  private readonly addrs: Float64Array;
  private readonly ents: (dma_debug_entry | undefined)[];
  /** Ring capacity - 1 (a power of two, at least 2 * max). */
  private readonly mask: number;
  /** Positions [head, tail) of the ring (absolute; slot = position % capacity). */
  private head = 0;
  private tail = 0;

  constructor(private readonly max: number) {
    let cap = 2;
    while (cap < 2 * max) cap *= 2;
    this.addrs = new Float64Array(cap);
    this.ents = new Array<dma_debug_entry | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
  }

  bury(e: dma_debug_entry): void {
    const mask = this.mask;
    if (this.tail - this.head > mask) this.compact();
    const pos = this.tail++;
    this.addrs[pos & mask] = e.dev_addr;
    this.ents[pos & mask] = e;
    this.latest.set(e.dev_addr, pos);
    while (this.latest.size > this.max) {
      const p = this.head++;
      const a = this.addrs[p & mask];
      if (this.latest.get(a) === p) this.latest.delete(a);
      this.ents[p & mask] = undefined;
    }
  }

  lastAt(addr: number): dma_debug_entry | null {
    const p = this.latest.get(addr);
    return p === undefined ? null : this.ents[p & this.mask]!;
  }

  /** Drop stale burials, keeping the live ones in order (at most `max` of them remain). */
  private compact(): void {
    const mask = this.mask;
    let w = this.head;
    for (let p = this.head; p < this.tail; p++) {
      const a = this.addrs[p & mask];
      if (this.latest.get(a) !== p) continue;
      const e = this.ents[p & mask];
      this.addrs[w & mask] = a;
      this.ents[w & mask] = e;
      this.latest.set(a, w);
      w++;
    }
    for (let p = w; p < this.tail; p++) this.ents[p & mask] = undefined;
    this.tail = w;
  }
}

class DeviceTable {
  /** Entries by device address; the addresses are sorted only when asked in order. */
  readonly byAddr = new SortedMultiMap<dma_debug_entry>();
  /** Largest size ever mapped: how far back a containing search must look. */
  maxSize = 0;
}

/** debug.c's match level: how many of size, type and direction agree. */
function matchLevel(e: dma_debug_entry, ref: dma_debug_ref): number {
  return (e.size === ref.size ? 1 : 0) + (e.type === ref.type ? 1 : 0) + (e.direction === ref.direction ? 1 : 0);
}

export class DmaDebugTable {
  private readonly tables = new Map<device, DeviceTable>();
  /** The device last buried for and its graveyard. */
  private lastGraveDev: device | null = null;
  private lastGrave: Graveyard | undefined = undefined;
  /** The device last looked up and its table: an sg call asks about one device per segment. */
  private lastDev: device | null = null;
  private lastTable: DeviceTable | undefined = undefined;
  /** The last entry removed at each (device, address): explains double unmaps. */
  private readonly graveyard = new Map<device, Graveyard>();
  private static readonly GRAVEYARD_MAX = 1024;
  private readonly listeners: dma_debug_listener[] = [];
  /** Scratch for findContaining's walk (reused: the walk allocates nothing). */
  private readonly walk: number[] = [];
  total = 0;
  /**
   * Remember removed entries for lastRemoved (dma-debug's double-unmap explanation). Off while
   * dma-debug is disabled: nothing would ever be reported with them.
   */
  keepRemoved = true;

  /** Does anyone listen (the coherence sanitizer)? Then every sg segment needs its entry. */
  get listening(): boolean {
    return this.listeners.length !== 0;
  }

  /** Be told about every entry added or removed from now on; returns the unsubscribe call. */
  listen(l: dma_debug_listener): () => void {
    this.listeners.push(l);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** The table of @dev, or undefined if nothing of it was ever added. */
  private tableOf(dev: device): DeviceTable | undefined {
    if (dev === this.lastDev) return this.lastTable;
    const t = this.tables.get(dev);
    // remember only a table that exists: one made later must not be hidden by a cached miss
    if (t !== undefined) {
      this.lastDev = dev;
      this.lastTable = t;
    }
    return t;
  }

  add(e: dma_debug_entry): void {
    let t = this.tableOf(e.dev);
    if (!t) {
      t = new DeviceTable();
      this.tables.set(e.dev, t);
    }
    t.byAddr.add(e.dev_addr, e);
    if (e.size > t.maxSize) t.maxSize = e.size;
    this.total++;
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) ls[i].onAdd(e);
  }

  remove(e: dma_debug_entry): void {
    const t = this.tableOf(e.dev);
    if (!t || !t.byAddr.remove(e.dev_addr, e)) return;
    this.total--;
    if (this.keepRemoved) this.bury(e);
    const ls = this.listeners;
    for (let j = 0; j < ls.length; j++) ls[j].onRemove(e);
  }

  /**
   * bucket_find_exact: the entry of `dev` at `addr` that best fits `ref`. A perfect fit wins;
   * a single candidate is returned however poorly it fits (so the caller can report what
   * differs); several imperfect candidates are ambiguous and count as not found.
   */
  findExact(dev: device, addr: number, ref: dma_debug_ref): dma_debug_entry | null {
    const list = this.tableOf(dev)?.byAddr.get(addr);
    if (!list || list.length === 0) return null;
    if (list.length === 1) return list[0];
    for (const e of list) if (matchLevel(e, ref) === 3) return e;
    return null;
  }

  /** Entries of `dev` starting exactly at `addr`, oldest first. */
  at(dev: device, addr: number): readonly dma_debug_entry[] {
    return this.tableOf(dev)?.byAddr.get(addr) ?? [];
  }

  /**
   * bucket_find_contain: an entry of `dev` whose range holds byte `addr`, preferring one that
   * also holds the whole [addr, addr+size) and then one with the same direction.
   */
  findContaining(dev: device, addr: number, size: number, dir: dma_data_direction): dma_debug_entry | null {
    const t = this.tableOf(dev);
    if (!t) return null;
    let best: dma_debug_entry | null = null;
    let bestScore = -1;
    const starts = this.walk;
    const n = t.byAddr.keys().downFrom(addr, addr - t.maxSize, starts);
    for (let i = 0; i < n; i++) {
      const list = t.byAddr.get(starts[i])!;
      for (let j = 0; j < list.length; j++) {
        const e = list[j];
        const holds = addr < e.dev_addr + e.size || (e.size === 0 && addr === e.dev_addr);
        if (!holds) continue;
        const score = (addr + size <= e.dev_addr + e.size ? 2 : 0) + (e.direction === dir ? 1 : 0);
        if (score > bestScore) {
          // the walk goes down from addr and a tie never replaces: a perfect fit is final
          if (score === 3) return e;
          bestScore = score;
          best = e;
        }
      }
    }
    return best;
  }

  /** The lowest start address of an entry of `dev` above `addr` (Infinity if none). */
  nextStart(dev: device, addr: number): number {
    const t = this.tableOf(dev);
    if (!t) return Infinity;
    return t.byAddr.keys().next(addr);
  }

  /** The most recently removed entry of `dev` at `addr`, if remembered. */
  lastRemoved(dev: device, addr: number): dma_debug_entry | null {
    return this.graveyard.get(dev)?.lastAt(addr) ?? null;
  }

  /** Live entries of one device, or of all devices, in address order per device. */
  live(dev?: device): dma_debug_entry[] {
    const out: dma_debug_entry[] = [];
    for (const [d, t] of this.tables) {
      if (dev && d !== dev) continue;
      for (const a of t.byAddr.keys().appendAll([])) out.push(...t.byAddr.get(a)!);
    }
    return out;
  }

  count(dev?: device): number {
    if (!dev) return this.total;
    return this.tableOf(dev)?.byAddr.count ?? 0;
  }

  private bury(e: dma_debug_entry): void {
    let g = e.dev === this.lastGraveDev ? this.lastGrave : this.graveyard.get(e.dev);
    if (!g) {
      g = new Graveyard(DmaDebugTable.GRAVEYARD_MAX);
      this.graveyard.set(e.dev, g);
    }
    this.lastGraveDev = e.dev;
    this.lastGrave = g;
    g.bury(e);
  }
}
