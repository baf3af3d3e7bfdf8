/**
 * Kernel time: jiffies, ktime and the conversions between them.
 *
 * HZ is 1000, so one jiffy is one millisecond of virtual time and tick n happens at exactly
 * n ms. `jiffies()` is derived from the running code's view of time (event time plus the CPU
 * time it has spent so far), so a handler that busy-waits sees jiffies move. Jiffies start
 * at 0 and never wrap (a JS number holds 2^53 ms), but the time_after family is written the
 * wrap-safe way, as drivers must.
 */

import { current_kernel } from "../core/current.ts";

export const HZ = 1000;
export const MSEC_PER_SEC = 1000;
export const USEC_PER_SEC = 1_000_000;
export const NSEC_PER_SEC = 1_000_000_000;
export const NSEC_PER_MSEC = 1_000_000;
export const NSEC_PER_USEC = 1000;
export const USEC_PER_MSEC = 1000;
/** Length of one jiffy in ns. */
export const NSEC_PER_JIFFY = NSEC_PER_SEC / HZ;
/** "Sleep forever" for schedule_timeout() and wait_*_timeout(). */
export const MAX_SCHEDULE_TIMEOUT = Number.MAX_SAFE_INTEGER;
/** What the conversions return for negative or absurd inputs (as Linux). */
export const MAX_JIFFY_OFFSET = Math.floor(Number.MAX_SAFE_INTEGER / 2) - 1;

/** ktime_t: nanoseconds. */
export type ktime_t = number;

/** jiffies - ticks since boot. Context: any. */
export function jiffies(): number {
  return Math.floor(current_kernel().exec.now() / NSEC_PER_JIFFY);
}

/** get_jiffies_64 - the same as jiffies() (no 32-bit wrap here). */
export function get_jiffies_64(): number {
  return jiffies();
}

/** msecs_to_jiffies - round up to whole jiffies; negative → MAX_JIFFY_OFFSET. */
export function msecs_to_jiffies(m: number): number {
  if (m < 0) return MAX_JIFFY_OFFSET;
  return Math.ceil((m * HZ) / MSEC_PER_SEC);
}

/** usecs_to_jiffies - round up to whole jiffies. */
export function usecs_to_jiffies(u: number): number {
  if (u < 0) return MAX_JIFFY_OFFSET;
  return Math.ceil((u * HZ) / USEC_PER_SEC);
}

/** nsecs_to_jiffies - round down, as Linux's nsecs_to_jiffies64. */
export function nsecs_to_jiffies(n: number): number {
  return Math.floor((n * HZ) / NSEC_PER_SEC);
}

export function jiffies_to_msecs(j: number): number {
  return (j * MSEC_PER_SEC) / HZ;
}

export function jiffies_to_usecs(j: number): number {
  return (j * USEC_PER_SEC) / HZ;
}

export function jiffies_to_nsecs(j: number): number {
  return j * NSEC_PER_JIFFY;
}

/** time_after - true if a is after b (wrap-safe form). */
export function time_after(a: number, b: number): boolean {
  return b - a < 0;
}

export function time_before(a: number, b: number): boolean {
  return time_after(b, a);
}

export function time_after_eq(a: number, b: number): boolean {
  return a - b >= 0;
}

export function time_before_eq(a: number, b: number): boolean {
  return time_after_eq(b, a);
}

/** time_in_range - a in [b, c]. */
export function time_in_range(a: number, b: number, c: number): boolean {
  return time_after_eq(a, b) && time_before_eq(a, c);
}

/** time_is_before_jiffies - a is in the past. */
export function time_is_before_jiffies(a: number): boolean {
  return time_after(jiffies(), a);
}

/** time_is_after_jiffies - a is in the future. */
export function time_is_after_jiffies(a: number): boolean {
  return time_before(jiffies(), a);
}

export function time_is_before_eq_jiffies(a: number): boolean {
  return time_after_eq(jiffies(), a);
}

export function time_is_after_eq_jiffies(a: number): boolean {
  return time_before_eq(jiffies(), a);
}

// ------------------------------------------------------------------ ktime

/** ktime_get_ns - monotonic virtual time in ns. Context: any. */
export function ktime_get_ns(): number {
  return Math.floor(current_kernel().exec.now());
}

/** ktime_get - monotonic virtual time as ktime_t. */
export function ktime_get(): ktime_t {
  return ktime_get_ns();
}

/** ktime_get_boottime_ns - no suspend here, so the same as ktime_get_ns. */
export const ktime_get_boottime_ns = ktime_get_ns;
export const ktime_get_raw_ns = ktime_get_ns;

export function ktime_to_ns(t: ktime_t): number {
  return t;
}

export function ns_to_ktime(ns: number): ktime_t {
  return ns;
}

export function ktime_to_us(t: ktime_t): number {
  return Math.floor(t / NSEC_PER_USEC);
}

export function ktime_to_ms(t: ktime_t): number {
  return Math.floor(t / NSEC_PER_MSEC);
}

export function ktime_add_ns(t: ktime_t, ns: number): ktime_t {
  return t + ns;
}

export function ktime_add_us(t: ktime_t, us: number): ktime_t {
  return t + us * NSEC_PER_USEC;
}

export function ktime_add_ms(t: ktime_t, ms: number): ktime_t {
  return t + ms * NSEC_PER_MSEC;
}

export function ktime_sub(a: ktime_t, b: ktime_t): ktime_t {
  return a - b;
}

export function ktime_us_delta(later: ktime_t, earlier: ktime_t): number {
  return ktime_to_us(later - earlier);
}

export function ktime_ms_delta(later: ktime_t, earlier: ktime_t): number {
  return ktime_to_ms(later - earlier);
}

export function ktime_after(a: ktime_t, b: ktime_t): boolean {
  return a > b;
}

export function ktime_before(a: ktime_t, b: ktime_t): boolean {
  return a < b;
}
