/**
 * Driving drivers from a scenario or a test: bind a PCI driver and let its probes run, call
 * into a driver from a kernel thread (process context, where it may sleep), unbind it.
 * Each helper runs the machine until the work is done.
 */

import type { Kernel } from "../kernel/core/kernel.ts";
import { pci_register_driver, pci_unregister_driver, type pci_driver } from "../kernel/include/pci.ts";
import { driver_core_summary } from "../kernel/base/driver.ts";

/**
 * Start driver-model work (a register or unregister call, any bus) and run the machine until
 * it finished: the probes and removes it starts run in kernel threads.
 */
export async function runUntilDone(k: Kernel, start: () => Promise<unknown>): Promise<void> {
  k.enter();
  const done = start();
  await k.run();
  await done;
}

/** Register `drv` and run until its probes finished; returns how many devices it bound. */
export async function bindDriver(k: Kernel, drv: pci_driver): Promise<number> {
  await runUntilDone(k, () => pci_register_driver(drv));
  return boundCount(k, drv.name);
}

/** Unregister `drv` (remove + devres release for each device) and run until done. */
export async function unbindDriver(k: Kernel, drv: pci_driver): Promise<void> {
  await runUntilDone(k, () => pci_unregister_driver(drv));
}

/** Devices currently bound to the driver named `name`. */
export function boundCount(k: Kernel, name: string): number {
  k.enter();
  return driver_core_summary(k).devices.filter((d) => d.driver === name).length;
}

/**
 * Run `fn` in a kernel thread on CPU 0 and drive the machine until it returned. `owner` is
 * who the work is charged to (allocations, oopses): normally the driver being exercised.
 */
export async function inProcessContext(k: Kernel, name: string, fn: () => Promise<void>, owner = ""): Promise<void> {
  k.enter();
  let finished = false;
  k.exec.spawn(name, 0, owner, async () => {
    await fn();
    finished = true;
  });
  await k.run({ until: () => finished });
  await k.run();
}
