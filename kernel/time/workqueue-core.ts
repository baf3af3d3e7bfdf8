/**
 * Workqueue machinery: work items, worker pools and kworker threads (Linux's
 * kernel/workqueue.c, simplified). The driver API is in workqueue.ts.
 *
 * Theory of operation
 * - Each CPU has one worker pool: a list of queued work items and kworker threads
 *   ("kworker/<cpu>:<id>") that take items in order and run them in process context, each
 *   attributed to the driver that queued it. A work function may be async and sleep.
 * - Concurrency: Linux starts another worker when a busy one sleeps. Threads here switch
 *   only when one parks, so waking an idle worker (or creating one) for every queued item
 *   not yet claimed gives the same behaviour: items start in queue order, and one that
 *   sleeps never holds up the next.
 * - A workqueue limits how many of its items are active (max_active; 1 for ordered queues);
 *   the others wait on the queue's inactive list in order.
 * - An item is never run by two workers at once: one queued again while running is handed
 *   to the worker running it, which runs it next (non-reentrancy).
 * - Every queued instance gets a sequence number; flushes wait for sequence numbers, so a
 *   work item that keeps re-queueing itself cannot make flush_work wait forever.
 */

import type { Kernel } from "../core/kernel.ts";
import type { KThread } from "../core/sched.ts";
import { timer_list, del_timer, mod_timer, timer_pending } from "./timer.ts";
import { jiffies } from "./jiffies.ts";
import { WaitList } from "./wait.ts";

export type work_func_t = (work: work_struct) => void | Promise<void>;

/** struct work_struct. Fields starting with `_` belong to the workqueue core. */
export class work_struct {
  func: work_func_t | null = null;
  _pending = false;
  _canceling = 0;
  _wq: workqueue_struct | null = null;
  _cpu = 0;
  _owner = "";
  _name = "work";
  /** Sequence number of the queued instance, of the running one (0: none), last finished. */
  _seq = 0;
  _runSeq = 0;
  _doneSeq = 0;
  /** The list the pending instance sits on (pool, inactive or a worker's), or null. */
  _list: work_struct[] | null = null;
  _worker: Worker | null = null;
  _dwork: delayed_work | null = null;
}

/** struct delayed_work: a work item queued when its timer fires. */
export class delayed_work {
  readonly work = new work_struct();
  readonly timer = new timer_list();
  _wq: workqueue_struct | null = null;
  _cpu = 0;

  constructor() {
    this.work._dwork = this;
    const t = this.timer;
    t.function = () => delayed_work_timer_fn(this);
    t._setup = true;
    t._internal = true;
    t._name = "delayed_work_timer_fn";
  }
}

/** struct workqueue_struct: its configuration. Run-time state lives per kernel. */
export class workqueue_struct {
  constructor(
    readonly name: string,
    readonly flags: number,
    readonly max_active: number,
  ) {}
}

export interface Worker {
  readonly id: number;
  thread: KThread | null;
  current: work_struct | null;
  idle: boolean;
  waking: boolean;
  readonly scheduled: work_struct[];
}

class Pool {
  readonly worklist: work_struct[] = [];
  readonly idle: Worker[] = [];
  readonly workers: Worker[] = [];
  nrWaking = 0;
  constructor(readonly cpu: number) {}
}

export class WqRuntime {
  nrActive = 0;
  readonly inactive: work_struct[] = [];
  readonly inflight = new Set<number>();
  draining = false;
  dead = false;
  constructor(readonly maxActive: number) {}
}

export const WQ_MAX_ACTIVE = 512;
export const WQ_DFL_ACTIVE = WQ_MAX_ACTIVE / 2;

export class WqCore {
  readonly pools: Pool[] = [];
  private readonly rts = new Map<workqueue_struct, WqRuntime>();
  /** Woken whenever an instance finishes or is cancelled; flushers re-check. */
  readonly flushWait = new WaitList();
  readonly delayed = new Set<delayed_work>();
  seq = 0;
  executed = 0;
  private nextWorkerId = 0;

  constructor(readonly k: Kernel) {
    for (let c = 0; c < k.platform.cpus; c++) this.pools.push(new Pool(c));
    k.onCrash((owner) => this.releaseOwner(owner));
  }

  rt(wq: workqueue_struct): WqRuntime {
    let r = this.rts.get(wq);
    if (!r) {
      r = new WqRuntime(wq.max_active > 0 ? Math.min(wq.max_active, WQ_MAX_ACTIVE) : WQ_DFL_ACTIVE);
      this.rts.set(wq, r);
    }
    return r;
  }

  /** The worker the running thread is, if it is a kworker. */
  currentWorker(): Worker | null {
    const t = this.k.exec.thread;
    if (!t) return null;
    for (const p of this.pools) for (const w of p.workers) if (w.thread === t) return w;
    return null;
  }

  /** __queue_work - put an instance of `work` (already marked pending) on `wq`. */
  queue(cpu: number, wq: workqueue_struct, work: work_struct): void {
    const r = this.rt(wq);
    if (r.dead || (r.draining && this.currentWorker()?.current?._wq !== wq)) {
      this.k.warn(`workqueue ${wq.name}: queueing ${work._name} on a ${r.dead ? "destroyed" : "draining"} workqueue`);
      work._pending = false;
      return;
    }
    work._wq = wq;
    work._cpu = cpu;
    work._seq = ++this.seq;
    r.inflight.add(work._seq);
    if (r.nrActive < r.maxActive) {
      r.nrActive++;
      this.poolInsert(work);
    } else {
      work._list = r.inactive;
      r.inactive.push(work);
    }
  }

