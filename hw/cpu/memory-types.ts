/**
 * The memory system's vocabulary: the memory type of a CPU access, CPU timing, construction
 * options, statistics and the checker hooks (hw/cpu/memory-system.ts is the model).
 *
 * Kept apart from the model, which is the hottest code in the simulator, so that the board, the
 * kernel's platform layer and tests name these types without reading through the cache code.
 * The model copies the MEM_* constants it compares on every access into module constants.
 */

import type { Prng } from "../core/prng.ts";
import type { CacheGeometry } from "./cache.ts";

export const MEM_CACHED = 0;
export const MEM_UNCACHED = 1;
export const MEM_WC = 2;
export type MemType = typeof MEM_CACHED | typeof MEM_UNCACHED | typeof MEM_WC;

export interface CpuTiming {
  l1HitNs: number;
  llcHitNs: number;
  ramNs: number;
  uncachedNs: number;
  mmioNs: number;
}

export interface MemorySystemOptions {
  cpus: number;
  l1: CacheGeometry;
  llc: CacheGeometry;
  timing: CpuTiming;
  evictionRate: number;
  prefetchRate: number;
  prng: Prng;
}

export class MemoryStats {
  l1Hits = 0;
  l1Misses = 0;
  llcHits = 0;
  llcMisses = 0;
  writebacks = 0;
  cleanedLines = 0;
  invalidatedLines = 0;
  evictionsInjected = 0;
  prefetches = 0;
  uncachedAccesses = 0;
  mmioReads = 0;
  mmioWrites = 0;
  deviceReadBytes = 0;
  deviceWriteBytes = 0;
  deviceErrors = 0;
}

/**
 * Events only a checker needs (the kernel's coherence sanitizer). Unset by default: each hook
 * site then costs one null check.
 */
export interface MemoryObserver {
  /**
   * A dirty line is about to be written back to RAM: `data[off..off+64)` replaces the 64 bytes
   * at `addr` (line-aligned). RAM still holds the old bytes when this is called.
   */
  onWriteBack(addr: number, data: Uint8Array, off: number): void;
  /**
   * A CPU store of `len` bytes at `addr` (within one line) has just reached the cache, or RAM
   * for uncached and write-combining types. Called line by line as the store proceeds, so the
   * checker knows the new bytes before any later write-back of the line.
   */
  onCpuStore(addr: number, len: number): void;
  /**
   * A cached CPU load by `cpu` of `len` bytes at `addr` (within one line) has just returned
   * `dst[off..off+len)`. Called line by line as the load proceeds, so the checker sees each
   * line's bytes before a later line's miss can evict it.
   */
  onCpuLoad(cpu: number, addr: number, len: number, dst: Uint8Array, off: number): void;
  /** The line at `addr` has just left every cache level (invalidated, flushed or evicted whole). */
  onLineGone(addr: number): void;
}
