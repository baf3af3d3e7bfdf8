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
 * Entries made by dma-debug are DmaDebugEntry objects (debug-entry.ts), whose history is built
 * when first read; plain objects that satisfy dma_debug_entry work too. A direct
 * DMA_TO_DEVICE dma_map_sg call is kept as a run of numbers (debug-run.ts, addRun) and becomes
 * entries only when something looks at the table.
 */

import type { device } from "../include/device.ts";
import type { dma_data_direction } from "./defs.ts";
import { AddrBuckets, BIG_EXTENT, bucketOf as bucketOfImported, type AddrNode } from "./addr-buckets.ts";
import { DmaDebugEntry, type dma_debug_entry, type dma_debug_ref } from "./debug-entry.ts";
import { runDisjoint, sameAddrs, type DmaDebugRun } from "./debug-run.ts";

// Copied into module constants once: V8 does not fold an imported binding into a constant,
// and the look-ups below run per segment.
const BIG = BIG_EXTENT;
const bucketOf = bucketOfImported;

/**
 * Told whenever an entry comes or goes (the coherence sanitizer keeps its own indexes this
 * way). Called after the table changed, from the map/alloc/unmap/free call itself.
 */
export interface dma_debug_listener {
  onAdd(e: dma_debug_entry): void;
  onRemove(e: dma_debug_entry): void;
  /**
   * Optional: @run, never settled, was unmapped whole (DmaDebugTable.removeRun). A listener
   * never told of its entries (onAdd comes when a run is settled) learns of them here, by
   * segment, and may make an entry (run.entryAt) if it must keep one. Without this method the
   * table makes every entry and calls onRemove for each, in segment order.
   */
  onRemoveRun?(run: DmaDebugRun): void;
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
   * Record the segments of one direct DMA_TO_DEVICE dma_map_sg call of @dev (debug-run.ts)
   * without making their entries, putting them in the address buckets or telling the
   * listeners: that happens when anything looks at the device's table (settle), exactly as if
   * each had been add()ed now, in order. The usual life of an sg mapping (mapped, read by its
   * device segment after segment, unmapped whole) then needs none of it: the device's look-ups
   * are answered from the run while it is the device's only mapping and its segments are
   * disjoint (soleRun, runIsSole), and the unmap takes it whole (removeRun). A run unmapped
   * whole stays queued for the ghosts its entries leave (lastRemoved) until a later run of the
   * same addresses replaces them, or nobody keeps ghosts.
   * The caller counts nothing: total is kept here.
   */
  addRun(dev: device, run: DmaDebugRun): void {
    let t = this.tableOf(dev);
    if (!t) {
      t = new DeviceTable(this.keep ? DmaDebugTable.GRAVEYARD_MAX : 0);
      this.tables.set(dev, t);
    }
    run.queued = true;
    this.total += run.n;
    if (t.queue.length === 0) this.pending++;
    t.queue.push(run);
    t.liveRuns++;
    t.queued += run.n;
  }

  /** Put the queued runs of @t into its buckets and tell the listeners (see addRun). */
  private settle(t: DeviceTable): void {
    const q = t.queue;
    const idx = t.byAddr;
    const ls = this.listeners;
    for (let r = 0; r < q.length; r++) {
      const run = q[r];
      run.queued = false;
      const live = run.liveCount !== 0;
      for (let i = 0; i < run.n; i++) {
        const e = run.entryAt(i);
        idx.add(e.dev_addr, e, e.size);
        if (live) for (let j = 0; j < ls.length; j++) ls[j].onAdd(e);
      }
      // a run unmapped while queued: its entries go now, in segment order (their ghosts stay)
      if (!live) for (let i = 0; i < run.n; i++) idx.remove(run.addr[i], run.entryAt(i));
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

  /**
   * remove() of every segment of @run, a live run of @dev still queued (soleRun found it),
   * unmapped whole at @ns by @op passing @nents: no look-up, no entry made.
   */
  removeRun(dev: device, run: DmaDebugRun, ns: number, op: string, nents: number): void {
    const t = this.tableOf(dev)!;
    run.unmapped(ns, op, nents);
    run.liveCount = 0;
    this.total -= run.n;
    this.retireRun(t, run);
    const ls = this.listeners;
    for (let j = 0; j < ls.length; j++) {
      const l = ls[j];
      if (l.onRemoveRun !== undefined) l.onRemoveRun(run);
      else for (let i = 0; i < run.n; i++) l.onRemove(run.entryAt(i));
    }
  }

  /** @run was unmapped whole: keep it queued only while its ghosts matter. */
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
      if (o.liveCount === 0 && sameAddrs(o, run)) this.dropQueued(t, i);
    }
    if (t.queued > 4 * DmaDebugTable.GRAVEYARD_MAX) this.settle(t);
  }

  private dropQueued(t: DeviceTable, i: number): void {
    const q = t.queue;
    q[i].queued = false;
    t.queued -= q[i].n;
    q.splice(i, 1);
    if (q.length === 0) this.pending--;
  }

  /**
   * The one run of @dev while it is all @dev has live (no settled entry, no other live run),
   * else null: an unmap of the same list can take it whole, and a device access inside one of
   * its segments needs no look-up (debug-sg.ts, the sanitizer).
   */
  soleRun(dev: device): DmaDebugRun | null {
    const t = this.tableOf(dev);
    if (t === undefined || t.liveRuns !== 1 || t.byAddr.count !== 0) return null;
    const q = t.queue;
    for (let i = q.length - 1; i >= 0; i--) if (q[i].liveCount !== 0) return q[i];
    return null;
  }

  /**
   * Is @run (of @dev) still the one run soleRun returns, with no byte held by two of its
   * segments? Then findContaining(dev, addr, size, dir) of any [addr, addr+size) inside a
   * segment would return that segment's entry: the sanitizer follows a device walking the
   * list with segment indexes, making no entry.
   */
  runIsSole(dev: device, run: DmaDebugRun): boolean {
    if (!run.queued || run.liveCount === 0 || run.call.dev !== dev) return false;
    const t = this.tableOf(dev);
    return t !== undefined && t.liveRuns === 1 && t.byAddr.count === 0 && runDisjoint(run);
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
    if (t.queue.length !== 0) this.settle(t);
    return t.byAddr.unambiguous;
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
