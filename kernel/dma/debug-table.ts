/**
 * The dma-debug table: every live streaming mapping and DMA allocation, per device.
 *
 * Entries are hashed by device address into buckets (addr-buckets.ts), as kernel/dma/debug.c
 * does: look-ups by exact address (unmap, free, dma_mapping_error) scan one bucket; look-ups by
 * a contained address (partial syncs, the coherence sanitizer's device accesses) walk the
 * buckets back at most as far as the device's longest mapping reaches, the way debug.c walks
 * hash buckets backwards (very long entries are kept on a short list of their own). Several
 * entries may share an address (one buffer mapped twice without an IOMMU); the best-fit rule
 * of debug.c picks among them, ties going to the higher start and then the older entry.
 * Pure bookkeeping: no kernel calls, so it can be tested and reused on its own.
 *
 * Entries made by dma-debug are DmaDebugEntry objects, whose history is built when first read:
 * a mapping made and torn down correctly has its map and unmap noted without a history array
 * (dma_debug_entry_note). Plain objects that satisfy dma_debug_entry work too.
 */

import type { device } from "../include/device.ts";
import type { vaddr_t } from "../include/types.ts";
import type { FindingHistoryEntry } from "../core/findings.ts";
import type { dma_data_direction } from "./defs.ts";
import { AddrBuckets, BIG_EXTENT, bucketOf as bucketOfImported, type AddrNode } from "./addr-buckets.ts";
import { note_map } from "./debug-history.ts";
import { runDisjoint, sameAddrs, type DmaDebugRun } from "./debug-run.ts";

// Copied into module constants once: under tsx every use of an imported binding is a getter
// call (see hw/iommu/iommu.ts), and the look-ups below run per segment.
const BIG = BIG_EXTENT;
const bucketOf = bucketOfImported;

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
  /** The coherence sanitizer's record of this entry (its business; null or absent: none). */
  san_rec?: unknown;
}

/**
 * The entries dma-debug makes (debug_dma_add). The history starts with the map note, which is
 * made from the entry's own fields when the history is first read; one more note (the unmap
 * of a mapping nobody looked at) is held aside the same way. So the usual map/unmap cycle
 * allocates no history array.
 */
export class DmaDebugEntry implements dma_debug_entry {
  map_err_checked: boolean;
  map_err_reported = false;
  leak_reported = false;
  san_rec: unknown = null;
  /** In the table now (set by DmaDebugTable.add and remove). */
  live = false;
  /** sg segments: the entry of the next segment of the same dma_map_sg call, while live. */
  next_seg: DmaDebugEntry | null = null;
  /** The deferred run this entry belongs to, until the table settles it (DmaDebugTable.addRun). */
  run: DmaDebugRun | null = null;
  private hist: FindingHistoryEntry[] | null = null;
  private pend: FindingHistoryEntry | null = null;

  constructor(
    readonly dev: device,
    readonly type: dma_debug_type,
    readonly dev_addr: number,
    readonly phys: number,
    readonly cpu_addr: vaddr_t,
    readonly size: number,
    readonly direction: dma_data_direction,
    readonly attrs: number,
    public domain: dma_domain,
    readonly sg_call_ents: number | undefined,
    readonly sg_mapped_ents: number | undefined,
    readonly owner: string,
    readonly timeNs: number,
    /** The map call and the sg segment index (-1: none), for the first note. */
    private readonly mapOp: string,
    private readonly mapSeg: number,
  ) {
    // allocations return no error cookie, and sg maps return a count: nothing to check
    this.map_err_checked = type === "coherent" || type === "noncoherent" || type === "sg";
  }

  get history(): FindingHistoryEntry[] {
    let h = this.hist;
    if (h === null) {
      h = [note_map(this.timeNs, this.mapOp, this.mapSeg, this.sg_call_ents ?? 0, this.dev_addr, this.size, this.direction)];
      if (this.pend !== null) h.push(this.pend);
      this.pend = null;
      this.hist = h;
    }
    return h;
  }

  /** history.length, without building the history. */
  get historyLength(): number {
    return this.hist !== null ? this.hist.length : this.pend !== null ? 2 : 1;
  }

