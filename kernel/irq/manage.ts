/**
 * Driver-facing IRQ management (Linux's kernel/irq/manage.c): request_irq and friends.
 *
 * Theory of operation
 * - request_threaded_irq builds an irqaction owned by the requesting driver and adds it to
 *   the descriptor under Linux's rules: sharing needs IRQF_SHARED on both sides and the same
 *   trigger and ONESHOT flags ("Flags mismatch irq N ..."), a thread without a primary
 *   handler needs IRQF_ONESHOT unless the chip is ONESHOT-safe (MSI is), the first requester
 *   may set the trigger. The line is enabled unless IRQF_NO_AUTOEN.
 * - A threaded handler gets a kernel thread "irq/<n>-<name>" on the IRQ's CPU. The primary
 *   handler wakes it with IRQ_WAKE_THREAD; it runs thread_fn in process context (thread_fn
 *   may sleep: it may return a Promise), then unmasks a ONESHOT line.
 * - Calls that wait in Linux (disable_irq, synchronize_irq) return a Promise: the effect is
 *   immediate, awaiting it also waits for a threaded handler that is still running. Hard
 *   handlers never overlap process context here (one CPU runs at a time), so nothing else
 *   needs waiting for. free_irq returns at once; a thread still inside thread_fn finishes
 *   that run and exits.
 */

import { current_kernel } from "../core/current.ts";
import { KERN_ERR } from "../core/printk.ts";
import { EBUSY, EINVAL } from "../include/errno.ts";
import { might_sleep_in } from "./context.ts";
import {
  IRQF_COND_ONESHOT, IRQF_COND_SUSPEND, IRQF_NO_AUTOEN, IRQF_NO_SUSPEND, IRQF_ONESHOT, IRQF_PERCPU, IRQF_SHARED,
  IRQF_TRIGGER_FALLING, IRQF_TRIGGER_MASK, IRQF_TRIGGER_RISING, IRQ_HANDLED, IRQ_NOTCONNECTED, IRQ_WAKE_THREAD,
  type irq_handler_t, type irq_thread_fn_t, type irqreturn_t,
} from "./flags.ts";
import { irq_core, irq_to_desc, irqaction, type IrqCore, type irq_desc } from "./irqdesc.ts";
import {
  irq_disable_depth, irq_enable_depth, irq_finalize_oneshot, irq_remove_action, irq_startup,
} from "./chip.ts";

const ENOTCONN = 107;

/** irq_default_primary_handler - the primary handler of a thread-only request. */
export function irq_default_primary_handler(_irq: number, _dev_id: unknown): irqreturn_t {
  return IRQ_WAKE_THREAD;
}

function hex8(x: number): string {
  return (x >>> 0).toString(16).padStart(8, "0");
}

function irq_set_trigger(core: IrqCore, desc: irq_desc, type: number): void {
  desc.triggerType = type;
  desc.level = !(type & (IRQF_TRIGGER_RISING | IRQF_TRIGGER_FALLING));
  core.platform.irqConfigure(desc.irq, desc.level ? "level" : "edge");
}

function irq_mismatch(core: IrqCore, desc: irq_desc, nw: irqaction): number {
  const old = desc.actions[0];
  core.k.printk.log(KERN_ERR, `Flags mismatch irq ${desc.irq}. ${hex8(nw.flags)} (${nw.name}) vs. ${hex8(old.flags)} (${old.name})`);
  return -EBUSY;
}

/** Check sharing rules against the present actions; returns the thread mask in use or -errno. */
function irq_check_share(core: IrqCore, desc: irq_desc, nw: irqaction): number {
  const old = desc.actions[0];
  if (!(old.flags & nw.flags & IRQF_SHARED) || desc.triggerType !== (nw.flags & IRQF_TRIGGER_MASK)) {
    return irq_mismatch(core, desc, nw);
  }
  if (old.flags & IRQF_ONESHOT && nw.flags & IRQF_COND_ONESHOT) nw.flags |= IRQF_ONESHOT;
  else if ((old.flags ^ nw.flags) & IRQF_ONESHOT) return irq_mismatch(core, desc, nw);
  if ((old.flags & IRQF_PERCPU) !== (nw.flags & IRQF_PERCPU)) return irq_mismatch(core, desc, nw);
  let mask = 0;
  for (const a of desc.actions) mask |= a.thread_mask;
  return mask >>> 0;
}

function ffz(mask: number): number {
  for (let b = 0; b < 32; b++) if (!(mask & (1 << b))) return b;
  return -1;
}

