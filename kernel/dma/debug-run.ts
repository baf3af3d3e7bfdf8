/**
 * Deferred sg runs of the dma-debug table (DmaDebugTable.addRun): the segments of one direct
 * DMA_TO_DEVICE dma_map_sg call, kept as numbers until something needs them as entries.
 *
 * A run is live (every segment mapped; nothing can unmap or sync one segment of it without a
 * look-up, and every look-up settles the run first) or dead (unmapped whole, kept only for the
 * ghosts and graves that explain a later double unmap or device access). Its entries are made
 * when the table settles it into the address buckets, or, for a dead run, when a report asks
 * for one: the usual map / device walk / unmap makes none.
 */

import type { device } from "../include/device.ts";
import { PAGE_OFFSET as PAGE_OFFSET_IMPORTED } from "../mm/layout.ts";
import type { vaddr_t } from "../include/types.ts";
import type { dma_data_direction } from "./defs.ts";
import { DmaDebugEntry } from "./debug-entry.ts";
import { note_sg_unmap } from "./debug-history.ts";

// V8 does not fold an imported binding into a constant: copied once (read per segment).
const PAGE_OFFSET = PAGE_OFFSET_IMPORTED;

/** What every segment of one dma_map_sg call shares. */
export interface DmaDebugRunCall {
  readonly dev: device;
  readonly dir: dma_data_direction;
  readonly attrs: number;
  /** The nents the driver passed (every one mapped: sg_mapped_ents is the same). */
  readonly nents: number;
  readonly owner: string;
  readonly timeNs: number;
  readonly op: string;
}

export class DmaDebugRun {
  /** Segments (the call's nents: a run is made only when every entry was mapped). */
  readonly n: number;
  /**
   * Per segment: device address, length, CPU physical address. Plain arrays, not typed ones: a
   * Float64Array's backing store is allocated outside the JS heap, which cost more per
   * dma_map_sg call than everything else the run saves (4 us for 256 segments).
   */
  readonly addr: number[];
  readonly size: number[];
  readonly phys: number[];
  /** Live segments: n while mapped, 0 once unmapped whole. */
  liveCount: number;
  /** In its device's queue (not settled into the buckets yet)? */
  queued = false;
  /** disjointness checked (-1: not yet; 0: not known disjoint; 1: no two segments overlap). */
  disjoint = -1;
  /** The unmap that took the run whole (unmapped()): time, call, the nents it passed. */
  private unmapNs = -1;
  private unmapOp = "";
  private unmapNents = 0;
  /** Entries made so far (entryAt), by segment. */
  private ents: (DmaDebugEntry | undefined)[] | null = null;

  constructor(
    readonly call: DmaDebugRunCall,
    n: number,
  ) {
    this.n = n;
    this.addr = new Array<number>(n);
    this.size = new Array<number>(n);
    this.phys = new Array<number>(n);
    this.liveCount = n;
  }

  /** Does segment @i hold all of [addr, addr+size)? */
  holds(i: number, addr: number, size: number): boolean {
    const a = this.addr[i];
    return addr >= a && addr + size <= a + this.size[i];
  }

  /** The run was unmapped whole at @ns by @op passing @nents: its entries' last note. */
  unmapped(ns: number, op: string, nents: number): void {
    this.unmapNs = ns;
    this.unmapOp = op;
    this.unmapNents = nents;
  }

  /**
   * The entry of segment @i, made on first call: live and linked to the next segment's while
   * the run is live (the table is settling it), else unmapped with the unmap in its history.
   * The table settles a live run before anyone else may ask for one (DmaDebugTable.settle).
   */
  entryAt(i: number): DmaDebugEntry {
    const ents = (this.ents ??= new Array<DmaDebugEntry | undefined>(this.n));
    let e = ents[i];
    if (e !== undefined) return e;
    const c = this.call;
    const phys = this.phys[i];
    const size = this.size[i];
    e = new DmaDebugEntry(c.dev, "sg", this.addr[i], phys, (PAGE_OFFSET + phys) as vaddr_t, size, c.dir, c.attrs, "DEVICE", c.nents, c.nents, c.owner, c.timeNs, c.op, i);
    if (this.liveCount === 0) {
      e.note(note_sg_unmap(this.unmapNs, this.unmapOp, this.unmapNents, size, c.dir));
      e.domain = "CPU";
    } else {
      e.live = true;
      if (i > 0) {
        const prev = ents[i - 1];
        if (prev !== undefined) prev.next_seg = e;
      }
      const next = i + 1 < this.n ? ents[i + 1] : undefined;
      if (next !== undefined) e.next_seg = next;
    }
    ents[i] = e;
    return e;
  }
}

/** Addresses and sizes of the last run found disjoint: the same list mapped again is too. */
let lastDisjointAddr = new Float64Array(0);
let lastDisjointSize = new Float64Array(0);
let lastDisjointLen = 0;
let sortScratch = new Float64Array(0);

/** Is no byte held by two segments of @run? (Conservative: false when unsure.) */
export function runDisjoint(run: DmaDebugRun): boolean {
  if (run.disjoint >= 0) return run.disjoint === 1;
  const n = run.n;
  const addr = run.addr;
  const size = run.size;
  let same = n === lastDisjointLen;
  for (let i = 0; same && i < n; i++) same = addr[i] === lastDisjointAddr[i] && size[i] === lastDisjointSize[i];
  if (same) {
    run.disjoint = 1;
    return true;
  }
  // starts sorted: disjoint if consecutive starts are at least the largest size apart
  if (sortScratch.length < n) sortScratch = new Float64Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    if (size[i] <= 0) {
      run.disjoint = 0;
      return false;
    }
    if (size[i] > max) max = size[i];
  }
  const sorted = sortScratch.subarray(0, n);
  for (let i = 0; i < n; i++) sorted[i] = addr[i];
  sorted.sort();
  let ok = true;
  for (let i = 1; ok && i < n; i++) ok = sorted[i] - sorted[i - 1] >= max;
  run.disjoint = ok ? 1 : 0;
  if (ok) {
    if (lastDisjointAddr.length < n) {
      lastDisjointAddr = new Float64Array(n);
      lastDisjointSize = new Float64Array(n);
    }
    for (let i = 0; i < n; i++) {
      lastDisjointAddr[i] = addr[i];
      lastDisjointSize[i] = size[i];
    }
    lastDisjointLen = n;
  }
  return ok;
}

/** Do @a and @b hold the same addresses and sizes, in the same order? */
export function sameAddrs(a: DmaDebugRun, b: DmaDebugRun): boolean {
  if (a.n !== b.n) return false;
  for (let i = 0; i < a.n; i++) if (a.addr[i] !== b.addr[i] || a.size[i] !== b.size[i]) return false;
  return true;
}