  note(n: FindingHistoryEntry): void {
    if (this.hist !== null) this.hist.push(n);
    else if (this.pend === null) this.pend = n;
    else this.history.push(n);
  }
}

/** dma_debug_entry_note - append @n to @e's history. Context: any. */
export function dma_debug_entry_note(e: dma_debug_entry, n: FindingHistoryEntry): void {
  if (e instanceof DmaDebugEntry) e.note(n);
  else e.history.push(n);
}

/** dma_debug_history_length - @e.history.length, without building a lazy history. */
export function dma_debug_history_length(e: dma_debug_entry): number {
  return e instanceof DmaDebugEntry ? e.historyLength : e.history.length;
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
  /**
   * Optional: onRemove of each of @es, entries of one device removed together in this order
   * (the unmap of a whole sg run, DmaDebugTable.removeRun); without it, onRemove per entry.
   */
  onRemoveRun?(es: readonly dma_debug_entry[]): void;
}

class DeviceTable {
  /**
   * Runs not settled into byAddr yet, in the order they were added (DmaDebugTable.addRun):
   * live ones, and ones all of whose entries were removed meanwhile (kept for their ghosts).
   */
  readonly queue: DmaDebugRun[] = [];
  /** Runs in `queue` with live entries. */
  liveRuns = 0;
  /** Entries of the runs in `queue`. */
  queued = 0;
  /**
   * Entries by device address (extent: size), with the ghost of the last entry removed at
   * each of the last GRAVEYARD_MAX addresses (lastRemoved: the double-unmap explanation).
   */
  readonly byAddr: AddrBuckets<dma_debug_entry>;
  constructor(ghosts: number) {
    this.byAddr = new AddrBuckets<dma_debug_entry>(ghosts);
  }
}

const NONE: readonly dma_debug_entry[] = Object.freeze([]);

/** debug.c's match level: how many of size, type and direction agree. */
function matchLevel(e: dma_debug_entry, ref: dma_debug_ref): number {
  return (e.size === ref.size ? 1 : 0) + (e.type === ref.type ? 1 : 0) + (e.direction === ref.direction ? 1 : 0);
}

export class DmaDebugTable {
  private readonly tables = new Map<device, DeviceTable>();
  /** The device last looked up and its table: an sg call asks about one device per segment. */
  private lastDev: device | null = null;
  private lastTable: DeviceTable | undefined = undefined;
  /** Removed entries remembered per device (the last one at each of this many addresses). */
  private static readonly GRAVEYARD_MAX = 1024;
  private readonly listeners: dma_debug_listener[] = [];
  total = 0;
  /**
   * Remember removed entries for lastRemoved (dma-debug's double-unmap explanation). Off while
   * dma-debug is disabled: nothing would ever be reported with them.
   */
  get keepRemoved(): boolean {
    return this.keep;
  }

  set keepRemoved(on: boolean) {
    this.settleAll();
    this.keep = on;
    for (const t of this.tables.values()) t.byAddr.ghostMax = on ? DmaDebugTable.GRAVEYARD_MAX : 0;
  }

  private keep = true;

  /** Does anyone listen (the coherence sanitizer)? Then every sg segment needs its entry. */
  get listening(): boolean {
    return this.listeners.length !== 0;
  }

  /** Be told about every entry added or removed from now on; returns the unsubscribe call. */
  listen(l: dma_debug_listener): () => void {
    this.settleAll();
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

  /** tableOf, with its queued runs settled (what every look-up needs). */
  private settled(dev: device): DeviceTable | undefined {
    const t = this.tableOf(dev);
    if (t !== undefined && t.queue.length !== 0) this.settle(t);
    return t;
  }

  add(e: dma_debug_entry): void {
    let t = this.tableOf(e.dev);
    if (!t) {
      t = new DeviceTable(this.keep ? DmaDebugTable.GRAVEYARD_MAX : 0);
      this.tables.set(e.dev, t);
    }
    if (t.queue.length !== 0) this.settle(t);
    t.byAddr.add(e.dev_addr, e, e.size);
    if (e instanceof DmaDebugEntry) e.live = true;
    this.total++;
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) ls[i].onAdd(e);
  }