/** __setup_irq - add `nw` to `desc`, or explain why not. */
function setup_irq(core: IrqCore, desc: irq_desc, nw: irqaction): number {
  const irq = desc.irq;
  if (!(nw.flags & IRQF_TRIGGER_MASK)) nw.flags |= desc.triggerType;
  // PCI-MSI chips are IRQCHIP_ONESHOT_SAFE: an MSI is an edge that cannot re-fire by itself.
  if (desc.isMsi) nw.flags &= ~IRQF_ONESHOT;
  const shared = desc.actions.length > 0;
  let threadMask = 0;
  if (shared) {
    const r = irq_check_share(core, desc, nw);
    if (r < 0) return r;
    threadMask = r;
  }
  if (nw.flags & IRQF_ONESHOT) {
    const bit = ffz(threadMask);
    if (bit < 0) return -EBUSY;
    nw.thread_mask = (1 << bit) >>> 0;
  } else if (nw.handler === irq_default_primary_handler && !desc.isMsi) {
    core.k.printk.log(KERN_ERR, `Threaded irq requested with handler=NULL and !ONESHOT for ${nw.name} (irq ${irq})`);
    return -EINVAL;
  }
  if (!shared) {
    if (nw.flags & IRQF_TRIGGER_MASK) irq_set_trigger(core, desc, nw.flags & IRQF_TRIGGER_MASK);
    desc.pending = desc.replay = desc.spuriousDisabled = false;
    desc.oneshot = (nw.flags & IRQF_ONESHOT) !== 0;
    desc.threadsOneshot = 0;
  }
  desc.actions = Object.freeze([...desc.actions, nw]);
  if (!desc.everNames.includes(nw.name)) desc.everNames.push(nw.name);
  desc.refreshNames();
  desc.irqCount = 0;
  desc.irqsUnhandled = 0;
  if (nw.thread_fn) irq_setup_thread(core, desc, nw);
  if (!shared) {
    if (!(nw.flags & IRQF_NO_AUTOEN)) irq_startup(core, desc, true);
    else desc.depth = 1;
  } else if (desc.spuriousDisabled) {
    // A new handler gets another chance on a line the detector had disabled.
    desc.spuriousDisabled = false;
    irq_enable_depth(core, desc);
  }
  return 0;
}

function irq_setup_thread(core: IrqCore, desc: irq_desc, a: irqaction): void {
  a.thread = core.exec.spawn(`irq/${desc.irq}-${a.name}`, desc.affinity, a.owner, () => irq_thread(core, desc, a));
}

/** irq_thread - the body of an IRQ thread: wait for a wake, run thread_fn, finalize. */
async function irq_thread(core: IrqCore, desc: irq_desc, a: irqaction): Promise<void> {
  const k = core.k;
  for (;;) {
    while (!a.runThread && !a.stop) await k.exec.block();
    // Stopped: run once more if the primary handler still asked for it (as kthread_stop).
    if (!a.runThread) break;
    a.runThread = false;
    let ret: irqreturn_t = 0;
    try {
      ret = await a.thread_fn!(desc.irq, a.dev_id);
    } catch (err) {
      k.oops(err, `irq/${desc.irq}-${a.name}`, a.owner);
    }
    if (ret === IRQ_HANDLED) desc.threadsHandled++;
    irq_finalize_oneshot(core, desc, a);
    desc.threadsActive--;
    if (desc.threadsActive === 0) desc.threadWait.wakeAll(k);
  }
  a.thread = null;
}

/**
 * request_threaded_irq - allocate an interrupt line with a primary and a threaded handler
 * @irq: the IRQ number (controller vector; from pdev->irq or pci_irq_vector)
 * @handler: hardirq handler, or null for "just wake the thread" (needs IRQF_ONESHOT)
 * @thread_fn: handler run in a kernel thread (may sleep), or null
 * @irqflags: IRQF_* flags
 * @devname: name shown in reports and the thread name
 * @dev_id: cookie passed to the handlers and to free_irq (required when shared)
 * Context: process context.
 * Returns: 0, -EINVAL (bad IRQ, shared without cookie, no handler, thread-only without
 * ONESHOT), -EBUSY (line taken and not shareable, or flags mismatch), -ENOTCONN.
 */
export function request_threaded_irq(
  irq: number,
  handler: irq_handler_t | null,
  thread_fn: irq_thread_fn_t | null,
  irqflags: number,
  devname: string,
  dev_id: unknown,
): number {
  const k = current_kernel();
  const core = irq_core(k);
  if (irq === IRQ_NOTCONNECTED) return -ENOTCONN;
  const shared = (irqflags & IRQF_SHARED) !== 0;
  if ((shared && !dev_id) || (shared && irqflags & IRQF_NO_AUTOEN) || (!shared && irqflags & IRQF_COND_SUSPEND)
    || (irqflags & IRQF_NO_SUSPEND && irqflags & IRQF_COND_SUSPEND)) return -EINVAL;
  const desc = irq_to_desc(core, irq);
  if (!desc) return -EINVAL;
  if (!handler) {
    if (!thread_fn) return -EINVAL;
    handler = irq_default_primary_handler;
  }
  const action = new irqaction(irq, handler, thread_fn, irqflags, devname, dev_id, k.exec.owner);
  return setup_irq(core, desc, action);
}

/**
 * request_irq - allocate an interrupt line (request_threaded_irq without a thread)
 * Context: process context. Returns: 0 or -errno as request_threaded_irq.
 */
