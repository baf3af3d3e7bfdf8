/**
 * Driver-facing completions (Linux's <linux/completion.h>). complete() from any context;
 * the waits are async and for process context: `await wait_for_completion(done)`.
 */

export {
  completion, init_completion, reinit_completion, DECLARE_COMPLETION, complete, complete_all,
  try_wait_for_completion, completion_done, wait_for_completion, wait_for_completion_timeout,
  wait_for_completion_interruptible, wait_for_completion_interruptible_timeout,
  wait_for_completion_killable, wait_for_completion_io, wait_for_completion_io_timeout,
} from "../time/completion.ts";
