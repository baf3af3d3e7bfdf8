/**
 * IRQ descriptors and the per-kernel interrupt core.
 *
 * Theory of operation
 * - A Linux IRQ number is an interrupt-controller vector: wired lines first (level by
 *   default), then MSI vectors (edge). Each vector has one irq_desc holding its actions (one
 *   per request_irq), the disable depth, the lazy-disable PENDING state, ONESHOT bookkeeping
 *   and the note_interrupt counters.
 * - The core exists once per kernel (Kernel.state("irq")). Created at first use (or at boot
 *   through irq_init), it registers with the platform to hear when a CPU may have an
 *   interrupt to take, and with the kernel to release a crashed driver's IRQs.
 * - Actions are held in an array that is replaced, never mutated, when an action comes or
 *   goes: the entry path iterates whatever array it found, even if a handler's oops frees
 *   actions meanwhile, and allocates nothing.
 */

import type { Kernel } from "../core/kernel.ts";
import type { Exec, KThread } from "../core/sched.ts";
import type { Platform, ScheduledEvent, TraceTrack } from "../platform/platform.ts";
import { TRACE_PID_CPU } from "../platform/platform.ts";
import { IRQ_TYPE_EDGE_RISING, IRQ_TYPE_LEVEL_HIGH, type irq_handler_t, type irq_thread_fn_t } from "./flags.ts";
import { irq_flow, irq_remove_action } from "./chip.ts";
import { irq_entry, irq_resend_run } from "./entry.ts";
import { WaitList } from "../time/wait.ts";

/** struct irqaction: one requester of an IRQ. */
export class irqaction {
  /** IRQTF_RUNTHREAD: the thread has work. */
  runThread = false;
  /** kthread_should_stop(): free_irq asked the thread to exit. */
  stop = false;
  /** IRQTF_WARNED: the "no thread function" warning was given. */
  warned = false;
  /** Removed from its descriptor (free_irq or crash cleanup). */
  removed = false;
  thread_mask = 0;
  thread: KThread | null = null;

  constructor(
    readonly irq: number,
    readonly handler: irq_handler_t,
    readonly thread_fn: irq_thread_fn_t | null,
    public flags: number,
    readonly name: string,
    readonly dev_id: unknown,
    /** The driver that requested it: its handlers run attributed to it. */
    readonly owner: string,
  ) {}
}

const NO_ACTIONS: readonly irqaction[] = Object.freeze([]);

/** struct irq_desc: the state of one IRQ number. */
export class irq_desc {
  actions: readonly irqaction[] = NO_ACTIONS;
  /** Every handler name this IRQ ever had, so reports still name it after free_irq. */
  readonly everNames: string[] = [];
  /** Nested disable depth; 1 while shut down (no handler) as in Linux. */
  depth = 1;
  /** IRQD_IRQ_DISABLED (lazy: the line is masked only when an interrupt arrives). */
  disabled = true;
  /** Our mirror of the controller's mask bit. */
  masked = true;
  started = false;
  /** The controller treats the vector as level-triggered. */
  level: boolean;
  /** IRQF_TRIGGER_* / IRQ_TYPE_* bits currently configured. */
  triggerType: number;
  readonly isMsi: boolean;
  /** IRQS_ONESHOT: keep the line masked until the threads ran. */
  oneshot = false;
  /** IRQS_PENDING: arrived while disabled (lazy disable) or without a handler. */
  pending = false;
  /** IRQS_REPLAY: a software resend is under way. */
  replay = false;
  spuriousDisabled = false;
  /** IRQD_IRQ_INPROGRESS: handlers are running. */
  inProgress = false;
  threadsOneshot = 0;
  threadsActive = 0;
  threadsHandled = 0;
  threadsHandledLast = 0;
  spuriousDeferred = false;
  readonly threadWait = new WaitList();
  // note_interrupt state
  irqCount = 0;
  irqsUnhandled = 0;
  lastUnhandled = 0;
  // statistics
  count = 0;
  totalUnhandled = 0;
  affinity = 0;
  runName: string;
  runOwner = "";
  readonly traceName: string;
  /** The flow handler bound to this descriptor (built once: the entry path allocates nothing). */
  readonly flow: () => void;

  constructor(
    readonly irq: number,
    core: IrqCore,
  ) {
    this.isMsi = irq >= core.platform.msiFirst;
    this.level = !this.isMsi;
    this.triggerType = this.isMsi ? IRQ_TYPE_EDGE_RISING : IRQ_TYPE_LEVEL_HIGH;
    this.runName = `irq/${irq}`;
    this.traceName = `irq ${irq}`;
    this.flow = () => irq_flow(core, this);
  }

  /** Keep the names used for slices and oops reports in step with the action list. */
  refreshNames(): void {
    const a = this.actions[0];
    this.runName = a ? `irq/${this.irq}-${a.name}` : `irq/${this.irq}`;
    this.runOwner = a ? a.owner : "";
  }
}

