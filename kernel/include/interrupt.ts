/**
 * Driver-facing interrupt API (Linux's <linux/interrupt.h>, <linux/irqreturn.h>,
 * <linux/hardirq.h>): requesting and freeing IRQs, enabling and disabling them, tasklets,
 * and the execution-context queries. devm_request_irq lives with the driver model.
 */

export {
  IRQ_NONE, IRQ_HANDLED, IRQ_WAKE_THREAD, IRQ_RETVAL, IRQ_NOTCONNECTED,
  IRQF_TRIGGER_NONE, IRQF_TRIGGER_RISING, IRQF_TRIGGER_FALLING, IRQF_TRIGGER_HIGH, IRQF_TRIGGER_LOW,
  IRQF_TRIGGER_MASK, IRQF_TRIGGER_PROBE, IRQF_SHARED, IRQF_PROBE_SHARED, IRQF_PERCPU, IRQF_NOBALANCING,
  IRQF_IRQPOLL, IRQF_ONESHOT, IRQF_NO_SUSPEND, IRQF_FORCE_RESUME, IRQF_NO_THREAD, IRQF_EARLY_RESUME,
  IRQF_COND_SUSPEND, IRQF_NO_AUTOEN, IRQF_NO_DEBUG, IRQF_COND_ONESHOT, IRQF_TIMER,
  IRQ_TYPE_NONE, IRQ_TYPE_EDGE_RISING, IRQ_TYPE_EDGE_FALLING, IRQ_TYPE_EDGE_BOTH, IRQ_TYPE_LEVEL_HIGH,
  IRQ_TYPE_LEVEL_LOW, IRQ_TYPE_LEVEL_MASK, IRQ_TYPE_SENSE_MASK,
} from "../irq/flags.ts";
export type { irqreturn_t, irq_handler_t, irq_thread_fn_t } from "../irq/flags.ts";

export {
  request_irq, request_threaded_irq, free_irq, disable_irq, disable_irq_nosync, enable_irq,
  synchronize_irq, irq_set_affinity, irq_get_affinity, irq_set_irq_type, irq_default_primary_handler,
} from "../irq/manage.ts";

export {
  in_hardirq, in_irq, in_softirq, in_serving_softirq, in_interrupt, in_task, in_atomic, might_sleep,
} from "../irq/context.ts";

export {
  tasklet_struct, TASKLET_STATE_SCHED, TASKLET_STATE_RUN, tasklet_setup, tasklet_init, DECLARE_TASKLET,
  tasklet_schedule, tasklet_hi_schedule, tasklet_disable, tasklet_disable_nosync, tasklet_enable,
  tasklet_kill, tasklet_unlock_wait,
} from "../irq/softirq.ts";
