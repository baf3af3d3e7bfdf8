/**
 * Driver-facing platform bus API (include/linux/platform_device.h, ioport.h).
 *
 * Async contract (see kernel/base/driver.ts): platform_driver_register() returns a promise
 * settled after the probes it started ran, which happens while the kernel runs.
 */
export {
  platform_device, to_platform_device, PLATFORM_DEVID_NONE, PLATFORM_DEVID_AUTO,
  platform_device_register_simple, platform_device_unregister,
  platform_driver_register, platform_driver_unregister,
  platform_get_resource, platform_get_irq, platform_get_irq_optional,
  devm_platform_ioremap_resource, platform_set_drvdata, platform_get_drvdata,
} from "../base/platform.ts";
export type { platform_driver, platform_device_id } from "../base/platform.ts";
export {
  IORESOURCE_IO, IORESOURCE_MEM, IORESOURCE_IRQ, IORESOURCE_DMA, IORESOURCE_TYPE_BITS,
  DEFINE_RES_MEM, DEFINE_RES_IRQ, resource_size, resource_type,
  request_mem_region, release_mem_region,
} from "../base/resource.ts";
export type { resource } from "../base/resource.ts";
export { wait_for_device_probe, driver_probe_done } from "../base/driver.ts";
