/**
 * The kernel instance: the platform it runs on and the core services every subsystem uses
 * (execution and threads, printk, findings, memory management). Subsystems (IRQ, driver
 * model, DMA) attach themselves here at boot; drivers never see this object, only the free
 * functions of kernel/include.
 */

import type { Platform } from "../platform/platform.ts";
import { Exec } from "./sched.ts";
import { Printk, type LogLevelName, type PrintkSink, KERN_EMERG, KERN_WARNING } from "./printk.ts";
import { Findings } from "./findings.ts";
import { set_current_kernel } from "./current.ts";
import { AddressSpace } from "../mm/layout.ts";
import { PageAllocator } from "../mm/page-alloc.ts";
import { Slab } from "../mm/slab.ts";
import { KernelOops } from "./oops.ts";

export interface KernelOptions {
  logLevel?: LogLevelName;
  logSink?: PrintkSink;
}

/** Hooks the subsystems register so the core can clean up after a crashed driver. */
export type UnbindHook = (owner: string) => void;

export class Kernel {
  readonly exec: Exec;
  readonly printk: Printk;
  readonly findings = new Findings();
  readonly aspace: AddressSpace;
  readonly pages: PageAllocator;
  readonly slab: Slab;
  readonly kmallocMinAlign: number;
  readonly dmaMinAlign: number;
  readonly arch: "x86" | "arm64";
  /** Subsystem state, keyed by subsystem name (irq, base, dma...). */
  readonly subsys = new Map<string, unknown>();
  private readonly crashHooks: UnbindHook[] = [];
  warnings = 0;

  constructor(
    readonly platform: Platform,
    opts: KernelOptions = {},
  ) {
    this.exec = new Exec(platform);
    this.printk = new Printk(() => this.exec.now(), opts.logLevel ?? "info", opts.logSink);
    this.aspace = new AddressSpace((p, l) => platform.isRam(p, l));
    this.pages = new PageAllocator(platform.ram());
    const a = platform.desc.arch;
    this.arch = a.kind;
    this.kmallocMinAlign = a.kmallocMinAlign;
    this.dmaMinAlign = a.dmaMinAlign;
    this.slab = new Slab(this.pages, a.kmallocMinAlign);
    this.exec.onOops = (err, where, owner) => this.oops(err, where, owner);
    set_current_kernel(this);
  }

  /** Make this the running kernel (the run loop calls it; tests may too). */
  enter(): void {
    set_current_kernel(this);
  }

  /** Get or create a subsystem's state object. */
  state<T>(name: string, create: () => T): T {
    let s = this.subsys.get(name) as T | undefined;
    if (s === undefined) {
      s = create();
      this.subsys.set(name, s);
    }
    return s;
  }

  /** Register what to do when a driver crashes (release its IRQs, its devices...). */
  onCrash(hook: UnbindHook): void {
    this.crashHooks.push(hook);
  }

  /** An exception escaped kernel or driver code: report an oops and unbind the culprit. */
  oops(err: unknown, where: string, owner: string): void {
    const msg = err instanceof Error ? err.message : String(err);
    const kind = err instanceof KernelOops ? "Oops" : "BUG: exception in kernel code";
    this.printk.log(KERN_EMERG, msg);
    this.printk.log(KERN_EMERG, `${kind}: in ${where}${owner ? ` [${owner}]` : ""} on CPU ${this.exec.cpu}`);
    if (!(err instanceof KernelOops) && err instanceof Error && err.stack) {
      for (const line of err.stack.split("\n").slice(1, 6)) this.printk.log(KERN_EMERG, ` ${line.trim()}`);
    }
    this.findings.add({
      kind: "oops",
      severity: "error",
      timeNs: this.exec.now(),
      driver: owner,
      device: "",
      message: `${kind} in ${where}: ${msg}`,
      fix: "Fix the faulting access; the driver was unbound after the oops.",
      details: { where },
    });
    if (owner) for (const h of this.crashHooks) h(owner);
  }

  /** WARN(): log a warning with a reason and count it; tests fail on unexpected warnings. */
  warn(text: string, prefix = ""): void {
    this.warnings++;
    this.printk.log(KERN_WARNING, `WARNING: ${text}`, prefix);
    this.findings.add({
      kind: "warn",
      severity: "warning",
      timeNs: this.exec.now(),
      driver: this.exec.owner,
      device: prefix.replace(/: $/, ""),
      message: text,
      fix: "Read the warning: the kernel API was used against its contract.",
    });
  }

  /** Drive the machine: run events and threads until idle, `untilNs`, or `until()` holds. */
  async run(limit: { untilNs?: number; until?: () => boolean; maxEvents?: number } = {}): Promise<void> {
    const end = limit.untilNs ?? Infinity;
    let events = 0;
    for (;;) {
      this.enter();
      if (this.exec.hasRunnable) {
        await this.exec.runNextThread();
        continue;
      }
      if (limit.until?.()) return;
      const t = this.platform.peekTime();
      if (t === Infinity || t > end || events >= (limit.maxEvents ?? Infinity)) return;
      this.platform.step();
      events++;
    }
  }
}