  private poolInsert(work: work_struct): void {
    const pool = this.pools[work._cpu];
    work._list = pool.worklist;
    pool.worklist.push(work);
    this.kick(pool);
  }

  /** Make sure a worker will claim each queued item. */
  private kick(pool: Pool): void {
    if (pool.worklist.length <= pool.nrWaking) return;
    pool.nrWaking++;
    const w = pool.idle.pop();
    if (w) {
      w.idle = false;
      w.waking = true;
      this.k.exec.wake(w.thread!);
      return;
    }
    const nw: Worker = { id: this.nextWorkerId++, thread: null, current: null, idle: false, waking: true, scheduled: [] };
    pool.workers.push(nw);
    nw.thread = this.k.exec.spawn(`kworker/${pool.cpu}:${nw.id}`, pool.cpu, "", () => this.workerThread(pool, nw));
  }

  private async workerThread(pool: Pool, w: Worker): Promise<void> {
    for (;;) {
      if (w.waking) {
        w.waking = false;
        pool.nrWaking--;
      }
      const work = pool.worklist.shift();
      if (!work) {
        w.idle = true;
        pool.idle.push(w);
        while (w.idle) await this.k.exec.block();
        continue;
      }
      work._list = null;
      const other = work._worker;
      if (other && other !== w) {
        // Running elsewhere: the worker running it runs this instance next.
        work._list = other.scheduled;
        other.scheduled.push(work);
        continue;
      }
      await this.processOne(w, work);
      while (w.scheduled.length) {
        const next = w.scheduled.shift()!;
        next._list = null;
        await this.processOne(w, next);
      }
    }
  }

  private async processOne(w: Worker, work: work_struct): Promise<void> {
    const k = this.k;
    const wq = work._wq!;
    const seq = work._seq;
    work._pending = false;
    work._runSeq = seq;
    work._worker = w;
    w.current = work;
    w.thread!.owner = work._owner;
    k.exec.owner = work._owner;
    this.executed++;
    try {
      await work.func?.(work);
    } catch (err) {
      k.oops(err, work._name, work._owner);
    }
    w.current = null;
    work._worker = null;
    work._runSeq = 0;
    if (seq > work._doneSeq) work._doneSeq = seq;
    w.thread!.owner = "";
    this.retire(wq, seq, true);
  }

  /** An instance of `wq` finished or was cancelled: free its slot, start the next inactive one. */
  private retire(wq: workqueue_struct, seq: number, active: boolean): void {
    const r = this.rt(wq);
    r.inflight.delete(seq);
    if (active) r.nrActive--;
    while (r.nrActive < r.maxActive && r.inactive.length) {
      const next = r.inactive.shift()!;
      r.nrActive++;
      this.poolInsert(next);
    }
    this.flushWait.wakeAll(this.k);
  }

  /**
   * try_to_grab_pending - take the pending instance off its timer or list.
   * Returns: true if there was one.
   */
  grab(work: work_struct): boolean {
    if (!work._pending) return false;
    const dw = work._dwork;
    if (dw && timer_pending(dw.timer)) {
      del_timer(dw.timer);
      this.delayed.delete(dw);
    } else if (work._list) {
      const list = work._list;
      const i = list.indexOf(work);
      if (i >= 0) list.splice(i, 1);
      const r = this.rt(work._wq!);
      this.retireCancelled(work, list !== r.inactive);
    }
    work._pending = false;
    work._list = null;
    return true;
  }

  private retireCancelled(work: work_struct, active: boolean): void {
    if (work._seq > work._doneSeq) work._doneSeq = work._seq;
    this.retire(work._wq!, work._seq, active);
  }

  /** Arm a delayed work's timer (or queue it now for delay 0). */
  queueDelayed(cpu: number, wq: workqueue_struct, dw: delayed_work, delay: number): void {
    dw._wq = wq;
    dw._cpu = cpu;
    if (delay <= 0) {
      this.queue(cpu, wq, dw.work);
      return;
    }
    dw.timer._owner = dw.work._owner;
    this.delayed.add(dw);
    mod_timer(dw.timer, jiffies() + delay);
  }

  /** A crashed driver's pending work is dropped (running work cannot be stopped). */
  private releaseOwner(owner: string): void {
    const victims = new Set<work_struct>();
    for (const dw of this.delayed) if (dw.work._owner === owner) victims.add(dw.work);
    for (const p of this.pools) {
      for (const w of p.worklist) if (w._owner === owner) victims.add(w);
      for (const wk of p.workers) for (const w of wk.scheduled) if (w._owner === owner) victims.add(w);
    }
    for (const r of this.rts.values()) for (const w of r.inactive) if (w._owner === owner) victims.add(w);
    for (const w of victims) this.grab(w);
  }
}

export function wq_core(k: Kernel): WqCore {
  return k.state("workqueue", () => new WqCore(k));
}

function delayed_work_timer_fn(dw: delayed_work): void {
  const t = dw.timer._k;
  if (!t) return;
  const core = wq_core(t);
  core.delayed.delete(dw);
  core.queue(dw._cpu, dw._wq!, dw.work);
}
