/**
 * Driver-facing time API (Linux's <linux/jiffies.h>, <linux/timer.h>, <linux/ktime.h>,
 * <linux/delay.h>): jiffies and conversions, kernel timers, busy-waits and sleeps.
 * Sleeps are async: `await msleep(10)`, from process context only.
 */

export {
  HZ, MSEC_PER_SEC, USEC_PER_SEC, NSEC_PER_SEC, NSEC_PER_MSEC, NSEC_PER_USEC, USEC_PER_MSEC,
  MAX_SCHEDULE_TIMEOUT, MAX_JIFFY_OFFSET, jiffies, get_jiffies_64, msecs_to_jiffies, usecs_to_jiffies,
  nsecs_to_jiffies, jiffies_to_msecs, jiffies_to_usecs, jiffies_to_nsecs, time_after, time_before,
  time_after_eq, time_before_eq, time_in_range, time_is_before_jiffies, time_is_after_jiffies,
  time_is_before_eq_jiffies, time_is_after_eq_jiffies, ktime_get, ktime_get_ns, ktime_get_boottime_ns,
  ktime_get_raw_ns, ktime_to_ns, ns_to_ktime, ktime_to_us, ktime_to_ms, ktime_add_ns, ktime_add_us,
  ktime_add_ms, ktime_sub, ktime_us_delta, ktime_ms_delta, ktime_after, ktime_before,
} from "../time/jiffies.ts";
export type { ktime_t } from "../time/jiffies.ts";

export {
  timer_list, TIMER_DEFERRABLE, TIMER_PINNED, TIMER_IRQSAFE, timer_setup, mod_timer, mod_timer_pending,
  timer_reduce, add_timer, add_timer_on, timer_pending, del_timer, timer_delete, try_to_del_timer_sync,
  del_timer_sync, timer_delete_sync, timer_shutdown, timer_shutdown_sync, destroy_timer_on_stack,
} from "../time/timer.ts";
export type { timer_fn } from "../time/timer.ts";

export {
  ndelay, udelay, mdelay, msleep, msleep_interruptible, ssleep, usleep_range, fsleep, schedule_timeout,
  schedule_timeout_uninterruptible, schedule_timeout_interruptible, schedule_timeout_killable,
  schedule_timeout_idle, wake_up_process,
} from "../time/delay.ts";
