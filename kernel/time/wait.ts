/**
 * Sleeping building blocks for the time, completion and workqueue code (not driver API).
 *
 * A kernel thread sleeps by parking itself (Exec.block) until something calls Exec.wake on
 * it: an expiry event for timed sleeps, a completer, a finishing work item. Wake-ups can be
 * spurious (an IRQ thread's wake lands while its handler sleeps in msleep), so every caller
 * re-checks its condition in a loop, as kernel code does around schedule().
 */

import type { Kernel } from "../core/kernel.ts";
import type { KThread } from "../core/sched.ts";

/**
 * sleep_until_ns - park the running thread until woken or until virtual time `deadlineNs`
 * (Infinity: only a wake ends it). The caller has checked that it may sleep.
 */
export async function sleep_until_ns(k: Kernel, deadlineNs: number): Promise<void> {
  const t = k.exec.thread!;
  const ev = Number.isFinite(deadlineNs)
    ? k.platform.at(Math.max(deadlineNs, k.platform.now()), `wakeup:${t.name}`, () => k.exec.wake(t))
    : null;
  await k.exec.block();
  k.platform.cancel(ev);
}

/** A list of sleeping threads waiting for one condition (a tiny wait_queue_head). */
export class WaitList {
  private readonly waiters: KThread[] = [];

  get length(): number {
    return this.waiters.length;
  }

  /**
   * Sleep until `cond()` holds or virtual time reaches `deadlineNs`.
   * Returns: true if the condition holds, false on timeout.
   */
  async wait(k: Kernel, cond: () => boolean, deadlineNs = Infinity): Promise<boolean> {
    const t = k.exec.thread!;
    while (!cond()) {
      if (k.exec.now() >= deadlineNs) return false;
      this.waiters.push(t);
      await sleep_until_ns(k, deadlineNs);
      this.remove(t);
    }
    return true;
  }

  /** Wake the first sleeper; returns it (or null). */
  wakeOne(k: Kernel): KThread | null {
    const t = this.waiters.shift() ?? null;
    if (t) k.exec.wake(t);
    return t;
  }

  /** Wake every sleeper (each re-checks its condition). */
  wakeAll(k: Kernel): void {
    if (this.waiters.length === 0) return;
    const all = this.waiters.splice(0);
    for (const t of all) k.exec.wake(t);
  }

  private remove(t: KThread): void {
    const i = this.waiters.indexOf(t);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}