export function request_irq(irq: number, handler: irq_handler_t, flags: number, name: string, dev: unknown): number {
  return request_threaded_irq(irq, handler, null, flags, name, dev);
}

/**
 * free_irq - remove the action of `dev_id` from `irq`
 * Context: process context (from IRQ context: WARN, done anyway). On a shared line the
 * device must be quiet first.
 * Returns: the devname given at request time, or null (WARN) if no such action.
 */
export function free_irq(irq: number, dev_id: unknown): string | null {
  const k = current_kernel();
  const core = irq_core(k);
  const desc = irq_to_desc(core, irq);
  if (!desc) {
    k.warn(`Trying to free IRQ ${irq} which does not exist`);
    return null;
  }
  if (k.exec.context !== "process") k.warn(`Trying to free IRQ ${irq} from IRQ context!`);
  const action = desc.actions.find((a) => a.dev_id === dev_id);
  if (!action) {
    k.warn(`Trying to free already-free IRQ ${irq}`);
    return null;
  }
  irq_remove_action(core, desc, action);
  return action.name;
}

function desc_or_null(irq: number): { core: IrqCore; desc: irq_desc | null } {
  const core = irq_core(current_kernel());
  return { core, desc: irq_to_desc(core, irq) };
}

/**
 * disable_irq_nosync - disable an IRQ without waiting (nests; lazy: masked on arrival)
 * Context: any.
 */
export function disable_irq_nosync(irq: number): void {
  const { desc } = desc_or_null(irq);
  if (desc) irq_disable_depth(desc);
}

/**
 * disable_irq - disable an IRQ and wait for its handlers
 * Context: process context (sleeps to wait for a threaded handler). Takes effect at once;
 * await the result to also wait. From the IRQ's own handler it would deadlock: WARN.
 */
export function disable_irq(irq: number): Promise<void> {
  disable_irq_nosync(irq);
  return irq_sync(irq, "disable_irq");
}

/**
 * enable_irq - undo one disable_irq; at depth 0 the line is live again and an interrupt
 * that arrived meanwhile is replayed.
 * Context: any. An enable without a disable: WARN "Unbalanced enable for IRQ N".
 */
export function enable_irq(irq: number): void {
  const k = current_kernel();
  const { core, desc } = desc_or_null(irq);
  if (!desc) return;
  if (!irq_enable_depth(core, desc)) k.warn(`Unbalanced enable for IRQ ${irq}`);
}

/**
 * synchronize_irq - wait until no handler of `irq` runs (hard or threaded)
 * Context: process context in a thread when a threaded handler is active (await it).
 */
export function synchronize_irq(irq: number): Promise<void> {
  return irq_sync(irq, "synchronize_irq");
}

function irq_sync(irq: number, what: string): Promise<void> {
  const k = current_kernel();
  const { desc } = desc_or_null(irq);
  if (!desc) return Promise.resolve();
  if (k.exec.context === "hardirq" && desc.inProgress) {
    k.warn(`${what}(${irq}) called from IRQ ${irq}'s own handler: would deadlock (use disable_irq_nosync)`);
    return Promise.resolve();
  }
  if (k.exec.context !== "process") {
    might_sleep_in(k, what);
    return Promise.resolve();
  }
  if (desc.threadsActive === 0) return Promise.resolve();
  const self = k.exec.thread;
  if (self && desc.actions.some((a) => a.thread === self)) {
    k.warn(`${what}(${irq}) called from IRQ ${irq}'s own thread: would deadlock`);
    return Promise.resolve();
  }
  if (!might_sleep_in(k, what)) return Promise.resolve();
  return desc.threadWait.wait(k, () => desc.threadsActive === 0).then(() => undefined);
}

/**
 * irq_set_affinity - route `irq` to `cpu`
 * Context: any. Returns: 0, or -EINVAL for a bad IRQ or CPU.
 */
export function irq_set_affinity(irq: number, cpu: number): number {
  const { core, desc } = desc_or_null(irq);
  if (!desc || !Number.isInteger(cpu) || cpu < 0 || cpu >= core.platform.cpus) return -EINVAL;
  desc.affinity = cpu;
  core.platform.irqSetAffinity(irq, cpu);
  if (core.platform.irqHighestPending(cpu) >= 0) core.kick(cpu);
  return 0;
}

/** irq_get_affinity - the CPU `irq` is routed to (-EINVAL for a bad IRQ). */
export function irq_get_affinity(irq: number): number {
  const { desc } = desc_or_null(irq);
  return desc ? desc.affinity : -EINVAL;
}

/**
 * irq_set_irq_type - set the trigger (IRQ_TYPE_*) of a line
 * Context: process context. Returns: 0 or -EINVAL.
 */
export function irq_set_irq_type(irq: number, type: number): number {
  const { core, desc } = desc_or_null(irq);
  if (!desc || !(type & IRQF_TRIGGER_MASK)) return -EINVAL;
  irq_set_trigger(core, desc, type & IRQF_TRIGGER_MASK);
  return 0;
}