  remove(e: dma_debug_entry): void {
    const t = this.tableOf(e.dev);
    if (!t) return;
    if (e instanceof DmaDebugEntry && e.run !== null) {
      this.removeQueued(t, e, e.run);
      return;
    }
    if (t.queue.length !== 0) this.settle(t);
    if (!t.byAddr.remove(e.dev_addr, e)) return;
    if (e instanceof DmaDebugEntry) {
      e.live = false;
      e.next_seg = null; // a dead entry must not keep the rest of its list alive (graves, ghosts)
    }
    this.total--;
    const ls = this.listeners;
    for (let j = 0; j < ls.length; j++) ls[j].onRemove(e);
  }

  /** Runs are waiting in some device's queue: settleAll() before reading the table whole. */
  pending = 0;

  /**
   * Record the segments of one dma_map_sg call (all of @dev, made by dma-debug, in order)
   * without putting them in the address buckets or telling the listeners yet: that happens
   * when anything looks at the table (settle), exactly as if each had been add()ed now, in
   * order. The usual life of an sg mapping (mapped, read or written by its device segment
   * after segment, unmapped whole) then needs neither: the device's look-ups are answered from
   * the run while it is the device's only mapping and its segments are disjoint (soleHolder,
   * runHolder), and the unmap finds its entries in the run (soleRun). Entries removed while
   * queued leave their ghosts (lastRemoved) when the run is settled; a run whose entries are
   * all gone is dropped when a later run removes the same addresses (its ghosts would be
   * replaced by that run's), or when nobody keeps ghosts.
   * The caller counts nothing: total and each entry's `live` are set here.
   */
  addRun(dev: device, run: DmaDebugRun): void {
    let t = this.tableOf(dev);
    if (!t) {
      t = new DeviceTable(this.keep ? DmaDebugTable.GRAVEYARD_MAX : 0);
      this.tables.set(dev, t);
    }
    const es = run.entries;
    for (let i = 0; i < es.length; i++) {
      es[i].live = true;
      es[i].run = run;
    }
    this.total += es.length;
    if (t.queue.length === 0) this.pending++;
    t.queue.push(run);
    t.liveRuns++;
    t.queued += es.length;
  }

  /** Put the queued runs of @t into its buckets and tell the listeners (see addRun). */
  private settle(t: DeviceTable): void {
    const q = t.queue;
    const idx = t.byAddr;
    const ls = this.listeners;
    for (let r = 0; r < q.length; r++) {
      const es = q[r].entries;
      for (let i = 0; i < es.length; i++) {
        const e = es[i];
        e.run = null;
        idx.add(e.dev_addr, e, e.size);
        if (e.live) for (let j = 0; j < ls.length; j++) ls[j].onAdd(e);
      }
      // entries removed while queued: removed now, in the order they went (index order)
      if (q[r].liveCount !== es.length) for (let i = 0; i < es.length; i++) if (!es[i].live) idx.remove(es[i].dev_addr, es[i]);
    }
    q.length = 0;
    t.liveRuns = 0;
    t.queued = 0;
    this.pending--;
  }

  /** settle() every device's queue. */
  settleAll(): void {
    if (this.pending === 0) return;
    for (const t of this.tables.values()) if (t.queue.length !== 0) this.settle(t);
  }

  /** remove() of an entry still in its run's queue. */
  private removeQueued(t: DeviceTable, e: DmaDebugEntry, run: DmaDebugRun): void {
    if (!e.live) return;
    e.live = false;
    e.next_seg = null;
    this.total--;
    if (--run.liveCount === 0) this.retireRun(t, run);
    const ls = this.listeners;
    for (let j = 0; j < ls.length; j++) ls[j].onRemove(e);
  }

  /**
   * remove() of every entry of @run, a run of @dev whose entries are all live, in order (the
   * unmap of a whole run, debug-sg.ts): the entries are known to be queued, so no look-up.
   */
  removeRun(dev: device, run: DmaDebugRun): void {
    const t = this.tableOf(dev);
    const es = run.entries;
    if (t === undefined || run.liveCount !== es.length) {
      for (let i = 0; i < es.length; i++) this.remove(es[i]);
      return;
    }
    for (let i = 0; i < es.length; i++) {
      const e = es[i];
      e.live = false;
      e.next_seg = null;
    }
    this.total -= es.length;
    run.liveCount = 0;
    this.retireRun(t, run);
    // the listeners after the whole run went (they look at the entries they are given only)
    const ls = this.listeners;
    for (let j = 0; j < ls.length; j++) {
      const l = ls[j];
      if (l.onRemoveRun !== undefined) l.onRemoveRun(es);
      else for (let i = 0; i < es.length; i++) l.onRemove(es[i]);
    }
  }

