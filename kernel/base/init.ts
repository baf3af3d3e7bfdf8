/**
 * driver_init (drivers/base/init.c): bring up the buses at boot. The platform bus adds the
 * machine description's platform devices; PCI enumerates bus 0 through ECAM. Both are
 * idempotent and also happen lazily on the first driver registration of their bus.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { driver_core } from "./core.ts";
import { platform_bus_init } from "./platform.ts";
import { pci_subsys_init } from "../pci/probe.ts";

/** driver_init - create the driver core and enumerate the platform and PCI buses. */
export function driver_init(k: Kernel = current_kernel()): void {
  driver_core(k);
  platform_bus_init(k);
  pci_subsys_init(k);
}
