/**
 * Flow handlers and line control (Linux's kernel/irq/chip.c and handle.c).
 *
 * - Level (handle_level_irq): mask, run the actions, unmask, unless the line is disabled or a
 *   ONESHOT thread still has to run. A device that keeps its line asserted makes it fire
 *   again right after the unmask.
 * - Edge (handle_edge_irq, MSI): the controller already consumed the edge at ack; run the
 *   actions; an edge arriving meanwhile is latched by the controller and taken next.
 * - Lazy disable: disable_irq only marks the IRQ disabled. An interrupt that arrives while
 *   disabled is masked there and then, and recorded PENDING; enable_irq unmasks (a level
 *   line re-asserts by itself) or resends an edge in software.
 * - Each action runs attributed to its owner; an exception in a handler is that driver's
 *   oops, and the remaining sharers still run.
 */

import { KERN_ERR } from "../core/printk.ts";
import { IRQ_NONE, IRQ_WAKE_THREAD, type irqreturn_t } from "./flags.ts";
import type { IrqCore, irq_desc, irqaction } from "./irqdesc.ts";
import { NON_INT_RET, note_interrupt } from "./spurious.ts";

export function mask_irq(core: IrqCore, desc: irq_desc): void {
  if (desc.masked) return;
  core.platform.irqMask(desc.irq);
  desc.masked = true;
}

export function unmask_irq(core: IrqCore, desc: irq_desc): void {
  if (!desc.masked) return;
  core.platform.irqUnmask(desc.irq);
  desc.masked = false;
}

/** The flow handler of a descriptor (bound once per descriptor as desc.flow). */
export function irq_flow(core: IrqCore, desc: irq_desc): void {
  if (desc.level) handle_level_irq(core, desc);
  else handle_edge_irq(core, desc);
}

/** handle_level_irq - mask while handlers run; unmask unless disabled or ONESHOT pending. */
export function handle_level_irq(core: IrqCore, desc: irq_desc): void {
  mask_irq(core, desc);
  desc.replay = false;
  if (desc.actions.length === 0 || desc.disabled) {
    desc.pending = true;
    return;
  }
  desc.count++;
  handle_irq_event(core, desc);
  if (!desc.disabled && desc.masked && desc.threadsOneshot === 0) unmask_irq(core, desc);
}

/** handle_edge_irq - handlers run with the line unmasked; disabled → mask and mark PENDING. */
export function handle_edge_irq(core: IrqCore, desc: irq_desc): void {
  desc.replay = false;
  if (desc.disabled || desc.actions.length === 0) {
    desc.pending = true;
    mask_irq(core, desc);
    return;
  }
  desc.count++;
  do {
    if (desc.actions.length === 0) {
      mask_irq(core, desc);
      return;
    }
    if (desc.pending && !desc.disabled && desc.masked) unmask_irq(core, desc);
    handle_irq_event(core, desc);
  } while (desc.pending && !desc.disabled);
}

/** handle_irq_event - run every action, then let note_interrupt judge the combined result. */
export function handle_irq_event(core: IrqCore, desc: irq_desc): void {
  desc.pending = false;
  desc.inProgress = true;
  const ret = handle_irq_event_percpu(core, desc);
  desc.inProgress = false;
  if (!core.spurious.noirqdebug) note_interrupt(core, desc, ret);
}

function handle_irq_event_percpu(core: IrqCore, desc: irq_desc): irqreturn_t {
  const actions = desc.actions;
  const exec = core.exec;
  let retval = IRQ_NONE;
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i];
    if (a.removed) continue;
    exec.owner = a.owner;
    let res: unknown;
    try {
      res = a.handler(desc.irq, a.dev_id);
    } catch (err) {
      core.k.oops(err, desc.runName, a.owner);
      continue;
    }
    if (typeof res !== "number" || !Number.isInteger(res)) {
      core.lastBogusText = String(res);
      retval |= NON_INT_RET;
      continue;
    }
    if (res === IRQ_WAKE_THREAD) {
      if (a.thread_fn) irq_wake_thread(core, desc, a);
      else warn_no_thread(core, desc, a);
    }
    retval |= res;
  }
  exec.owner = desc.runOwner;
  return retval;
}

