/**
 * Delays and sleeps (Linux's delay.h and schedule_timeout()).
 *
 * Busy-waits (ndelay, udelay, mdelay) burn CPU: they charge their length to the running
 * CPU, so the CPU stays busy and virtual time moves for the code that spins; they are legal
 * in any context. Sleeps (msleep, usleep_range, schedule_timeout...) park the calling kernel
 * thread until a wake-up event and are async: `await msleep(10)`. Called where sleeping is
 * forbidden (hardirq, softirq, no thread) they report "BUG: sleeping function called from
 * invalid context" and return at once without sleeping.
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";
import type { KThread } from "../core/sched.ts";
import { KERN_ERR } from "../core/printk.ts";
import { might_sleep_in } from "../irq/context.ts";
import {
  MAX_SCHEDULE_TIMEOUT, NSEC_PER_JIFFY, NSEC_PER_MSEC, NSEC_PER_USEC, jiffies, msecs_to_jiffies, jiffies_to_msecs,
} from "./jiffies.ts";
import { sleep_until_ns } from "./wait.ts";

function charge(k: Kernel, ns: number): void {
  if (!(ns > 0)) return;
  const p = k.platform as { chargeCpu?: (cpu: number, ns: number) => void };
  // Platform.chargeCpu is how a busy-wait makes the CPU busy; older platforms lack it.
  if (typeof p.chargeCpu === "function") p.chargeCpu(k.exec.cpu, ns);
}

/** ndelay - spin for `ns` nanoseconds. Context: any. */
export function ndelay(ns: number): void {
  charge(current_kernel(), ns);
}

/** udelay - spin for `us` microseconds. Context: any. */
export function udelay(us: number): void {
  charge(current_kernel(), us * NSEC_PER_USEC);
}

/** mdelay - spin for `ms` milliseconds (wasteful: prefer msleep in process context). Context: any. */
export function mdelay(ms: number): void {
  charge(current_kernel(), ms * NSEC_PER_MSEC);
}

/**
 * schedule_timeout - sleep until woken or `timeout` jiffies have passed
 * Context: process context in a kernel thread.
 * Returns: the jiffies left (0 when the time ran out); MAX_SCHEDULE_TIMEOUT sleeps until
 * woken and returns MAX_SCHEDULE_TIMEOUT. Any wake-up ends the sleep early, so callers loop.
 */
export async function schedule_timeout(timeout: number): Promise<number> {
  const k = current_kernel();
  if (!might_sleep_in(k, "schedule_timeout")) return 0;
  if (timeout === MAX_SCHEDULE_TIMEOUT) {
    await sleep_until_ns(k, Infinity);
    return MAX_SCHEDULE_TIMEOUT;
  }
  if (timeout < 0) {
    k.printk.log(KERN_ERR, `schedule_timeout: wrong timeout value ${timeout}`);
    return 0;
  }
  const expire = jiffies() + timeout;
  await sleep_until_ns(k, expire * NSEC_PER_JIFFY);
  const left = expire - jiffies();
  return left < 0 ? 0 : left;
}

/** schedule_timeout_uninterruptible - as schedule_timeout (there are no signals here). */
export const schedule_timeout_uninterruptible = schedule_timeout;
export const schedule_timeout_interruptible = schedule_timeout;
export const schedule_timeout_killable = schedule_timeout;
export const schedule_timeout_idle = schedule_timeout;

/**
 * msleep - sleep at least `msecs` milliseconds
 * Context: process context in a kernel thread (await it).
 * Wakes at a tick boundary, so the sleep lasts between msecs and msecs + 1 ms.
 */
export async function msleep(msecs: number): Promise<void> {
  const k = current_kernel();
  if (!might_sleep_in(k, "msleep")) return;
  let timeout = msecs_to_jiffies(msecs) + 1;
  while (timeout) timeout = await schedule_timeout(timeout);
}

/** msleep_interruptible - msleep; returns the milliseconds left (always 0: no signals). */
export async function msleep_interruptible(msecs: number): Promise<number> {
  const k = current_kernel();
  if (!might_sleep_in(k, "msleep_interruptible")) return msecs;
  let timeout = msecs_to_jiffies(msecs) + 1;
  while (timeout) timeout = await schedule_timeout(timeout);
  return jiffies_to_msecs(timeout);
}

/** ssleep - sleep `seconds` seconds. */
export function ssleep(seconds: number): Promise<void> {
  return msleep(seconds * 1000);
}

/**
 * usleep_range - sleep between `min` and `max` microseconds (high-resolution)
 * Context: process context in a kernel thread (await it).
 * With nothing else to coalesce with, the hrtimer fires at the end of the range: `max`.
 */
export async function usleep_range(min: number, max: number): Promise<void> {
  const k = current_kernel();
  if (!might_sleep_in(k, "usleep_range")) return;
  const deadline = k.exec.now() + Math.max(min, max) * NSEC_PER_USEC;
  while (k.exec.now() < deadline) await sleep_until_ns(k, deadline);
}

/**
 * fsleep - "flexible sleep": spin for tiny delays, sleep otherwise.
 * Context: process context for delays above 10 us.
 */
export async function fsleep(usecs: number): Promise<void> {
  if (usecs <= 10) udelay(usecs);
  else if (usecs <= 20_000) await usleep_range(usecs, 2 * usecs);
  else await msleep(Math.ceil(usecs / 1000));
}

/** wake_up_process - make a sleeping kernel thread runnable. Context: any. */
export function wake_up_process(t: KThread): void {
  current_kernel().exec.wake(t);
}
