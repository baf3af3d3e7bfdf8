/**
 * Deferred sg runs of the dma-debug table (DmaDebugTable.addRun): the segments of one
 * dma_map_sg call, kept together until something needs them in the address buckets, and the
 * questions the table asks about a run without settling it.
 */

import type { DmaDebugEntry } from "./debug-table.ts";

/**
 * The segments of one dma_map_sg call recorded by DmaDebugTable.addRun: live entries that are
 * not in the address buckets yet, and whose listeners have not been told (see addRun).
 */
export class DmaDebugRun {
  /** Entries still live (a run whose entries all went is kept only for its ghosts). */
  liveCount: number;
  /** disjointness checked (-1: not yet; 0: not known disjoint; 1: no two entries overlap). */
  disjoint = -1;
  constructor(readonly entries: readonly DmaDebugEntry[]) {
    this.liveCount = entries.length;
  }
}

/** Addresses and sizes of the last run found disjoint: the same list mapped again is too. */
let lastDisjointAddr = new Float64Array(0);
let lastDisjointSize = new Float64Array(0);
let lastDisjointLen = 0;
let sortScratch = new Float64Array(0);

/** Is no byte held by two entries of @run? (Conservative: false when unsure.) */
export function runDisjoint(run: DmaDebugRun): boolean {
  if (run.disjoint >= 0) return run.disjoint === 1;
  const es = run.entries;
  const n = es.length;
  let same = n === lastDisjointLen;
  for (let i = 0; same && i < n; i++) same = es[i].dev_addr === lastDisjointAddr[i] && es[i].size === lastDisjointSize[i];
  if (same) {
    run.disjoint = 1;
    return true;
  }
  // starts sorted: disjoint if consecutive starts are at least the largest size apart
  if (sortScratch.length < n) sortScratch = new Float64Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    const e = es[i];
    if (e.size <= 0) {
      run.disjoint = 0;
      return false;
    }
    if (e.size > max) max = e.size;
    sortScratch[i] = e.dev_addr;
  }
  const sorted = sortScratch.subarray(0, n).sort();
  let ok = true;
  for (let i = 1; ok && i < n; i++) ok = sorted[i] - sorted[i - 1] >= max;
  run.disjoint = ok ? 1 : 0;
  if (ok) {
    if (lastDisjointAddr.length < n) {
      lastDisjointAddr = new Float64Array(n);
      lastDisjointSize = new Float64Array(n);
    }
    for (let i = 0; i < n; i++) {
      lastDisjointAddr[i] = es[i].dev_addr;
      lastDisjointSize[i] = es[i].size;
    }
    lastDisjointLen = n;
  }
  return ok;
}

/** Do @a and @b hold the same addresses and sizes, in the same order? */
export function sameAddrs(a: DmaDebugRun, b: DmaDebugRun): boolean {
  const x = a.entries;
  const y = b.entries;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i].dev_addr !== y[i].dev_addr || x[i].size !== y[i].size) return false;
  return true;
}

