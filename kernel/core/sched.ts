/**
 * Execution: which CPU runs what, in which context, for how long; kernel threads; the run loop.
 *
 * Theory of operation
 * - Kernel and driver code runs to completion inside an event. `runOn` marks the CPU and the
 *   context (process, hardirq, softirq), measures the CPU time the code charged through the
 *   memory system, and keeps the CPU busy for that long: the CPU's next work cannot start
 *   before `busyUntil`. A slice per run goes to the trace.
 * - A kernel thread is an async function that may block only in kernel primitives
 *   (wait_for_completion, msleep, ...). Blocking parks the thread; waking it queues it on the
 *   run queue; the run loop resumes it and awaits until it parks again or ends. Only one thread
 *   runs at a time and only between events, so a run is deterministic without host timers.
 * - An exception escaping driver code is an oops: `runOn` and the thread wrapper catch it and
 *   hand it to the oops handler, which reports it and unbinds the driver.
 */

import type { Platform } from "../platform/platform.ts";
import { TRACE_PID_CPU, type TraceTrack } from "../platform/platform.ts";

export type ContextKind = "process" | "hardirq" | "softirq";

/** Fixed cost of entering kernel code from an event (exception entry, dispatch). */
export const ENTRY_COST_NS = 50;

export class KThread {
  state: "new" | "runnable" | "running" | "blocked" | "done" = "new";
  /** Resolves the promise the thread is parked on. */
  resume: (() => void) | null = null;
  /** Tells the run loop the thread parked or finished. */
  parked: (() => void) | null = null;
  /** Who the thread works for (for oops attribution). */
  owner: string;

  constructor(
    readonly name: string,
    readonly cpu: number,
    owner: string,
  ) {
    this.owner = owner;
  }
}

export type OopsHandler = (err: unknown, where: string, owner: string) => void;

export class Exec {
  cpu = 0;
  context: ContextKind = "process";
  thread: KThread | null = null;
  /** Name of the driver whose code is running ("" for the core). */
  owner = "";
  readonly busyUntil: Float64Array;
  readonly busyNs: Float64Array;
  private runStart = 0;
  private chargedAtStart = 0;
  private depth = 0;
  private readonly runq: KThread[] = [];
  private readonly tracks: TraceTrack[];
  onOops: OopsHandler = (err) => {
    throw err;
  };

  constructor(private readonly platform: Platform) {
    this.busyUntil = new Float64Array(platform.cpus);
    this.busyNs = new Float64Array(platform.cpus);
    this.tracks = [];
    for (let c = 0; c < platform.cpus; c++) this.tracks.push(platform.trace.track(TRACE_PID_CPU, `CPU ${c}`));
    platform.cpuClock = () => this.now();
  }

  /** Virtual time as seen by the running code: event time plus CPU time spent so far. */
  now(): number {
    if (this.depth === 0) return this.platform.now();
    return this.runStart + (this.platform.charged(this.cpu) - this.chargedAtStart);
  }

  /** Earliest time `cpu` is free. */
  freeAt(cpu: number): number {
    return Math.max(this.platform.now(), this.busyUntil[cpu]);
  }

  /**
   * Run `fn` on `cpu` in `context`, charging its CPU time. Exceptions become oopses.
   * Returns fn's result, or `undefined` if it oopsed.
   */
  runOn<T>(cpu: number, context: ContextKind, owner: string, name: string, fn: () => T): T | undefined {
    if (this.depth > 0) {
      // Already inside kernel code on this CPU (a nested call): just run it.
      return fn();
    }
    this.enter(cpu, context, owner);
    try {
      return fn();
    } catch (err) {
      this.onOops(err, name, this.owner);
      return undefined;
    } finally {
      this.leave(name);
    }
  }

  private enter(cpu: number, context: ContextKind, owner: string): void {
    this.cpu = cpu;
    this.context = context;
    this.owner = owner;
    this.depth = 1;
    this.runStart = this.freeAt(cpu);
    this.chargedAtStart = this.platform.charged(cpu);
  }

  private leave(name: string): void {
    const dur = ENTRY_COST_NS + this.platform.charged(this.cpu) - this.chargedAtStart;
    this.busyUntil[this.cpu] = this.runStart + dur;
    this.busyNs[this.cpu] += dur;
    const t = this.platform.trace;
    if (t.enabled) t.slice(this.tracks[this.cpu], this.context, name, this.runStart, dur);
    this.depth = 0;
    this.context = "process";
    this.owner = "";
    this.thread = null;
  }

  // ------------------------------------------------------------------ threads

  /** Create a kernel thread running `fn`; it starts at the next turn of the run loop. */
  spawn(name: string, cpu: number, owner: string, fn: () => Promise<void> | void): KThread {
    const t = new KThread(name, cpu, owner);
    const gate = new Promise<void>((r) => (t.resume = r));
    void (async () => {
      await gate;
      try {
        await fn();
      } catch (err) {
        this.onOops(err, name, t.owner);
      } finally {
        t.state = "done";
        const p = t.parked;
        t.parked = null;
        p?.();
      }
    })();
    this.makeRunnable(t);
    return t;
  }

  /** The running thread parks until `wake`. Must be awaited by thread code only. */
  block(): Promise<void> {
    const t = this.thread;
    if (!t || this.context !== "process") {
      throw new Error(`BUG: sleeping function called from invalid context (${this.context}${t ? "" : ", no thread"})`);
    }
    t.state = "blocked";
    const p = new Promise<void>((r) => (t.resume = r));
    const parked = t.parked;
    t.parked = null;
    parked?.();
    return p;
  }

  /** Make a blocked thread runnable again (from any context). */
  wake(t: KThread): void {
    if (t.state === "blocked") this.makeRunnable(t);
  }

  private makeRunnable(t: KThread): void {
    t.state = "runnable";
    this.runq.push(t);
  }

  get hasRunnable(): boolean {
    return this.runq.length > 0;
  }

  /** Resume the next runnable thread and wait until it parks or ends. */
  async runNextThread(): Promise<void> {
    const t = this.runq.shift();
    if (!t || t.state !== "runnable") return;
    this.enter(t.cpu, "process", t.owner);
    this.thread = t;
    t.state = "running";
    const parked = new Promise<void>((r) => (t.parked = r));
    const resume = t.resume!;
    t.resume = null;
    resume();
    await parked;
    this.leave(t.name);
  }
}
