/**
 * Driver-facing workqueues (Linux's <linux/workqueue.h>): work items run in process context
 * in kworker threads and may sleep (async work functions). Waiting calls return Promises.
 */

export {
  work_struct, delayed_work, workqueue_struct, WQ_BH, WQ_UNBOUND, WQ_FREEZABLE, WQ_MEM_RECLAIM, WQ_HIGHPRI,
  WQ_CPU_INTENSIVE, WQ_SYSFS, WQ_POWER_EFFICIENT, WQ_MAX_ACTIVE, WQ_DFL_ACTIVE, WORK_CPU_UNBOUND,
  system_wq, system_highpri_wq, system_long_wq, system_unbound_wq, system_freezable_wq,
  system_power_efficient_wq, INIT_WORK, INIT_DELAYED_WORK, DECLARE_WORK, DECLARE_DELAYED_WORK,
  to_delayed_work, work_pending, delayed_work_pending, work_busy, queue_work_on, queue_work, schedule_work,
  queue_delayed_work_on, queue_delayed_work, schedule_delayed_work, mod_delayed_work_on, mod_delayed_work,
  cancel_work, cancel_delayed_work, cancel_work_sync, cancel_delayed_work_sync, flush_work,
  flush_delayed_work, flush_workqueue, flush_scheduled_work, drain_workqueue, alloc_workqueue,
  alloc_ordered_workqueue, create_singlethread_workqueue, create_workqueue, destroy_workqueue,
} from "../time/workqueue.ts";
export type { work_func_t } from "../time/workqueue.ts";
