/**
 * What every device model is given at construction: the clock and event queue, the guest-error
 * log, the trace recorder and its own stream of randomness. Wiring (IRQ lines, DMA port,
 * placement in the address map) is done by the board after construction, as QEMU's realize.
 */

import type { Scheduler } from "./scheduler.ts";
import type { GuestLog } from "./guest-log.ts";
import type { Trace } from "./trace.ts";
import type { Prng } from "./prng.ts";

export interface DeviceContext {
  readonly scheduler: Scheduler;
  readonly log: GuestLog;
  readonly trace: Trace;
  readonly prng: Prng;
}
