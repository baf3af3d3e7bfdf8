/**
 * DMA mapping definitions shared by every part of kernel/dma: directions, attributes, the
 * error cookie, and the out-parameter holder that stands in for C's `dma_addr_t *`.
 * Values follow include/linux/dma-direction.h and include/linux/dma-mapping.h.
 */

import { BUG } from "../core/oops.ts";
import type { dma_addr_t } from "../include/types.ts";

export const DMA_BIDIRECTIONAL = 0;
export const DMA_TO_DEVICE = 1;
export const DMA_FROM_DEVICE = 2;
export const DMA_NONE = 3;

/** enum dma_data_direction. */
export type dma_data_direction =
  | typeof DMA_BIDIRECTIONAL
  | typeof DMA_TO_DEVICE
  | typeof DMA_FROM_DEVICE
  | typeof DMA_NONE;

// DMA_ATTR_* bit flags (Documentation/core-api/dma-attributes.rst). Bit 3 was NON_CONSISTENT
// (removed upstream) and stays unused so the numbers match Linux.
export const DMA_ATTR_WEAK_ORDERING = 1 << 1;
export const DMA_ATTR_WRITE_COMBINE = 1 << 2;
export const DMA_ATTR_NO_KERNEL_MAPPING = 1 << 4;
export const DMA_ATTR_SKIP_CPU_SYNC = 1 << 5;
export const DMA_ATTR_FORCE_CONTIGUOUS = 1 << 6;
export const DMA_ATTR_ALLOC_SINGLE_PAGES = 1 << 7;
export const DMA_ATTR_NO_WARN = 1 << 8;
export const DMA_ATTR_PRIVILEGED = 1 << 9;
export const DMA_ATTR_MMIO = 1 << 10;
export const DMA_ATTR_DEBUGGING_IGNORE_CACHELINES = 1 << 11;
export const DMA_ATTR_REQUIRE_COHERENT = 1 << 12;

/**
 * DMA_MAPPING_ERROR - the cookie a failed map returns. Linux uses all-ones; our dma_addr_t is a
 * safe integer, so "all ones" is 2^53 - 1. No bus address can take that value: RAM and MMIO
 * live below 2^48 and the direct path maps bus address = physical address.
 * Drivers must test with dma_mapping_error(), never compare themselves.
 */
export const DMA_MAPPING_ERROR = Number.MAX_SAFE_INTEGER as dma_addr_t;

/** SIZE_MAX as dma_max_mapping_size() reports it (no limit on the direct path). */
export const SIZE_MAX = Number.MAX_SAFE_INTEGER;

/** A `dma_addr_t *` out-parameter: dma_alloc_coherent fills `value`. */
export interface dma_addr_ref {
  value: dma_addr_t;
}

/** dma_addr_holder - a fresh out-parameter for dma_alloc_coherent and friends. */
export function dma_addr_holder(): dma_addr_ref {
  return { value: 0 as dma_addr_t };
}

/** valid_dma_direction - true for BIDIRECTIONAL, TO_DEVICE and FROM_DEVICE. */
export function valid_dma_direction(dir: number): dir is dma_data_direction {
  return dir === DMA_BIDIRECTIONAL || dir === DMA_TO_DEVICE || dir === DMA_FROM_DEVICE;
}

const DIR_NAMES = ["DMA_BIDIRECTIONAL", "DMA_TO_DEVICE", "DMA_FROM_DEVICE", "DMA_NONE"];

/** dir2name: "DMA_FROM_DEVICE" for 2; "DMA_INVALID(7)" for junk. */
export function dma_dir_name(dir: number): string {
  return DIR_NAMES[dir] ?? `DMA_INVALID(${dir})`;
}

/**
 * The BUG_ON(!valid_dma_direction(dir)) of every streaming call: mapping, syncing or unmapping
 * with DMA_NONE or a junk value is a kernel BUG (an oops), not a recoverable error.
 */
export function dma_check_direction(dir: number, what: string): asserts dir is dma_data_direction {
  if (!valid_dma_direction(dir)) BUG(`${what} with invalid direction ${dma_dir_name(dir)}`);
}

/** "0x0000000012345000", the %pad / %016llx form dma-debug prints. */
export function dma_fmt_addr(addr: number): string {
  return `0x${addr.toString(16).padStart(16, "0")}`;
}