function warn_no_thread(core: IrqCore, desc: irq_desc, a: irqaction): void {
  if (a.warned) return;
  a.warned = true;
  core.k.warn(`IRQ ${desc.irq} device ${a.name} returned IRQ_WAKE_THREAD but no thread function available.`);
}

/** __irq_wake_thread - hand the interrupt to the action's thread (once until it ran). */
export function irq_wake_thread(core: IrqCore, desc: irq_desc, a: irqaction): void {
  if (!a.thread || a.runThread) return;
  a.runThread = true;
  desc.threadsOneshot |= a.thread_mask;
  desc.threadsActive++;
  core.exec.wake(a.thread);
}

/** irq_finalize_oneshot - the thread ran: unmask once no ONESHOT thread is pending. */
export function irq_finalize_oneshot(core: IrqCore, desc: irq_desc, a: irqaction): void {
  if (!desc.oneshot) return;
  // Woken again meanwhile: the line stays masked for that run.
  if (a.runThread) return;
  desc.threadsOneshot &= ~a.thread_mask;
  if (desc.threadsOneshot === 0 && !desc.disabled && desc.masked) unmask_irq(core, desc);
}

/** irq_startup - enable the line (depth 0) and resend what arrived while it was off. */
export function irq_startup(core: IrqCore, desc: irq_desc, resend: boolean): void {
  desc.started = true;
  desc.depth = 0;
  desc.disabled = false;
  unmask_irq(core, desc);
  if (resend) check_irq_resend(core, desc);
}

/** irq_shutdown - the last action is gone: mask, disable, forget pending state. */
export function irq_shutdown(core: IrqCore, desc: irq_desc): void {
  desc.started = false;
  desc.depth = 1;
  desc.disabled = true;
  desc.pending = false;
  desc.replay = false;
  desc.threadsOneshot = 0;
  mask_irq(core, desc);
}

/** check_irq_resend - level lines re-assert by themselves; an edge is resent in software. */
export function check_irq_resend(core: IrqCore, desc: irq_desc): void {
  if (desc.level) {
    desc.pending = false;
    return;
  }
  if (desc.replay || !desc.pending) return;
  desc.pending = false;
  desc.replay = true;
  core.resend(desc);
}

/** __disable_irq - one more level of disable; the first one marks the IRQ disabled (lazily). */
export function irq_disable_depth(desc: irq_desc): void {
  if (desc.depth++ === 0) desc.disabled = true;
}

/** __enable_irq - undo one disable; at depth 0 the line is enabled and pending work resent. */
export function irq_enable_depth(core: IrqCore, desc: irq_desc): boolean {
  if (desc.depth === 0) return false;
  if (desc.depth === 1) irq_startup(core, desc, true);
  else desc.depth--;
  return true;
}

/**
 * Remove an action from its descriptor (free_irq and crash cleanup): shut the line down if
 * it was the last, and tell its thread to exit after any run it still owes.
 */
export function irq_remove_action(core: IrqCore, desc: irq_desc, a: irqaction): void {
  if (a.removed) return;
  a.removed = true;
  desc.actions = Object.freeze(desc.actions.filter((x) => x !== a));
  desc.refreshNames();
  if (desc.actions.length === 0) irq_shutdown(core, desc);
  if (a.thread) {
    a.stop = true;
    core.exec.wake(a.thread);
  }
}

/** Print the handlers of a line, as __report_bad_irq does. */
export function irq_print_handlers(core: IrqCore, desc: irq_desc): void {
  const log = core.k.printk;
  log.log(KERN_ERR, "handlers:");
  for (const a of desc.actions) {
    const own = a.owner ? ` [${a.owner}]` : "";
    const h = a.handler.name || "(anonymous)";
    let line = `[<${h}>] ${h}${own}`;
    if (a.thread_fn) {
      const t = a.thread_fn.name || "(anonymous)";
      line += ` threaded [<${t}>] ${t}${own}`;
    }
    log.log(KERN_ERR, line);
  }
}
