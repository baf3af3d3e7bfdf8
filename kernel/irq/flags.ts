/**
 * Interrupt API constants and types, with Linux's values (include/linux/interrupt.h,
 * irqreturn.h, irq.h).
 */

/** irqreturn_t: IRQ_NONE, IRQ_HANDLED, IRQ_WAKE_THREAD (results of sharers are OR-ed). */
export type irqreturn_t = number;
export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1;
export const IRQ_WAKE_THREAD = 2;

/** IRQ_RETVAL - IRQ_HANDLED if x, else IRQ_NONE. */
export function IRQ_RETVAL(x: unknown): irqreturn_t {
  return x ? IRQ_HANDLED : IRQ_NONE;
}

/** Top half: runs in hardirq context, must not sleep. */
export type irq_handler_t = (irq: number, dev_id: unknown) => irqreturn_t;
/** Bottom half of a threaded IRQ: runs in its kernel thread, may sleep (return a Promise). */
export type irq_thread_fn_t = (irq: number, dev_id: unknown) => irqreturn_t | Promise<irqreturn_t>;

export const IRQF_TRIGGER_NONE = 0x00000000;
export const IRQF_TRIGGER_RISING = 0x00000001;
export const IRQF_TRIGGER_FALLING = 0x00000002;
export const IRQF_TRIGGER_HIGH = 0x00000004;
export const IRQF_TRIGGER_LOW = 0x00000008;
export const IRQF_TRIGGER_MASK = IRQF_TRIGGER_HIGH | IRQF_TRIGGER_LOW | IRQF_TRIGGER_RISING | IRQF_TRIGGER_FALLING;
export const IRQF_TRIGGER_PROBE = 0x00000010;

export const IRQF_SHARED = 0x00000080;
export const IRQF_PROBE_SHARED = 0x00000100;
export const __IRQF_TIMER = 0x00000200;
export const IRQF_PERCPU = 0x00000400;
export const IRQF_NOBALANCING = 0x00000800;
export const IRQF_IRQPOLL = 0x00001000;
export const IRQF_ONESHOT = 0x00002000;
export const IRQF_NO_SUSPEND = 0x00004000;
export const IRQF_FORCE_RESUME = 0x00008000;
export const IRQF_NO_THREAD = 0x00010000;
export const IRQF_EARLY_RESUME = 0x00020000;
export const IRQF_COND_SUSPEND = 0x00040000;
export const IRQF_NO_AUTOEN = 0x00080000;
export const IRQF_NO_DEBUG = 0x00100000;
export const IRQF_COND_ONESHOT = 0x00200000;
export const IRQF_TIMER = __IRQF_TIMER | IRQF_NO_SUSPEND | IRQF_NO_THREAD;

/** IRQ_TYPE_* for irq_set_irq_type() (same bits as IRQF_TRIGGER_*). */
export const IRQ_TYPE_NONE = 0;
export const IRQ_TYPE_EDGE_RISING = 1;
export const IRQ_TYPE_EDGE_FALLING = 2;
export const IRQ_TYPE_EDGE_BOTH = IRQ_TYPE_EDGE_FALLING | IRQ_TYPE_EDGE_RISING;
export const IRQ_TYPE_LEVEL_HIGH = 4;
export const IRQ_TYPE_LEVEL_LOW = 8;
export const IRQ_TYPE_LEVEL_MASK = IRQ_TYPE_LEVEL_LOW | IRQ_TYPE_LEVEL_HIGH;
export const IRQ_TYPE_SENSE_MASK = 0x0000000f;

/** IRQ_NOTCONNECTED: an interrupt that is not wired anywhere (request_irq gives -ENOTCONN). */
export const IRQ_NOTCONNECTED = 0x80000000;
