/**
 * Execution-context queries (Linux's preempt.h / hardirq.h) and might_sleep().
 *
 * The context comes from Exec: "hardirq" while an interrupt handler runs, "softirq" for
 * timers and tasklets, "process" for kernel threads (probe, workqueues, threaded handlers).
 * Sleeping needs process context *and* a kernel thread to park; anything else is the classic
 * "sleeping function called from invalid context" bug, reported as a WARN (never a crash):
 * the sleeping call then returns at once without sleeping.
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";
import { KERN_ERR } from "../core/printk.ts";

/** in_hardirq - true while an interrupt handler (top half) runs. */
export function in_hardirq(): boolean {
  return current_kernel().exec.context === "hardirq";
}

/** in_irq - old name of in_hardirq(). */
export const in_irq = in_hardirq;

/** in_softirq - true in softirq context (timer callbacks, tasklets). */
export function in_softirq(): boolean {
  return current_kernel().exec.context === "softirq";
}

/** in_serving_softirq - true while a softirq handler runs (same as in_softirq here). */
export const in_serving_softirq = in_softirq;

/** in_interrupt - true in hardirq or softirq context. */
export function in_interrupt(): boolean {
  return current_kernel().exec.context !== "process";
}

/** in_task - true in process context. */
export function in_task(): boolean {
  return current_kernel().exec.context === "process";
}

/**
 * in_atomic - true where sleeping is forbidden. Spinlocks are tracked by their own
 * subsystem; here atomic means interrupt context or no thread to put to sleep.
 */
export function in_atomic(): boolean {
  const e = current_kernel().exec;
  return e.context !== "process" || e.thread === null;
}

/**
 * might_sleep_in - check that `k`'s running code may sleep; WARN if not.
 * @where: the sleeping function, named in the report ("msleep", "wait_for_completion").
 * Context: any.
 * Returns: true when the caller may sleep; false after reporting the bug (the caller must
 * then return without sleeping).
 */
export function might_sleep_in(k: Kernel, where: string): boolean {
  const e = k.exec;
  if (e.context === "process" && e.thread !== null) return true;
  k.warn(`BUG: sleeping function called from invalid context at ${where}`);
  const hard = e.context === "hardirq" ? 1 : 0;
  const who = e.thread ? e.thread.name : `swapper/${e.cpu}`;
  k.printk.log(KERN_ERR, `in_atomic(): 1, irqs_disabled(): ${hard}, non_block: 0, pid: 0, name: ${who}`);
  k.printk.log(KERN_ERR, `context: ${e.context}${e.thread ? "" : " (no kernel thread to put to sleep)"}${e.owner ? `, driver ${e.owner}` : ""}`);
  return false;
}

/**
 * might_sleep - annotate a function that may sleep; WARN when called from atomic context.
 * Context: any. Returns: true when sleeping is allowed here.
 */
export function might_sleep(where = "might_sleep"): boolean {
  return might_sleep_in(current_kernel(), where);
}
