/**
 * Kernel timers (timer_list): a callback that runs in softirq context on a CPU when jiffies
 * reaches `expires`.
 *
 * Theory of operation
 * - Arming a timer schedules one platform event at tick `expires` (exactly expires ms of
 *   virtual time); an expiry in the past or the present fires at the next tick, as the timer
 *   wheel does. The timer runs on the CPU that armed it (add_timer_on picks one), attributed
 *   to the driver that armed it, and is detached before its callback runs, so the callback
 *   may re-arm it.
 * - Pending timers are remembered per kernel so a crashed driver's timers can be cancelled.
 * - del_timer_sync() cannot overlap a running callback here (one CPU runs at a time), so it
 *   only checks the two ways drivers misuse it: from hardirq context on a timer that is not
 *   TIMER_IRQSAFE, and from the timer's own callback (a deadlock on real hardware).
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";
import type { ScheduledEvent } from "../platform/platform.ts";
import { NSEC_PER_JIFFY, jiffies } from "./jiffies.ts";

export const TIMER_CPUMASK = 0x0003ffff;
export const TIMER_MIGRATING = 0x00040000;
export const TIMER_DEFERRABLE = 0x00080000;
export const TIMER_PINNED = 0x00200000;
export const TIMER_IRQSAFE = 0x00400000;

export type timer_fn = (t: timer_list) => void;

/** struct timer_list. Fields starting with `_` belong to the timer core. */
export class timer_list {
  function: timer_fn | null = null;
  expires = 0;
  flags = 0;
  _ev: ScheduledEvent | null = null;
  _owner = "";
  _cpu = 0;
  _running = false;
  _setup = false;
  _shutdown = false;
  /** Armed by a kernel object (delayed work) whose own crash cleanup owns it. */
  _internal = false;
  _name = "timer";
  _k: Kernel | null = null;
  _fire: (() => void) | null = null;
  _call: (() => void) | null = null;
}

/** Per-kernel timer state: which timers are pending (for crash cleanup and statistics). */
class TimerBase {
  readonly pending = new Set<timer_list>();
  fired = 0;

  constructor(k: Kernel) {
    k.onCrash((owner) => {
      for (const t of [...this.pending]) {
        if (t._owner === owner && !t._internal) timer_detach(k, t);
      }
    });
  }
}

function timer_base(k: Kernel): TimerBase {
  return k.state("timer", () => new TimerBase(k));
}

/** Number of timers pending in `k` (for reports and tests). */
export function timers_pending_count(k: Kernel): number {
  return timer_base(k).pending.size;
}

/**
 * timer_setup - initialise a timer
 * @timer: the timer
 * @fn: callback, called with the timer in softirq context
 * @flags: TIMER_* flags
 * Context: any.
 */
export function timer_setup(timer: timer_list, fn: timer_fn, flags: number): void {
  const k = current_kernel();
  // A timer built as a plain object gets its internal fields here.
  if (timer._ev === undefined) timer._ev = null;
  timer._running ??= false;
  timer._internal ??= false;
  timer._k ??= null;
  timer._fire ??= null;
  timer._call ??= null;
  timer.function = fn;
  timer.flags = flags;
  timer._setup = true;
  timer._shutdown = false;
  timer._owner = k.exec.owner;
  timer._name = `timer:${fn.name || "anonymous"}`;
}

function timer_detach(k: Kernel, t: timer_list): boolean {
  if (!t._ev) return false;
  k.platform.cancel(t._ev);
  t._ev = null;
  timer_base(k).pending.delete(t);
  return true;
}

function timer_expire(k: Kernel, t: timer_list): void {
  t._ev = null;
  const base = timer_base(k);
  base.pending.delete(t);
  base.fired++;
  if (!t.function) return;
  t._running = true;
  k.exec.runOn(t._cpu, "softirq", t._owner, t._name, t._call!);
  t._running = false;
}

function timer_arm(k: Kernel, t: timer_list, expires: number, cpu: number): void {
  if (t._k !== k || !t._fire) {
    t._k = k;
    t._fire = () => timer_expire(k, t);
    t._call = () => t.function?.(t);
  }
  t.expires = expires;
  t._cpu = cpu;
  if (k.exec.owner) t._owner = k.exec.owner;
  // The wheel runs a timer at the first tick where jiffies >= expires, never the current one.
  const tick = Math.max(expires, jiffies() + 1);
  t._ev = k.platform.at(tick * NSEC_PER_JIFFY, t._name, t._fire);
  timer_base(k).pending.add(t);
}

