/**
 * Workqueues, the driver API (include/linux/workqueue.h): deferred work in process context.
 *
 * queue_work / schedule_work return false when the item is already pending (it runs once).
 * Calls that wait in Linux (cancel_work_sync, flush_work, flush_workqueue, drain and
 * destroy_workqueue) return Promises: cancelling takes effect at once, awaiting waits for
 * an instance that is still running. Waiting is legal only in a kernel thread in process
 * context; elsewhere it reports the sleeping-in-atomic bug and returns without waiting.
 * A work item waiting for itself (flush or cancel_sync from its own function, flushing its
 * own workqueue) would deadlock: WARN, and no wait.
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";
import { might_sleep_in } from "../irq/context.ts";
import { timer_pending, del_timer } from "./timer.ts";
import {
  WQ_DFL_ACTIVE, WQ_MAX_ACTIVE, delayed_work, work_struct, workqueue_struct, wq_core, type WqCore, type work_func_t,
} from "./workqueue-core.ts";

export { WQ_DFL_ACTIVE, WQ_MAX_ACTIVE, delayed_work, work_struct, workqueue_struct, type work_func_t };

export const WQ_BH = 1 << 0;
export const WQ_UNBOUND = 1 << 1;
export const WQ_FREEZABLE = 1 << 2;
export const WQ_MEM_RECLAIM = 1 << 3;
export const WQ_HIGHPRI = 1 << 4;
export const WQ_CPU_INTENSIVE = 1 << 5;
export const WQ_SYSFS = 1 << 6;
export const WQ_POWER_EFFICIENT = 1 << 7;
export const __WQ_ORDERED = 1 << 17;
export const __WQ_LEGACY = 1 << 18;
/** queue_work_on(WORK_CPU_UNBOUND, ...): the local CPU. */
export const WORK_CPU_UNBOUND = -1;

export const system_wq = new workqueue_struct("events", 0, 0);
export const system_highpri_wq = new workqueue_struct("events_highpri", WQ_HIGHPRI, 0);
export const system_long_wq = new workqueue_struct("events_long", 0, 0);
export const system_unbound_wq = new workqueue_struct("events_unbound", WQ_UNBOUND, WQ_MAX_ACTIVE);
export const system_freezable_wq = new workqueue_struct("events_freezable", WQ_FREEZABLE, 0);
export const system_power_efficient_wq = new workqueue_struct("events_power_efficient", WQ_POWER_EFFICIENT, 0);
const SYSTEM_WQS = new Set([system_wq, system_highpri_wq, system_long_wq, system_unbound_wq, system_freezable_wq, system_power_efficient_wq]);

/** INIT_WORK - set the function of a work item. Context: any. */
export function INIT_WORK(work: work_struct, func: work_func_t): void {
  // A work item built as a plain object gets its internal fields here.
  if (work._seq === undefined) Object.assign(work, { ...new work_struct(), _dwork: work._dwork ?? null });
  work.func = func;
  work._name = `work:${func.name || "anonymous"}`;
  work._owner = current_kernel().exec.owner;
}

/** INIT_DELAYED_WORK - set the function of a delayed work item. Context: any. */
export function INIT_DELAYED_WORK(dwork: delayed_work, func: work_func_t): void {
  INIT_WORK(dwork.work, func);
}

/** DECLARE_WORK / DECLARE_DELAYED_WORK - new initialised items. */
export function DECLARE_WORK(func: work_func_t): work_struct {
  const w = new work_struct();
  INIT_WORK(w, func);
  return w;
}

export function DECLARE_DELAYED_WORK(func: work_func_t): delayed_work {
  const d = new delayed_work();
  INIT_DELAYED_WORK(d, func);
  return d;
}

/** to_delayed_work - the delayed_work a work item belongs to. */
export function to_delayed_work(work: work_struct): delayed_work {
  return work._dwork!;
}

/** work_pending - queued (or its timer armed) and not yet started. */
export function work_pending(work: work_struct): boolean {
  return work._pending;
}

export function delayed_work_pending(dwork: delayed_work): boolean {
  return dwork.work._pending;
}

/** work_busy - WORK_BUSY_PENDING (1) | WORK_BUSY_RUNNING (2). */
export function work_busy(work: work_struct): number {
  return (work._pending ? 1 : 0) | (work._worker ? 2 : 0);
}

function claim(k: Kernel, work: work_struct): boolean {
  if (work._pending || work._canceling) return false;
  work._pending = true;
  if (k.exec.owner) work._owner = k.exec.owner;
  return true;
}

