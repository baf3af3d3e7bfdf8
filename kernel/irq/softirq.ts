/**
 * Softirqs and tasklets (Linux's kernel/softirq.c, TASKLET_SOFTIRQ only).
 *
 * Theory of operation
 * - tasklet_schedule puts a tasklet on the list of the CPU that scheduled it and raises that
 *   CPU's softirq: one event per CPU at the current time, which runs when the CPU is free,
 *   i.e. right after the hardirq that scheduled it. Scheduling an already scheduled tasklet
 *   does nothing, so several schedules before it runs collapse into one run.
 * - The softirq runs the list in softirq context, each tasklet attributed to its owner; an
 *   exception is that driver's oops and the others still run. A tasklet that reschedules
 *   itself lands on a fresh list and runs in a later softirq, never in the same pass.
 * - A disabled tasklet stays scheduled and is parked (Linux would spin re-raising the
 *   softirq); tasklet_enable puts it back on its CPU's list.
 */

import { current_kernel } from "../core/current.ts";
import type { Kernel } from "../core/kernel.ts";
import { KERN_NOTICE } from "../core/printk.ts";
import type { ScheduledEvent } from "../platform/platform.ts";

export const TASKLET_STATE_SCHED = 0;
export const TASKLET_STATE_RUN = 1;
const SCHED = 1 << TASKLET_STATE_SCHED;
const RUN = 1 << TASKLET_STATE_RUN;

/** struct tasklet_struct. Fields starting with `_` belong to the softirq core. */
export class tasklet_struct {
  /** Bits TASKLET_STATE_SCHED and TASKLET_STATE_RUN. */
  state = 0;
  /** Disable count: runs only at 0. */
  count = 0;
  use_callback = false;
  func: ((data: unknown) => void) | null = null;
  callback: ((t: tasklet_struct) => void) | null = null;
  data: unknown = 0;
  _owner = "";
  _cpu = 0;
  _parked = false;
  /** The list it is queued on (null when not queued). */
  _queue: tasklet_struct[] | null = null;
  _name = "tasklet";
}

class SoftirqCore {
  readonly lists: tasklet_struct[][] = [];
  private readonly spare: tasklet_struct[][] = [];
  private readonly ev: (ScheduledEvent | null)[] = [];
  private readonly cb: (() => void)[] = [];
  private readonly run: (() => void)[] = [];
  readonly parked = new Set<tasklet_struct>();
  runs = 0;

  constructor(private readonly k: Kernel) {
    for (let c = 0; c < k.platform.cpus; c++) {
      this.lists.push([]);
      this.spare.push([]);
      this.ev.push(null);
      this.cb.push(() => this.softirq(c));
      this.run.push(() => this.tasklet_action(this.spare[c]));
    }
    k.onCrash((owner) => this.releaseOwner(owner));
  }

  /** raise_softirq(TASKLET_SOFTIRQ) on `cpu`. */
  raise(cpu: number): void {
    if (this.ev[cpu] === null) this.ev[cpu] = this.k.platform.at(this.k.exec.now(), "softirq", this.cb[cpu]);
  }

  enqueue(t: tasklet_struct, cpu: number): void {
    t._cpu = cpu;
    t._queue = this.lists[cpu];
    this.lists[cpu].push(t);
    this.raise(cpu);
  }

  private softirq(cpu: number): void {
    this.ev[cpu] = null;
    const list = this.lists[cpu];
    if (list.length === 0) return;
    // Swap lists: tasklets scheduled while these run go to the fresh one.
    this.lists[cpu] = this.spare[cpu];
    this.spare[cpu] = list;
    this.k.exec.runOn(cpu, "softirq", list[0]._owner, "tasklet", this.run[cpu]);
    list.length = 0;
  }

  private tasklet_action(list: tasklet_struct[]): void {
    const exec = this.k.exec;
    for (let i = 0; i < list.length; i++) {
      const t = list[i];
      if (t._queue !== list || !(t.state & SCHED)) continue; // killed or moved meanwhile
      t._queue = null;
      if (t.count > 0) {
        t._parked = true;
        this.parked.add(t);
        continue;
      }
      t.state = (t.state & ~SCHED) | RUN;
      exec.owner = t._owner;
      this.runs++;
      try {
        if (t.use_callback) t.callback?.(t);
        else t.func?.(t.data);
      } catch (err) {
        this.k.oops(err, t._name, t._owner);
      }
      t.state &= ~RUN;
    }
  }