function timer_check_setup(k: Kernel, t: timer_list, what: string): boolean {
  if (t._setup) return !t._shutdown;
  k.warn(`${what}() on a timer that was never set up with timer_setup()`);
  return false;
}

/**
 * mod_timer - (re)arm a timer to fire at `expires` (in jiffies)
 * Context: any.
 * Returns: 1 if the timer was pending (and is now modified), 0 if it was inactive.
 * A timer shut down with timer_shutdown*() is not re-armed.
 */
export function mod_timer(timer: timer_list, expires: number): number {
  const k = current_kernel();
  const was = timer_detach(k, timer) ? 1 : 0;
  if (!timer_check_setup(k, timer, "mod_timer")) return was;
  timer_arm(k, timer, expires, k.exec.cpu);
  return was;
}

/** mod_timer_pending - modify a timer only if it is pending. Returns: 1 if modified. */
export function mod_timer_pending(timer: timer_list, expires: number): number {
  return timer_pending(timer) ? mod_timer(timer, expires) : 0;
}

/** timer_reduce - move a pending timer earlier (or arm an inactive one). Returns: 1 if it was pending. */
export function timer_reduce(timer: timer_list, expires: number): number {
  if (timer_pending(timer) && !(expires < timer.expires)) return 1;
  return mod_timer(timer, expires);
}

/**
 * add_timer - arm an inactive timer at timer.expires
 * Context: any. Arming a pending timer is a bug (WARN, nothing done).
 */
export function add_timer(timer: timer_list): void {
  const k = current_kernel();
  if (timer_pending(timer)) {
    k.warn("add_timer() on a pending timer (use mod_timer)");
    return;
  }
  if (!timer_check_setup(k, timer, "add_timer")) return;
  timer_arm(k, timer, timer.expires, k.exec.cpu);
}

/** add_timer_on - arm an inactive timer on a given CPU. */
export function add_timer_on(timer: timer_list, cpu: number): void {
  const k = current_kernel();
  if (timer_pending(timer)) {
    k.warn("add_timer_on() on a pending timer");
    return;
  }
  if (!timer_check_setup(k, timer, "add_timer_on")) return;
  timer_arm(k, timer, timer.expires, cpu % k.platform.cpus);
}

/** timer_pending - true while the timer is armed and has not fired. Context: any. */
export function timer_pending(timer: timer_list): boolean {
  return timer._ev != null;
}

/**
 * del_timer - deactivate a timer (does not wait for a running callback)
 * Context: any.
 * Returns: 1 if the timer was pending, 0 otherwise.
 */
export function del_timer(timer: timer_list): number {
  return timer_detach(current_kernel(), timer) ? 1 : 0;
}

/** timer_delete - new name of del_timer(). */
export const timer_delete = del_timer;

/**
 * try_to_del_timer_sync - deactivate unless the callback is running
 * Returns: -1 if the callback is running, else as del_timer().
 */
export function try_to_del_timer_sync(timer: timer_list): number {
  if (timer._running) return -1;
  return del_timer(timer);
}

/**
 * del_timer_sync - deactivate a timer and wait for its callback to finish
 * Context: process or softirq context; from hardirq only for TIMER_IRQSAFE timers. Never from
 * the timer's own callback (deadlock: WARN, the timer is still deactivated).
 * Returns: 1 if the timer was pending, 0 otherwise.
 */
export function del_timer_sync(timer: timer_list): number {
  const k = current_kernel();
  if (k.exec.context === "hardirq" && !(timer.flags & TIMER_IRQSAFE)) {
    k.warn(`del_timer_sync() from hardirq context on non-TIMER_IRQSAFE timer ${timer._name}`);
  }
  if (timer._running) {
    k.warn(`del_timer_sync() called from the callback of ${timer._name} itself: would deadlock`);
  }
  return timer_detach(k, timer) ? 1 : 0;
}

/** timer_delete_sync - new name of del_timer_sync(). */
export const timer_delete_sync = del_timer_sync;

/** timer_shutdown_sync - deactivate and forbid re-arming (teardown). Returns: 1 if it was pending. */
export function timer_shutdown_sync(timer: timer_list): number {
  const r = del_timer_sync(timer);
  timer._shutdown = true;
  return r;
}

/** timer_shutdown - as timer_shutdown_sync() without waiting. */
export function timer_shutdown(timer: timer_list): number {
  const r = del_timer(timer);
  timer._shutdown = true;
  return r;
}

/** destroy_timer_on_stack - nothing to free here; kept for API parity. */
export function destroy_timer_on_stack(_timer: timer_list): void {}