function pick_cpu(k: Kernel, cpu: number): number {
  return cpu === WORK_CPU_UNBOUND ? k.exec.cpu : cpu % k.platform.cpus;
}

/**
 * queue_work_on - queue `work` on `wq` to run on `cpu`
 * Context: any. Returns: true if queued, false if it was already pending.
 */
export function queue_work_on(cpu: number, wq: workqueue_struct, work: work_struct): boolean {
  const k = current_kernel();
  if (!claim(k, work)) return false;
  wq_core(k).queue(pick_cpu(k, cpu), wq, work);
  return true;
}

/** queue_work - queue on the local CPU. Context: any. Returns: false if already pending. */
export function queue_work(wq: workqueue_struct, work: work_struct): boolean {
  return queue_work_on(WORK_CPU_UNBOUND, wq, work);
}

/** schedule_work - queue on system_wq. Context: any. Returns: false if already pending. */
export function schedule_work(work: work_struct): boolean {
  return queue_work(system_wq, work);
}

/**
 * queue_delayed_work_on - queue `dwork` after `delay` jiffies
 * Context: any. Returns: false if already pending (the earlier timer stands).
 */
export function queue_delayed_work_on(cpu: number, wq: workqueue_struct, dwork: delayed_work, delay: number): boolean {
  const k = current_kernel();
  if (!claim(k, dwork.work)) return false;
  wq_core(k).queueDelayed(pick_cpu(k, cpu), wq, dwork, delay);
  return true;
}

export function queue_delayed_work(wq: workqueue_struct, dwork: delayed_work, delay: number): boolean {
  return queue_delayed_work_on(WORK_CPU_UNBOUND, wq, dwork, delay);
}

export function schedule_delayed_work(dwork: delayed_work, delay: number): boolean {
  return queue_delayed_work(system_wq, dwork, delay);
}

/**
 * mod_delayed_work_on - (re)queue `dwork` to run `delay` jiffies from now, pending or not
 * Context: any. Returns: true if it was pending (or being cancelled), false if idle.
 */
export function mod_delayed_work_on(cpu: number, wq: workqueue_struct, dwork: delayed_work, delay: number): boolean {
  const k = current_kernel();
  const work = dwork.work;
  if (work._canceling) return true;
  const core = wq_core(k);
  const was = core.grab(work);
  claim(k, work);
  core.queueDelayed(pick_cpu(k, cpu), wq, dwork, delay);
  return was;
}

export function mod_delayed_work(wq: workqueue_struct, dwork: delayed_work, delay: number): boolean {
  return mod_delayed_work_on(WORK_CPU_UNBOUND, wq, dwork, delay);
}

/** cancel_work - drop a pending instance, do not wait. Context: any. Returns: true if one was pending. */
export function cancel_work(work: work_struct): boolean {
  return wq_core(current_kernel()).grab(work);
}

/** cancel_delayed_work - drop a pending (timer or queued) instance. Returns: true if pending. */
export function cancel_delayed_work(dwork: delayed_work): boolean {
  return cancel_work(dwork.work);
}

/** True if waiting for `cond` from here would be the running work item waiting for itself. */
function waits_for_itself(core: WqCore, work: work_struct): boolean {
  const w = core.currentWorker();
  return w !== null && w.current === work;
}

/**
 * cancel_work_sync - drop a pending instance and wait for a running one to finish
 * Context: process context (await it). Queueing the item while this waits fails.
 * Returns: true if an instance was pending.
 */
export async function cancel_work_sync(work: work_struct): Promise<boolean> {
  const k = current_kernel();
  const core = wq_core(k);
  const was = core.grab(work);
  if (!work._worker) return was;
  if (waits_for_itself(core, work)) {
    k.warn(`cancel_work_sync() of ${work._name} from its own work function: would deadlock`);
    return was;
  }
  if (!might_sleep_in(k, "cancel_work_sync")) return was;
  work._canceling++;
  await core.flushWait.wait(k, () => work._worker === null);
  work._canceling--;
  return was;
}

/** cancel_delayed_work_sync - cancel_work_sync for a delayed work item. */
export function cancel_delayed_work_sync(dwork: delayed_work): Promise<boolean> {
  return cancel_work_sync(dwork.work);
}

/**
 * flush_work - wait for the last queued instance of `work` to finish
 * Context: process context (await it).
 * Returns: true if it waited, false if the item was idle (or only its timer was armed).
 */
