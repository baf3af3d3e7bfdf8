/**
 * Spurious and stuck interrupt detection (Linux's kernel/irq/spurious.c, note_interrupt).
 *
 * Every interrupt counts; every IRQ_NONE counts as unhandled, except that an unhandled one
 * more than HZ/10 after the previous restarts that count at 1 (the odd spurious interrupt
 * must not become a doomsday timer). Each 100,000 interrupts close a window: more than 99,900
 * unhandled and the line is stuck: "nobody cared", the handlers are listed, the IRQ is
 * disabled for good (spurious-disabled) and an irq-storm finding names the drivers. With
 * threaded handlers, a primary that only returns IRQ_WAKE_THREAD is judged at the next
 * interrupt by whether a thread reported IRQ_HANDLED meanwhile (SPURIOUS_DEFERRED).
 * Window and threshold are tunable (irq_set_spurious_thresholds) so tests stay fast.
 */

import { KERN_EMERG, KERN_ERR } from "../core/printk.ts";
import { NSEC_PER_JIFFY } from "../time/jiffies.ts";
import { IRQ_HANDLED, IRQ_NONE, IRQ_WAKE_THREAD, type irqreturn_t } from "./flags.ts";
import type { IrqCore, irq_desc } from "./irqdesc.ts";
import { irq_print_handlers, mask_irq } from "./chip.ts";

/** Marks a handler result that was not an integer at all (undefined, true...): bogus. */
export const NON_INT_RET = 0x1000;

export const STORM_FIX =
  "Acknowledge the device's interrupt status in the handler and return IRQ_NONE only when the device did not interrupt.";

function bad_action_ret(ret: irqreturn_t): boolean {
  return (ret & ~(IRQ_HANDLED | IRQ_WAKE_THREAD)) !== 0;
}

function report_bad_irq(core: IrqCore, desc: irq_desc, ret: irqreturn_t): void {
  if (core.badReportsLeft <= 0) return;
  core.badReportsLeft--;
  const shown = ret & NON_INT_RET ? core.lastBogusText : (ret >>> 0).toString(16);
  core.k.warn(`irq event ${desc.irq}: bogus return value ${shown}`);
  irq_print_handlers(core, desc);
}

/** Turn IRQ_WAKE_THREAD into handled / not handled by what the threads did (or defer). */
function judge_threaded(desc: irq_desc, ret: irqreturn_t): irqreturn_t | -1 {
  if (ret !== IRQ_WAKE_THREAD) {
    // A primary handler returned IRQ_HANDLED: the threads' results do not matter.
    desc.spuriousDeferred = false;
    return ret;
  }
  if (!desc.spuriousDeferred) {
    desc.spuriousDeferred = true;
    return -1;
  }
  if (desc.threadsHandled !== desc.threadsHandledLast) {
    desc.threadsHandledLast = desc.threadsHandled;
    return IRQ_HANDLED;
  }
  return IRQ_NONE;
}

/**
 * note_interrupt - account one interrupt's combined result; disable a stuck line
 * Context: hardirq (called by the flow handler).
 */
export function note_interrupt(core: IrqCore, desc: irq_desc, ret: irqreturn_t): void {
  if (bad_action_ret(ret)) {
    report_bad_irq(core, desc, ret);
    return;
  }
  if (ret & IRQ_WAKE_THREAD) {
    const judged = judge_threaded(desc, ret);
    if (judged === -1) return;
    ret = judged;
  }
  const s = core.spurious;
  if (ret === IRQ_NONE) {
    const j = Math.floor(core.exec.now() / NSEC_PER_JIFFY);
    // time_after(jiffies, last_unhandled + HZ/10)
    if (desc.lastUnhandled + s.resetJiffies - j < 0) desc.irqsUnhandled = 1;
    else desc.irqsUnhandled++;
    desc.lastUnhandled = j;
    desc.totalUnhandled++;
  }
  desc.irqCount++;
  if (desc.irqCount < s.window) return;
  desc.irqCount = 0;
  if (desc.irqsUnhandled > s.threshold) irq_declare_stuck(core, desc, desc.irqsUnhandled);
  desc.irqsUnhandled = 0;
}

function irq_declare_stuck(core: IrqCore, desc: irq_desc, unhandled: number): void {
  const k = core.k;
  const irq = desc.irq;
  k.printk.log(KERN_ERR, `irq ${irq}: nobody cared (try booting with the "irqpoll" option)`);
  k.printk.log(KERN_ERR, `CPU: ${core.exec.cpu} PID: 0 Comm: swapper/${core.exec.cpu}`);
  irq_print_handlers(core, desc);
  k.printk.log(KERN_EMERG, `Disabling IRQ #${irq}`);
  desc.spuriousDisabled = true;
  desc.depth++;
  desc.disabled = true;
  mask_irq(core, desc);
  const owners = [...new Set(desc.actions.map((a) => a.owner).filter((o) => o))];
  const names = desc.actions.map((a) => a.name);
  k.findings.add({
    kind: "irq-storm",
    severity: "error",
    timeNs: core.exec.now(),
    driver: owners.join(", "),
    device: names.join(", "),
    message: `irq ${irq}: nobody cared: ${unhandled} of the last ${core.spurious.window} interrupts were not handled; IRQ ${irq} disabled`,
    fix: STORM_FIX,
    details: {
      irq,
      window: core.spurious.window,
      unhandled,
      handlers: desc.actions.map((a) => a.handler.name || "(anonymous)").join(", "),
      trigger: desc.level ? "level" : "edge",
    },
  });
}
