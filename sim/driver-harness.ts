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
  await inThread(k, name, fn, owner);
  await k.run();
}

/**
 * Run @fn as the device, @delayNs of virtual time from now (an event on the machine's clock, so
 * findings and dmesg carry the time it happened), and drive the machine until it ran.
 */
export async function asDevice<T>(k: Kernel, delayNs: number, fn: () => T): Promise<T> {
  k.enter();
  let out: { v: T } | null = null;
  // From when the CPUs are done with what they ran (the event clock lags the CPU time charged).
  k.platform.at(Math.max(k.platform.now(), ...k.exec.busyUntil) + delayNs, "rogue-firmware", () => {
    out = { v: fn() };
  });
  await k.run({ until: () => out !== null });
  await k.run({ untilNs: k.platform.now() }); // what the access set off at that instant (fault interrupt)
  return (out as { v: T } | null)!.v;
}

/**
 * Run @fn in a kernel thread (process context, charged to @owner) and drive the machine only
 * until it returned: unlike inProcessContext, later events (a flush-queue timer 10 ms ahead)
 * stay pending, so the scenario decides when virtual time moves on.
 */
export async function inThread(k: Kernel, name: string, fn: () => Promise<void> | void, owner = ""): Promise<void> {
  k.enter();
  let finished = false;
  k.exec.spawn(name, 0, owner, async () => {
    await fn();
    finished = true;
  });
  await k.run({ until: () => finished });
}