export async function flush_work(work: work_struct): Promise<boolean> {
  const k = current_kernel();
  const core = wq_core(k);
  const dw = work._dwork;
  if (dw && timer_pending(dw.timer)) return false;
  const target = work._pending ? work._seq : work._runSeq;
  if (target === 0 || work._doneSeq >= target) return false;
  if (waits_for_itself(core, work)) {
    k.warn(`flush_work() of ${work._name} from its own work function: would deadlock`);
    return false;
  }
  if (!might_sleep_in(k, "flush_work")) return false;
  await core.flushWait.wait(k, () => work._doneSeq >= target);
  return true;
}

/**
 * flush_delayed_work - fire a pending timer now, then flush_work.
 * Context: process context (await it). Returns: as flush_work.
 */
export function flush_delayed_work(dwork: delayed_work): Promise<boolean> {
  const k = current_kernel();
  if (timer_pending(dwork.timer)) {
    del_timer(dwork.timer);
    const core = wq_core(k);
    core.delayed.delete(dwork);
    core.queue(dwork._cpu, dwork._wq!, dwork.work);
  }
  return flush_work(dwork.work);
}

function wq_wait_empty(k: Kernel, wq: workqueue_struct, what: string, upTo: number): Promise<void> {
  const core = wq_core(k);
  const r = core.rt(wq);
  const busy = () => {
    for (const s of r.inflight) if (s <= upTo) return true;
    return false;
  };
  if (!busy()) return Promise.resolve();
  if (core.currentWorker()?.current?._wq === wq) {
    k.warn(`${what}(${wq.name}) from one of its own work items: would deadlock`);
    return Promise.resolve();
  }
  if (!might_sleep_in(k, what)) return Promise.resolve();
  return core.flushWait.wait(k, () => !busy()).then(() => undefined);
}

/** flush_workqueue - wait for every item queued on `wq` before the call. Context: process (await). */
export function flush_workqueue(wq: workqueue_struct): Promise<void> {
  const k = current_kernel();
  return wq_wait_empty(k, wq, "flush_workqueue", wq_core(k).seq);
}

/** flush_scheduled_work - flush system_wq (deprecated in Linux: flush your own items instead). */
export function flush_scheduled_work(): Promise<void> {
  return flush_workqueue(system_wq);
}

/** drain_workqueue - wait until `wq` is empty; only its own items may queue meanwhile. */
export async function drain_workqueue(wq: workqueue_struct): Promise<void> {
  const k = current_kernel();
  const r = wq_core(k).rt(wq);
  r.draining = true;
  await wq_wait_empty(k, wq, "drain_workqueue", Number.MAX_SAFE_INTEGER);
  r.draining = false;
}

function wq_format(fmt: string, args: (string | number)[]): string {
  let i = 0;
  return fmt.replace(/%[sdu]/g, () => String(args[i++] ?? ""));
}

/**
 * alloc_workqueue - create a workqueue
 * @fmt: printf-style name (%s, %d)
 * @flags: WQ_* flags
 * @max_active: items of this queue allowed to run at once (0: default 256)
 * Context: process context. Returns: the workqueue.
 */
export function alloc_workqueue(fmt: string, flags: number, max_active: number, ...args: (string | number)[]): workqueue_struct {
  const wq = new workqueue_struct(wq_format(fmt, args), flags, max_active);
  wq_core(current_kernel()).rt(wq);
  return wq;
}

/** alloc_ordered_workqueue - one item at a time, in queueing order. */
export function alloc_ordered_workqueue(fmt: string, flags: number, ...args: (string | number)[]): workqueue_struct {
  return alloc_workqueue(fmt, WQ_UNBOUND | __WQ_ORDERED | flags, 1, ...args);
}

/** create_singlethread_workqueue - legacy ordered workqueue. */
export function create_singlethread_workqueue(name: string): workqueue_struct {
  return alloc_ordered_workqueue("%s", __WQ_LEGACY | WQ_MEM_RECLAIM, name);
}

/** create_workqueue - legacy workqueue, max_active 1 (Linux: per CPU; here: one item at a time). */
export function create_workqueue(name: string): workqueue_struct {
  return alloc_workqueue("%s", __WQ_LEGACY | WQ_MEM_RECLAIM, 1, name);
}

/**
 * destroy_workqueue - drain `wq` and destroy it; later queueing on it WARNs
 * Context: process context (await it to wait for the drain).
 */
export async function destroy_workqueue(wq: workqueue_struct): Promise<void> {
  const k = current_kernel();
  if (SYSTEM_WQS.has(wq)) {
    k.warn(`destroy_workqueue() on system workqueue ${wq.name}`);
    return;
  }
  await drain_workqueue(wq);
  wq_core(k).rt(wq).dead = true;
}
