/**
 * Interrupt entry: how a CPU takes an interrupt (our arch's common_interrupt).
 *
 * The controller tells the core that a CPU may have something to take; the core keeps one
 * entry event pending per CPU, due when the CPU is free. The event takes ONE vector: the
 * highest-priority deliverable one. It acknowledges it at the controller, runs the flow
 * handler in hardirq context (charged to the CPU, traced as a slice), signals end of
 * interrupt, and schedules another entry if more is pending. One vector per event means an
 * interrupt storm advances virtual time (every entry costs CPU time) and never hangs the
 * simulator inside a single event.
 */

import { TRACE_PID_CPU } from "../platform/platform.ts";
import type { IrqCore, irq_desc } from "./irqdesc.ts";

/** The entry event of `cpu`. */
export function irq_entry(core: IrqCore, cpu: number): void {
  core.entryStarted(cpu);
  const p = core.platform;
  const v = p.irqHighestPending(cpu);
  if (v < 0) return;
  p.irqAck(v);
  const desc = core.descs[v];
  core.entries++;
  if (p.trace.enabled) irq_trace_entry(core, cpu, desc);
  core.exec.runOn(cpu, "hardirq", desc.runOwner, desc.runName, desc.flow);
  p.irqEoi(v);
  if (p.irqHighestPending(cpu) >= 0) core.kick(cpu);
}

/** A resent edge interrupt: run the flow again without the controller (irq_sw_resend). */
export function irq_resend_run(core: IrqCore, desc: irq_desc): void {
  if (!desc.replay) return;
  if (core.platform.trace.enabled) irq_trace_entry(core, desc.affinity, desc);
  core.exec.runOn(desc.affinity, "hardirq", desc.runOwner, desc.runName, desc.flow);
  desc.replay = false;
}

function irq_trace_entry(core: IrqCore, cpu: number, desc: irq_desc): void {
  const t = core.platform.trace;
  const at = core.exec.freeAt(cpu);
  t.instant(core.tracks[cpu], "irq", desc.traceName, at, { irq: desc.irq, name: desc.runName });
  t.counter(TRACE_PID_CPU, "interrupts", at, { [desc.traceName]: desc.count + 1 });
}
