/**
 * Who owns which bytes of a streaming mapping (§1.2, §4.5): partial syncs hand over ranges.
 *
 * dma_sync_single_for_cpu and dma_sync_single_range_for_cpu may name a sub-range of a mapping
 * (§4); the CPU then owns those bytes and the device still owns the rest. A driver that syncs
 * only the bytes a packet filled, reads its header, and recycles the buffer is correct, and so
 * is one that gives the CPU a header area while the device keeps the payload. An entry's
 * `domain` alone cannot say that, so a partial hand-over leaves the CPU's ranges in
 * `cpu_owned` (offsets into the mapping, sorted, disjoint) and `domain` "CPU" (some bytes are
 * the CPU's). A hand-over that leaves one owner for every byte clears `cpu_owned` again.
 * dma-debug keeps this; the coherence sanitizer is what reads it (ownership causes).
 */

import type { dma_debug_entry } from "./debug-entry.ts";

/**
 * dma_debug_hand_over - hand bytes [@from, @to) of @e (offsets, clamped to the mapping) to the
 * CPU (@to_cpu) or the device. Coherent allocations have no owner. Context: any.
 */
export function dma_debug_hand_over(e: dma_debug_entry, from: number, to: number, to_cpu: boolean): void {
  if (e.domain === "COHERENT") return;
  const lo = Math.max(0, from);
  const hi = Math.min(e.size, to);
  const ranges = e.cpu_owned ?? null;
  // the usual case: a whole-mapping sync, or a partial one that changes nothing
  if ((lo <= 0 && hi >= e.size) || (ranges === null && e.domain === (to_cpu ? "CPU" : "DEVICE"))) {
    if (lo <= 0 && hi >= e.size) {
      e.domain = to_cpu ? "CPU" : "DEVICE";
      e.cpu_owned = null;
    }
    return;
  }
  if (hi <= lo) return;
  const cur = ranges ?? (e.domain === "CPU" ? [0, e.size] : []);
  const next = to_cpu ? range_union(cur, lo, hi) : range_minus(cur, lo, hi);
  if (next.length === 0) {
    e.domain = "DEVICE";
    e.cpu_owned = null;
  } else if (next.length === 2 && next[0] <= 0 && next[1] >= e.size) {
    e.domain = "CPU";
    e.cpu_owned = null;
  } else {
    e.domain = "CPU";
    e.cpu_owned = next;
  }
}

/** The extent of a part of a range one side owns: its first byte and one past its last. */
export interface dma_owned_extent {
  lo: number;
  hi: number;
}

/**
 * dma_debug_owned_part - of bytes [@from, @to) of @e, the extent of those the CPU (@cpu) or the
 * device owns, written to @out (first byte, one past the last owned one: bytes of the other
 * side between them are included). Returns false when that side owns none of them.
 * Context: any.
 */
export function dma_debug_owned_part(e: dma_debug_entry, from: number, to: number, cpu: boolean, out: dma_owned_extent): boolean {
  const ranges = e.cpu_owned ?? null;
  if (ranges === null) {
    const owns = e.domain === "COHERENT" ? false : (e.domain === "CPU") === cpu;
    out.lo = from;
    out.hi = to;
    return owns && to > from;
  }
  let lo = Infinity;
  let hi = -Infinity;
  // the side's ranges: the CPU's as listed, the device's in the gaps around them
  const n = ranges.length;
  for (let i = 0; i <= n; i += 2) {
    if (cpu && i === n) break;
    const a = cpu ? ranges[i] : i === 0 ? 0 : ranges[i - 1];
    const b = cpu ? ranges[i + 1] : i === n ? e.size : ranges[i];
    const s = Math.max(a, from);
    const t = Math.min(b, to);
    if (s < t) {
      if (s < lo) lo = s;
      if (t > hi) hi = t;
    }
  }
  if (lo >= hi) return false;
  out.lo = lo;
  out.hi = hi;
  return true;
}

/** dma_debug_owner_text - the CPU's ranges of a split mapping ("0-63,128-255"), or "". */
export function dma_debug_owner_text(e: dma_debug_entry): string {
  const r = e.cpu_owned ?? null;
  if (r === null) return "";
  const parts: string[] = [];
  for (let i = 0; i < r.length; i += 2) parts.push(`${r[i]}-${r[i + 1] - 1}`);
  return parts.join(",");
}

/** @ranges (sorted, disjoint [a, b) pairs) with [lo, hi) added. */
function range_union(ranges: readonly number[], lo: number, hi: number): number[] {
  const out: number[] = [];
  let i = 0;
  for (; i < ranges.length && ranges[i + 1] < lo; i += 2) out.push(ranges[i], ranges[i + 1]);
  let a = lo;
  let b = hi;
  for (; i < ranges.length && ranges[i] <= b; i += 2) {
    a = Math.min(a, ranges[i]);
    b = Math.max(b, ranges[i + 1]);
  }
  out.push(a, b);
  for (; i < ranges.length; i += 2) out.push(ranges[i], ranges[i + 1]);
  return out;
}

/** @ranges (sorted, disjoint [a, b) pairs) with [lo, hi) taken out. */
function range_minus(ranges: readonly number[], lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    const a = ranges[i];
    const b = ranges[i + 1];
    if (b <= lo || a >= hi) {
      out.push(a, b);
      continue;
    }
    if (a < lo) out.push(a, lo);
    if (b > hi) out.push(hi, b);
  }
  return out;
}
