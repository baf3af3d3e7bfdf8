/**
 * The PCI bus type and driver registration (drivers/pci/pci-driver.c).
 *
 * pci_register_driver() matches the driver's id_table against every enumerated function and
 * probes each match in a kernel thread (see the async contract in kernel/base/driver.ts):
 *
 *     const done = pci_register_driver(edu_driver);  // binding starts
 *     await wait_for_device_probe();                 // or await k.run(): probes run here
 *     await done;                                    // 0
 */

import { current_kernel } from "../core/current.ts";
import { driver_core } from "../base/core.ts";
import type { pci_driver } from "./pci-dev.ts";
import { pci_subsys_init } from "./probe.ts";
import { pci_bus_type } from "./bus.ts";

export { pci_bus_type };

/**
 * pci_register_driver - register a PCI driver and probe every matching function
 * @drv: the driver: name, id_table, probe, remove
 * Context: host code or a kernel thread; probes run in kernel threads (may sleep).
 * Returns: a promise of 0 once every probe it started finished, or of -EBUSY at once when a
 * driver of that name is registered. Probe failures do not fail registration (as in Linux).
 */
export function pci_register_driver(drv: pci_driver): Promise<number> {
  const k = current_kernel();
  pci_subsys_init(k);
  return driver_core(k).registerDriver(drv, pci_bus_type);
}

/**
 * pci_unregister_driver - remove() every bound function, release its devres, forget the driver
 * Returns: a promise settled once every function is unbound (async contract as above).
 */
export function pci_unregister_driver(drv: pci_driver): Promise<void> {
  return driver_core().unregisterDriver(drv);
}