  /** Take `t` off whatever list or parking it is on. */
  unqueue(t: tasklet_struct): void {
    if (t._queue) {
      const i = t._queue.indexOf(t);
      if (i >= 0 && t._queue === this.lists[t._cpu]) t._queue.splice(i, 1);
      t._queue = null;
    }
    t._parked = false;
    this.parked.delete(t);
  }

  private releaseOwner(owner: string): void {
    // The spare lists hold the batch running right now (a crash inside a tasklet).
    for (const list of [...this.lists, ...this.spare]) {
      for (const t of [...list]) if (t._owner === owner && t._queue === list) this.kill(t);
    }
    for (const t of [...this.parked]) if (t._owner === owner) this.kill(t);
  }

  kill(t: tasklet_struct): void {
    this.unqueue(t);
    t.state &= ~SCHED;
  }
}

function softirq_core(k: Kernel): SoftirqCore {
  return k.state("softirq", () => new SoftirqCore(k));
}

/** Number of tasklet runs so far in `k` (for reports and tests). */
export function tasklet_runs(k: Kernel): number {
  return softirq_core(k).runs;
}

function tasklet_named(t: tasklet_struct, fn: { name: string }): void {
  // A tasklet built as a plain object gets its internal fields here.
  if (t._queue === undefined) t._queue = null;
  t._parked ??= false;
  t._cpu ??= 0;
  t._name = `tasklet:${fn.name || "anonymous"}`;
  t._owner = current_kernel().exec.owner;
}

/** tasklet_setup - initialise a tasklet whose callback receives the tasklet. Context: any. */
export function tasklet_setup(t: tasklet_struct, callback: (t: tasklet_struct) => void): void {
  t.state = 0;
  t.count = 0;
  t.use_callback = true;
  t.callback = callback;
  t.func = null;
  tasklet_named(t, callback);
}

/** tasklet_init - old-style initialisation with a data argument. Context: any. */
export function tasklet_init(t: tasklet_struct, func: (data: unknown) => void, data: unknown): void {
  t.state = 0;
  t.count = 0;
  t.use_callback = false;
  t.func = func;
  t.callback = null;
  t.data = data;
  tasklet_named(t, func);
}

/** DECLARE_TASKLET - a new tasklet with a callback. */
export function DECLARE_TASKLET(callback: (t: tasklet_struct) => void): tasklet_struct {
  const t = new tasklet_struct();
  tasklet_setup(t, callback);
  return t;
}

/**
 * tasklet_schedule - run the tasklet once, soon, in softirq context on this CPU
 * Context: any (typically a hardirq handler). Already scheduled: nothing happens.
 */
export function tasklet_schedule(t: tasklet_struct): void {
  if (t.state & SCHED) return;
  const k = current_kernel();
  t.state |= SCHED;
  if (!t._owner) t._owner = k.exec.owner;
  softirq_core(k).enqueue(t, k.exec.cpu);
}

/** tasklet_hi_schedule - the HI_SOFTIRQ variant (same ordering here). */
export const tasklet_hi_schedule = tasklet_schedule;

/** tasklet_disable_nosync - keep the tasklet from running until tasklet_enable. Context: any. */
export function tasklet_disable_nosync(t: tasklet_struct): void {
  t.count++;
}

/** tasklet_disable - as tasklet_disable_nosync; a running tasklet cannot overlap the caller here. */
export function tasklet_disable(t: tasklet_struct): void {
  t.count++;
}

/**
 * tasklet_enable - undo one tasklet_disable; a tasklet scheduled meanwhile runs now.
 * Context: any. Returns: true when the tasklet is enabled again.
 */
export function tasklet_enable(t: tasklet_struct): boolean {
  const k = current_kernel();
  if (t.count === 0) {
    k.warn(`Unbalanced tasklet_enable for ${t._name}`);
    return true;
  }
  t.count--;
  if (t.count === 0 && t._parked) {
    const sc = softirq_core(k);
    sc.unqueue(t);
    sc.enqueue(t, t._cpu);
  }
  return t.count === 0;
}

/**
 * tasklet_kill - make sure the tasklet is not scheduled and not running
 * Context: process context ("Attempt to kill tasklet from interrupt" otherwise). A pending
 * run is dropped.
 */
export function tasklet_kill(t: tasklet_struct): void {
  const k = current_kernel();
  if (k.exec.context !== "process") k.printk.log(KERN_NOTICE, "Attempt to kill tasklet from interrupt");
  softirq_core(k).kill(t);
}

/** tasklet_unlock_wait - nothing can be running concurrently here. */
export function tasklet_unlock_wait(_t: tasklet_struct): void {}