/** Tunables of the spurious-interrupt detector (Linux's fixed values by default). */
export interface SpuriousSettings {
  /** Interrupts per detection window (Linux: 100,000). */
  window: number;
  /** More unhandled than this in a window disables the line (Linux: 99,900). */
  threshold: number;
  /** An unhandled interrupt more than this many jiffies after the last restarts the count (HZ/10). */
  resetJiffies: number;
  /** noirqdebug: no detection at all. */
  noirqdebug: boolean;
}

export class IrqCore {
  readonly platform: Platform;
  readonly exec: Exec;
  readonly descs: irq_desc[] = [];
  readonly spurious: SpuriousSettings = { window: 100_000, threshold: 99_900, resetJiffies: 100, noirqdebug: false };
  /** report_bad_irq prints at most this many more reports. */
  badReportsLeft = 100;
  /** Text of the last non-numeric handler result (for the bogus return report). */
  lastBogusText = "";
  entries = 0;
  private readonly entryEv: (ScheduledEvent | null)[] = [];
  private readonly entryCb: (() => void)[] = [];
  readonly tracks: TraceTrack[] = [];

  constructor(readonly k: Kernel) {
    this.platform = k.platform;
    this.exec = k.exec;
    for (let v = 0; v < this.platform.irqVectors; v++) {
      const d = new irq_desc(v, this);
      this.descs.push(d);
      // Firmware defaults: wired lines level, MSI vectors edge, everything on CPU 0, masked.
      this.platform.irqConfigure(v, d.level ? "level" : "edge");
      this.platform.irqSetAffinity(v, 0);
      this.platform.irqMask(v);
    }
    for (let c = 0; c < this.platform.cpus; c++) {
      this.entryEv.push(null);
      this.entryCb.push(() => irq_entry(this, c));
      this.tracks.push(this.platform.trace.track(TRACE_PID_CPU, `CPU ${c}`));
    }
    this.platform.onIrqDeliverable((cpu) => this.kick(cpu));
    k.onCrash((owner) => this.releaseOwner(owner));
  }

  /** Make sure one entry event is pending for `cpu` (at most one per CPU). */
  kick(cpu: number): void {
    if (this.entryEv[cpu] === null) this.entryEv[cpu] = this.platform.at(this.exec.freeAt(cpu), "irq-entry", this.entryCb[cpu]);
  }

  /** The entry event for `cpu` is running: later notifications need a new one. */
  entryStarted(cpu: number): void {
    this.entryEv[cpu] = null;
  }

  /** Software resend of an edge interrupt that arrived while disabled. */
  resend(desc: irq_desc): void {
    this.platform.at(this.exec.freeAt(desc.affinity), "irq-resend", () => irq_resend_run(this, desc));
  }

  /** A driver crashed: free its actions (no "free from IRQ context" warning: this is cleanup). */
  private releaseOwner(owner: string): void {
    for (const desc of this.descs) {
      for (const a of desc.actions) if (a.owner === owner) irq_remove_action(this, desc, a);
    }
  }
}

/** irq_core - the interrupt core of `k`, created (and hooked to the platform) at first use. */
export function irq_core(k: Kernel): IrqCore {
  return k.state("irq", () => new IrqCore(k));
}

/**
 * irq_init - bring up the interrupt core of `k` (boot calls it; request_irq does it lazily).
 * Context: boot.
 */
export function irq_init(k: Kernel): void {
  irq_core(k);
}

/** irq_to_desc - the descriptor of `irq`, or null for a number that names no vector. */
export function irq_to_desc(core: IrqCore, irq: number): irq_desc | null {
  return Number.isInteger(irq) && irq >= 0 && irq < core.descs.length ? core.descs[irq] : null;
}

/** Per-IRQ counters for reports. */
export interface IrqStat {
  irq: number;
  names: string[];
  owners: string[];
  count: number;
  unhandled: number;
  spurious_disabled: boolean;
}

/**
 * irq_stats - interrupt counts of every IRQ that has a handler or ever fired.
 * `count` is interrupts handled by the flow (as /proc/interrupts), `unhandled` the total of
 * IRQ_NONE results.
 */
export function irq_stats(k: Kernel): IrqStat[] {
  const core = k.subsys.get("irq") as IrqCore | undefined;
  if (!core) return [];
  const out: IrqStat[] = [];
  for (const d of core.descs) {
    if (d.count === 0 && d.actions.length === 0 && !d.spuriousDisabled) continue;
    out.push({
      irq: d.irq,
      names: d.actions.length ? d.actions.map((a) => a.name) : [...d.everNames],
      owners: [...new Set(d.actions.map((a) => a.owner))],
      count: d.count,
      unhandled: d.totalUnhandled,
      spurious_disabled: d.spuriousDisabled,
    });
  }
  return out;
}

/** irq_set_spurious_thresholds - tune note_interrupt (small windows make storm tests fast). */
export function irq_set_spurious_thresholds(k: Kernel, s: Partial<SpuriousSettings>): void {
  Object.assign(irq_core(k).spurious, s);
}
