/**
 * The dma-debug knobs of §7.3 (debugfs dma-api/ and the dma_debug= boot options), as a small
 * API for scenarios, tests and the CLI. Drivers never see it.
 *
 * What they govern, mirroring kernel/dma/debug.c's err_printk:
 * - Printing. Every error is counted (error_count); it is printed to dmesg only if the driver
 *   passes driver_filter and (all_errors, or fewer than num_errors errors were printed so far).
 *   Linux's defaults are kept: all_errors off, num_errors 1, so a boot prints the first DMA-API
 *   error and then only counts. Turn all_errors on to see every line (scenarios that tour the
 *   error classes do).
 * - Findings. The simulator's findings are its product, so every error still becomes a finding
 *   whatever the printing knobs say; like error_count, they are "counting".
 * - disabled (dma_debug=off): no checks, no findings, no lines. As in Linux it cannot be undone
 *   at runtime. The bookkeeping table is still kept, because the coherence sanitizer uses it as
 *   its map of who owns what.
 */

import type { Kernel } from "../core/kernel.ts";
import { KERN_INFO } from "../core/printk.ts";
import { EINVAL, EPERM } from "../include/errno.ts";
import { dma_state } from "./state.ts";

export interface dma_debug_options {
  /** Print every error (debugfs all_errors). Default false. */
  all_errors: boolean;
  /** Errors to print before going quiet, when all_errors is off (debugfs num_errors). Default 1. */
  num_errors: number;
  /** Print errors of this driver only; null prints all (debugfs driver_filter). */
  driver_filter: string | null;
  /** dma_debug=off: no checks at all. One way: cannot be re-enabled. */
  disabled: boolean;
}

class DmaDebugKnobs implements dma_debug_options {
  all_errors = false;
  num_errors = 1;
  /** show_num_errors: how many more errors will be printed. */
  left = 1;
  driver_filter: string | null = null;
  disabled = false;
  error_count = 0;
  /** Entries the "pool" has grown to, as last logged. */
  nr_total_entries = DMA_DEBUG_ENTRIES;
}

/** dma_debug_entries: Linux's preallocation (65536 by default). */
export const DMA_DEBUG_ENTRIES = 65536;

const newKnobs = (): DmaDebugKnobs => new DmaDebugKnobs();
/** The last kernel asked about and its knobs (the map and sg paths ask per segment). */
let lastKernel: Kernel | null = null;
let lastKnobs: DmaDebugKnobs | null = null;

function knobs(k: Kernel): DmaDebugKnobs {
  if (k === lastKernel) return lastKnobs!;
  const s = k.state("dma-debug-knobs", newKnobs);
  lastKernel = k;
  lastKnobs = s;
  return s;
}

/**
 * dma_debug_set_options - change the knobs (fields left out keep their value)
 * @k: the kernel
 * @opts: all_errors, num_errors (a non-negative integer; also restarts the countdown, as a
 *        debugfs write does), driver_filter (a driver name; null or "" clears it), disabled
 * Context: any.
 * Returns: 0; -EINVAL for a bad value (nothing changed); -EPERM for re-enabling.
 */
export function dma_debug_set_options(k: Kernel, opts: Partial<dma_debug_options>): number {
  const s = knobs(k);
  if (opts.num_errors !== undefined && !(Number.isSafeInteger(opts.num_errors) && opts.num_errors >= 0)) return -EINVAL;
  if (opts.driver_filter && !/^[A-Za-z0-9_-]{1,63}$/.test(opts.driver_filter)) return -EINVAL;
  if (opts.disabled === false && s.disabled) return -EPERM;
  if (opts.all_errors !== undefined) s.all_errors = opts.all_errors;
  if (opts.num_errors !== undefined) s.num_errors = s.left = opts.num_errors;
  if (opts.driver_filter !== undefined) s.driver_filter = opts.driver_filter || null;
  if (opts.disabled) {
    s.disabled = true;
    dma_state(k).table.keepRemoved = false; // only reports use removed entries
  }
  return 0;
}

/** dma_debug_get_options - the current knobs plus error_count (errors seen so far). */
export function dma_debug_get_options(k: Kernel): dma_debug_options & { error_count: number } {
  const s = knobs(k);
  return { all_errors: s.all_errors, num_errors: s.num_errors, driver_filter: s.driver_filter, disabled: s.disabled, error_count: s.error_count };
}

/** dma_debug_disabled - is dma-debug off (dma_debug=off)? */
export function dma_debug_disabled(k: Kernel): boolean {
  if (k === lastKernel) return lastKnobs!.disabled;
  const s = k.subsys.get("dma-debug-knobs") as DmaDebugKnobs | undefined;
  return s !== undefined && s.disabled;
}

/**
 * dma_debug_count_error - err_printk's bookkeeping for one error of @driver: count it and say
 * whether to print it.
 * Returns: true when the error's lines belong in dmesg.
 */
export function dma_debug_count_error(k: Kernel, driver: string): boolean {
  const s = knobs(k);
  s.error_count++;
  const print = (s.driver_filter === null || s.driver_filter === driver) && (s.all_errors || s.left > 0);
  if (!s.all_errors && s.left > 0) s.left--;
  return print;
}

/**
 * dma_debug_count_entries - Linux preallocates DMA_DEBUG_ENTRIES entries and grows the pool a
 * step at a time, logging each step ("dma_debug_entry pool grown to N"): a long-running leak
 * shows up as a line per 65536 live mappings. Our table has no limit; this reproduces the log.
 * @total: live entries now
 */
export function dma_debug_count_entries(k: Kernel, total: number): void {
  const s = knobs(k);
  if (total <= s.nr_total_entries) return;
  s.nr_total_entries += DMA_DEBUG_ENTRIES;
  k.printk.log(KERN_INFO, `dma_debug_entry pool grown to ${s.nr_total_entries} (${(s.nr_total_entries / DMA_DEBUG_ENTRIES) * 100}%)`, "DMA-API: ");
}

/**
 * dma_debug_count_entries_range - dma_debug_count_entries for each total in (@from, @to], as
 * the entries of one call were added one by one; one look-up when no step is crossed.
 */
export function dma_debug_count_entries_range(k: Kernel, from: number, to: number): void {
  if (to <= knobs(k).nr_total_entries) return;
  for (let t = from + 1; t <= to; t++) dma_debug_count_entries(k, t);
}