  /** All of @run's entries went: keep it only while its ghosts matter. */
  private retireRun(t: DeviceTable, run: DmaDebugRun): void {
    t.liveRuns--;
    const q = t.queue;
    const at = q.lastIndexOf(run);
    if (t.byAddr.ghostMax === 0) {
      // nothing would be remembered: settling it would add and remove to no effect
      this.dropQueued(t, at);
      return;
    }
    // earlier dead runs at the same addresses: every ghost they would leave, this one replaces
    for (let i = at - 1; i >= 0; i--) {
      const o = q[i];
      if (o.liveCount === 0 && sameAddrs(o, run)) {
        this.dropQueued(t, i);
      }
    }
    if (t.queued > 4 * DmaDebugTable.GRAVEYARD_MAX) this.settle(t);
  }

  private dropQueued(t: DeviceTable, i: number): void {
    const q = t.queue;
    const run = q[i];
    for (const e of run.entries) e.run = null;
    t.queued -= run.entries.length;
    q.splice(i, 1);
    if (q.length === 0) this.pending--;
  }

  /**
   * The one run of @dev while it is all @dev has live (no settled entry, no other live run),
   * else null: an unmap of the same list can take its entries in order (debug-sg.ts).
   */
  soleRun(dev: device): DmaDebugRun | null {
    const t = this.tableOf(dev);
    if (t === undefined || t.liveRuns !== 1 || t.byAddr.count !== 0) return null;
    const q = t.queue;
    for (let i = q.length - 1; i >= 0; i--) if (q[i].liveCount !== 0) return q[i];
    return null;
  }

  /**
   * The entry of @dev holding all of [addr, addr+size) that findContaining would return, found
   * without settling: only while one run is all @dev has live and its segments are disjoint
   * (then the holder is the only candidate). null: ask findContaining.
   */
  runHolder(dev: device, addr: number, size: number): DmaDebugEntry | null {
    const run = this.soleRun(dev);
    if (run === null || size <= 0 || !runDisjoint(run)) return null;
    const es = run.entries;
    for (let i = 0; i < es.length; i++) {
      const e = es[i];
      if (e.live && addr >= e.dev_addr && addr + size <= e.dev_addr + e.size) return e;
    }
    return null;
  }

  /**
   * bucket_find_exact: the entry of `dev` at `addr` that best fits `ref`. A perfect fit wins;
   * a single candidate is returned however poorly it fits (so the caller can report what
   * differs); several imperfect candidates are ambiguous and count as not found.
   */
  findExact(dev: device, addr: number, ref: dma_debug_ref): dma_debug_entry | null {
    const b = this.settled(dev)?.byAddr.bucket(bucketOf(addr));
    if (b === undefined) return null;
    let n = 0;
    let only: dma_debug_entry | null = null;
    let perfect: dma_debug_entry | null = null;
    for (let x: AddrNode<dma_debug_entry> | null = b; x !== null; x = x.next) {
      if (x.key !== addr || x.dead) continue;
      const e = x.item!;
      if (n++ === 0) only = e;
      if (perfect === null && matchLevel(e, ref) === 3) perfect = e;
    }
    return n === 1 ? only : perfect;
  }

  /** Entries of `dev` starting exactly at `addr`, oldest first. */
  at(dev: device, addr: number): readonly dma_debug_entry[] {
    const t = this.settled(dev);
    if (t === undefined) return NONE;
    const out = t.byAddr.at(addr, []);
    return out.length === 0 ? NONE : out;
  }

  /** The @i-th entry of `dev` starting exactly at `addr` (oldest first), or null: at() without an array. */
  nthAt(dev: device, addr: number, i: number): dma_debug_entry | null {
    return this.settled(dev)?.byAddr.nthAt(addr, i) ?? null;
  }

