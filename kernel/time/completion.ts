/**
 * Completions: "this thing happened" between a waiter (a kernel thread) and a completer
 * (any context: an interrupt handler, a timer, another thread).
 *
 * `done` counts completions not yet consumed; complete_all() sets it to UINT_MAX so every
 * present and future waiter passes until reinit_completion(). Waiting is async
 * (`await wait_for_completion(&c)`) and legal only in process context in a kernel thread;
 * from anywhere else it reports the sleeping-in-atomic bug and returns without waiting.
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";
import { might_sleep_in } from "../irq/context.ts";
import { MAX_SCHEDULE_TIMEOUT, NSEC_PER_JIFFY, jiffies } from "./jiffies.ts";
import { WaitList } from "./wait.ts";

const UINT_MAX = 0xffffffff;

/** struct completion. Create with `new completion()` or DECLARE_COMPLETION(). */
export class completion {
  done = 0;
  _wait?: WaitList = new WaitList();
}

/** The wait list, created on first use so a completion built as a plain object still works. */
function waiters(x: completion): WaitList {
  return (x._wait ??= new WaitList());
}

/** init_completion - make a completion ready for use (not done). Context: any. */
export function init_completion(x: completion): void {
  x.done = 0;
  waiters(x);
}

/** reinit_completion - reset `done` for reuse; waiters must be gone. Context: any. */
export function reinit_completion(x: completion): void {
  x.done = 0;
}

/** DECLARE_COMPLETION - a new, initialised completion. */
export function DECLARE_COMPLETION(): completion {
  return new completion();
}

/**
 * complete - signal one waiter (or the next one to wait)
 * Context: any, including hardirq.
 */
export function complete(x: completion): void {
  if (x.done !== UINT_MAX) x.done++;
  waiters(x).wakeOne(current_kernel());
}

/**
 * complete_all - signal every present and future waiter until reinit_completion()
 * Context: any.
 */
export function complete_all(x: completion): void {
  x.done = UINT_MAX;
  waiters(x).wakeAll(current_kernel());
}

function consume(x: completion): void {
  if (x.done !== UINT_MAX) x.done--;
}

/**
 * try_wait_for_completion - consume a completion without sleeping
 * Context: any. Returns: true if one was consumed, false if it would have to wait.
 */
export function try_wait_for_completion(x: completion): boolean {
  if (!x.done) return false;
  consume(x);
  return true;
}

/** completion_done - true if a wait would not sleep (no waiters pending). Context: any. */
export function completion_done(x: completion): boolean {
  return x.done !== 0;
}

async function wait_common(k: Kernel, x: completion, timeout: number, where: string): Promise<number> {
  if (!might_sleep_in(k, where)) {
    // Graceful failure: take a completion that is already there, never sleep.
    return try_wait_for_completion(x) ? Math.max(1, timeout) : 0;
  }
  if (timeout === MAX_SCHEDULE_TIMEOUT) {
    await waiters(x).wait(k, () => x.done !== 0);
    consume(x);
    return MAX_SCHEDULE_TIMEOUT;
  }
  const expire = jiffies() + Math.max(0, timeout);
  const ok = await waiters(x).wait(k, () => x.done !== 0, expire * NSEC_PER_JIFFY);
  if (!ok) return 0;
  consume(x);
  return Math.max(1, expire - jiffies());
}

/**
 * wait_for_completion - sleep until the completion is signalled
 * Context: process context in a kernel thread; await it.
 */
export async function wait_for_completion(x: completion): Promise<void> {
  await wait_common(current_kernel(), x, MAX_SCHEDULE_TIMEOUT, "wait_for_completion");
}

/**
 * wait_for_completion_timeout - sleep until signalled or `timeout` jiffies passed
 * Context: process context in a kernel thread; await it.
 * Returns: 0 on timeout, else the jiffies left (at least 1).
 */
export function wait_for_completion_timeout(x: completion, timeout: number): Promise<number> {
  return wait_common(current_kernel(), x, timeout, "wait_for_completion_timeout");
}

/** wait_for_completion_interruptible - no signals here: always 0 once completed. */
export async function wait_for_completion_interruptible(x: completion): Promise<number> {
  await wait_common(current_kernel(), x, MAX_SCHEDULE_TIMEOUT, "wait_for_completion_interruptible");
  return 0;
}

/** wait_for_completion_interruptible_timeout - as wait_for_completion_timeout (no signals). */
export function wait_for_completion_interruptible_timeout(x: completion, timeout: number): Promise<number> {
  return wait_common(current_kernel(), x, timeout, "wait_for_completion_interruptible_timeout");
}

/** wait_for_completion_killable - as wait_for_completion_interruptible. */
export const wait_for_completion_killable = wait_for_completion_interruptible;
/** wait_for_completion_io - I/O accounting is not modelled. */
export const wait_for_completion_io = wait_for_completion;
export const wait_for_completion_io_timeout = wait_for_completion_timeout;
