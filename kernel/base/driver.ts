/**
 * The driver core's public calls (include/linux/device.h, device/driver.h, device/bus.h).
 *
 * The async contract (read this before calling anything that returns a Promise here)
 * - Probe and remove run in kernel threads, and kernel threads run only while something drives
 *   the kernel: `await k.run()` (until idle) or `await wait_for_device_probe()` (until every
 *   pending bind and unbind finished).
 * - From host code (tests, CLI, scenario setup): call `driver_register(...)` (or
 *   pci_register_driver, platform_driver_register...), then drive the kernel; the returned
 *   promise is settled by then. Awaiting it WITHOUT driving the kernel never settles.
 *       const done = pci_register_driver(drv);   // binding starts
 *       await wait_for_device_probe();          // or: await k.run()
 *       expect(await done).toBe(0);
 * - From a kernel thread (process context, e.g. module init run in a thread, or a probe
 *   registering a sub-driver), the operation runs inline in the calling thread: `await` it
 *   there, before doing anything else. Adding a device (device_add,
 *   platform_device_register_simple) returns at once and probes in a new thread instead.
 * - Never await these promises from IRQ, softirq or timer context: those are synchronous.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import type { device, device_driver } from "../include/device.ts";
import { EBUSY } from "../include/errno.ts";
import { driver_core, type bus_type, type driver_core_summary_t, type unbind_hook } from "./core.ts";

export type { bus_type, unbind_hook, unbind_reason, driver_core_summary_t, device_summary, driver_summary } from "./core.ts";

/**
 * driver_register - register a driver on a bus and bind it to every matching device
 * @drv: the driver (its name must be unique on the bus)
 * @bus: the bus it drives
 * Context: host code or a kernel thread (see the async contract above).
 * Returns: a promise of 0 once every probe it triggered has finished, or of -EBUSY at once
 * when a driver of that name is already registered. A failing probe does not fail registration.
 */
export function driver_register(drv: device_driver, bus: bus_type): Promise<number> {
  return driver_core().registerDriver(drv, bus);
}

/**
 * driver_unregister - unbind a driver from all its devices (remove(), then devres) and forget it
 * Context: as driver_register. WARNs for a driver that is not registered.
 * Returns: a promise settled once every device is unbound.
 */
export function driver_unregister(drv: device_driver): Promise<void> {
  return driver_core().unregisterDriver(drv);
}

/**
 * device_add - add a device to a bus; matching drivers probe it in a new kernel thread
 * Context: any. The probe runs later (wait_for_device_probe() or k.run() from host code; right
 * after the current probe when called from one).
 * Returns: 0.
 */
export function device_add(dev: device, bus: bus_type): number {
  driver_core().addDevice(dev, bus); // (also gives it its IOMMU group and default domain)
  return 0;
}

/**
 * device_del - unbind a device (remove(), then devres) and take it off its bus
 * Returns: a promise settled once it is gone.
 */
export function device_del(dev: device): Promise<void> {
  return driver_core().removeDevice(dev);
}

/**
 * device_release_driver - unbind one device from its driver (sysfs "unbind")
 * Returns: a promise settled once remove() and the devres release ran.
 */
export function device_release_driver(dev: device): Promise<void> {
  return driver_core().releaseDevice(dev);
}

/** device_is_bound - true when a driver's probe succeeded and remove has not started. */
export function device_is_bound(dev: device): boolean {
  return driver_core().record(dev)?.state === "bound";
}

/**
 * driver_probe_done - is the driver core idle?
 * Returns: 0 when no bind or unbind is pending, -EBUSY otherwise (as Linux's).
 */
export function driver_probe_done(): number {
  return driver_core().pending === 0 ? 0 : -EBUSY;
}

/**
 * wait_for_device_probe - drive the kernel until every pending bind and unbind has finished
 * Context: host code only (it runs the kernel's run loop); never from kernel code.
 * Events that probes wait for (device interrupts, timers) are processed on the way. It returns
 * early if the machine goes idle while a probe still sleeps (waiting for something that can no
 * longer happen); driver_probe_done() then still says -EBUSY.
 */
export async function wait_for_device_probe(k: Kernel = current_kernel()): Promise<void> {
  const core = driver_core(k);
  await k.run({ until: () => core.pending === 0 });
}

/**
 * on_driver_unbind - be told whenever a device loses its driver
 * @hook: called with the device, the driver's name and why (remove, probe-failed, crash),
 *        after the device's devres was released (dma-debug checks for leaked mappings here)
 * Returns: a function that unregisters the hook.
 */
export function on_driver_unbind(hook: unbind_hook): () => void {
  return driver_core().onUnbind(hook);
}

/**
 * driver_core_summary - bound devices and drivers, devres counts per device, pending operations
 * (for reports and scenario teardown checks).
 */
export function driver_core_summary(k: Kernel = current_kernel()): driver_core_summary_t {
  return driver_core(k).summary();
}