  /**
   * Is @e, a live entry of @dev made by dma-debug, what findContaining(dev, addr, size, dir)
   * returns for every [addr, addr+size) inside it? True when no address of the device is held
   * by two live entries (AddrBuckets.unambiguous): the sanitizer's shortcut for a device that
   * walks an sg list segment after segment (the next segment's entry is e.next_seg).
   */
  soleHolder(dev: device, e: DmaDebugEntry, addr: number, size: number): boolean {
    if (!e.live || e.dev !== dev || addr < e.dev_addr || addr + size > e.dev_addr + e.size || size <= 0) return false;
    const t = this.tableOf(dev);
    if (t === undefined) return false;
    const run = e.run;
    if (run !== null) return t.liveRuns === 1 && t.byAddr.count === 0 && runDisjoint(run);
    if (t.queue.length !== 0) this.settle(t);
    return t.byAddr.unambiguous;
  }

  /** Is @e live in the table? */
  has(e: dma_debug_entry): boolean {
    return this.settled(e.dev)?.byAddr.has(e.dev_addr, e) ?? false;
  }

  /**
   * bucket_find_contain: an entry of `dev` whose range holds byte `addr`, preferring one that
   * also holds the whole [addr, addr+size) and then one with the same direction.
   */
  findContaining(dev: device, addr: number, size: number, dir: dma_data_direction): dma_debug_entry | null {
    const t = this.settled(dev);
    if (!t) return null;
    const idx = t.byAddr;
    const f = this.fit;
    f.best = null;
    f.score = -1;
    // Among the entries holding addr: the best score, then the highest start, then the oldest
    // (what walking the starts down from addr, oldest first per start, and keeping the first
    // of the best score gives).
    for (let n = bucketOf(addr), last = idx.lowestBucketFor(addr); n >= last; n--) {
      const b = idx.bucket(n);
      if (b !== undefined) this.fitIn(f, b, addr, size, dir, false);
    }
    if (idx.bigHead !== null) this.fitIn(f, idx.bigHead, addr, size, dir, true);
    return f.best;
  }

  /** Scratch of findContaining (reused: the walk allocates nothing). */
  private readonly fit = { best: null as dma_debug_entry | null, score: -1, start: 0, seq: 0 };

  /** findContaining over one bucket's list (@big: the big list, else skipping big entries). */
  private fitIn(f: { best: dma_debug_entry | null; score: number; start: number; seq: number }, head: AddrNode<dma_debug_entry>, addr: number, size: number, dir: dma_data_direction, big: boolean): void {
    for (let x: AddrNode<dma_debug_entry> | null = head; x !== null; x = big ? x.nextBig : x.next) {
      const start = x.key;
      if (start > addr || x.dead || (!big && x.ext > BIG)) continue;
      const e = x.item!;
      const holds = addr < start + e.size || (e.size === 0 && addr === start);
      if (!holds) continue;
      const score = (addr + size <= start + e.size ? 2 : 0) + (e.direction === dir ? 1 : 0);
      if (score > f.score || (score === f.score && (start > f.start || (start === f.start && x.seq < f.seq)))) {
        f.best = e;
        f.score = score;
        f.start = start;
        f.seq = x.seq;
      }
    }
  }

  /** The lowest start address of an entry of `dev` in (`addr`, `limit`), else `limit`. */
  nextStart(dev: device, addr: number, limit = Infinity): number {
    const t = this.settled(dev);
    if (!t) return limit;
    return t.byAddr.nextKey(addr, limit);
  }

  /** The most recently removed entry of `dev` at `addr`, if remembered. */
  lastRemoved(dev: device, addr: number): dma_debug_entry | null {
    return this.settled(dev)?.byAddr.ghostAt(addr) ?? null;
  }

  /** Live entries of one device, or of all devices, in address order per device. */
  live(dev?: device): dma_debug_entry[] {
    const out: dma_debug_entry[] = [];
    this.settleAll();
    for (const [d, t] of this.tables) {
      if (dev && d !== dev) continue;
      t.byAddr.appendSorted(out);
    }
    return out;
  }

  count(dev?: device): number {
    if (!dev) return this.total;
    return this.settled(dev)?.byAddr.count ?? 0;
  }
}
