/**
 * The platform bus (drivers/base/platform.c): devices that are not discoverable, described by
 * the machine (its `platform` entries: name, model, MMIO base/size, interrupt line) or added
 * by code with platform_device_register_simple().
 *
 * Matching, in Linux's order: the driver's id_table names, then the driver's name against the
 * device's name; a driver may also be named after the device's model (the machine file's
 * "compatible" string), so one driver serves every instance of a model.
 * Probe and remove follow the driver core's async contract (kernel/base/driver.ts).
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { device, type device_driver } from "../include/device.ts";
import { EEXIST, ENXIO, ERR_PTR, type err_ptr } from "../include/errno.ts";
import type { iomem_t } from "../include/types.ts";
import { driver_core, type bus_type } from "./core.ts";
import { dev_err } from "./dev_printk.ts";
import { devm_ioremap_resource } from "./devres-io.ts";
import { DEFINE_RES_IRQ, DEFINE_RES_MEM, IORESOURCE_IRQ, IORESOURCE_MEM, resource_type, type resource } from "./resource.ts";
import { KERN_ERR } from "../core/printk.ts";

export const PLATFORM_DEVID_NONE = -1;
export const PLATFORM_DEVID_AUTO = -2;

export interface platform_device_id {
  readonly name: string;
  readonly driver_data?: number;
}

/** struct platform_device. */
export class platform_device {
  readonly dev: device;
  readonly resource: resource[];
  /** The id_table entry that matched, once bound. */
  id_entry: platform_device_id | null = null;

  constructor(
    readonly name: string,
    readonly id: number,
    res: readonly resource[],
    devName: string,
    /** The machine description's model ("compatible"), if the device came from there. */
    readonly model: string | null = null,
  ) {
    this.dev = new device(devName, "platform");
    this.resource = res.map((r) => ({ ...r }));
  }

  get num_resources(): number {
    return this.resource.length;
  }
}

/** struct platform_driver. */
export interface platform_driver {
  readonly driver: device_driver;
  readonly id_table?: readonly platform_device_id[];
  probe(pdev: platform_device): number | Promise<number>;
  remove?(pdev: platform_device): void | Promise<void>;
}

const pdev_of = new WeakMap<device, platform_device>();
const pdrv_of = new WeakMap<device_driver, platform_driver>();

/** to_platform_device - the platform_device that embeds `dev`. */
export function to_platform_device(dev: device): platform_device {
  const p = pdev_of.get(dev);
  if (!p) throw new Error(`BUG: ${dev.name} is not a platform device`);
  return p;
}

function platform_match_id(drv: platform_driver, pdev: platform_device): platform_device_id | null {
  return drv.id_table?.find((id) => id.name === pdev.name) ?? null;
}

export const platform_bus_type: bus_type = {
  name: "platform",
  match(dev, drv) {
    const pdev = to_platform_device(dev);
    const pdrv = pdrv_of.get(drv);
    if (!pdrv) return false;
    if (platform_match_id(pdrv, pdev)) return true;
    return pdev.name === drv.name || pdev.model === drv.name;
  },
  probe(dev, drv) {
    const pdev = to_platform_device(dev);
    const pdrv = pdrv_of.get(drv)!;
    pdev.id_entry = platform_match_id(pdrv, pdev);
    return pdrv.probe(pdev);
  },
  remove(dev, drv) {
    const pdrv = pdrv_of.get(drv)!;
    if (pdrv.remove) return pdrv.remove(to_platform_device(dev));
  },
  unbound(dev) {
    to_platform_device(dev).id_entry = null;
  },
};

interface PlatformBusState {
  auto: number;
  booted: boolean;
}

function bus_state(k: Kernel): PlatformBusState {
  return k.state("platform_bus", () => ({ auto: 0, booted: false }));
}

/**
 * platform_bus_init - add the machine description's platform devices (once)
 * Context: boot; called by driver_init() and lazily by platform_driver_register().
 */
export function platform_bus_init(k: Kernel = current_kernel()): void {
  const st = bus_state(k);
  if (st.booted) return;
  st.booted = true;
  for (const d of k.platform.desc.platform) {
    const res = [DEFINE_RES_MEM(d.base, d.size, d.name), DEFINE_RES_IRQ(d.irq, d.name)];
    const pdev = new platform_device(d.name, PLATFORM_DEVID_NONE, res, d.name, d.model);
    add(k, pdev);
  }
}

function add(k: Kernel, pdev: platform_device): void {
  pdev.dev.dma_coherent = k.platform.coherentDma;
  pdev_of.set(pdev.dev, pdev);
  driver_core(k).addDevice(pdev.dev, platform_bus_type);
}

/**
 * platform_device_register_simple - create and add a platform device
 * @name: device (and driver-matching) name
 * @id: instance number, PLATFORM_DEVID_NONE or PLATFORM_DEVID_AUTO; may be omitted
 * @res: its resources (DEFINE_RES_MEM, DEFINE_RES_IRQ)
 * Context: host code or a kernel thread; matching drivers probe it asynchronously (see the
 * driver core's async contract).
 * Returns: the device, or ERR_PTR(-EEXIST) when a device of that name exists.
 */
export function platform_device_register_simple(name: string, id: number | readonly resource[] = PLATFORM_DEVID_NONE, res: readonly resource[] = []): platform_device | err_ptr {
  const k = current_kernel();
  platform_bus_init(k);
  if (typeof id !== "number") return platform_device_register_simple(name, PLATFORM_DEVID_NONE, id);
  const st = bus_state(k);
  const devName = id === PLATFORM_DEVID_NONE ? name : id === PLATFORM_DEVID_AUTO ? `${name}.${st.auto++}.auto` : `${name}.${id}`;
  if (driver_core(k).devices.some((r) => r.dev.name === devName)) {
    k.printk.log(KERN_ERR, `sysfs: cannot create duplicate filename '/devices/platform/${devName}'`);
    return ERR_PTR(-EEXIST);
  }
  const pdev = new platform_device(name, id, res, devName);
  add(k, pdev);
  return pdev;
}

/**
 * platform_device_unregister - unbind (remove(), then devres) and delete a platform device
 * Returns: a promise settled once it is gone (async contract of the driver core).
 */
export function platform_device_unregister(pdev: platform_device): Promise<void> {
  return driver_core().removeDevice(pdev.dev);
}

/**
 * platform_driver_register - register a platform driver and probe matching devices
 * Returns: a promise of 0 (or -EBUSY for a duplicate name); see the async contract.
 */
export function platform_driver_register(drv: platform_driver): Promise<number> {
  const k = current_kernel();
  platform_bus_init(k);
  pdrv_of.set(drv.driver, drv);
  return driver_core(k).registerDriver(drv.driver, platform_bus_type);
}

/** platform_driver_unregister - unbind from every device and forget the driver. */
export function platform_driver_unregister(drv: platform_driver): Promise<void> {
  return driver_core().unregisterDriver(drv.driver);
}

/**
 * platform_get_resource - the `num`th resource of `type` (IORESOURCE_MEM, IORESOURCE_IRQ)
 * Returns: the resource, or null.
 */
export function platform_get_resource(pdev: platform_device, type: number, num: number): resource | null {
  return pdev.resource.filter((r) => resource_type(r) === type)[num] ?? null;
}

/** platform_get_irq_optional - the `num`th interrupt, or -ENXIO without a message. */
export function platform_get_irq_optional(pdev: platform_device, num: number): number {
  const r = platform_get_resource(pdev, IORESOURCE_IRQ, num);
  return r ? r.start : -ENXIO;
}

/**
 * platform_get_irq - the `num`th interrupt of a platform device
 * Returns: the IRQ number for request_irq, or -ENXIO (logged) when there is none.
 */
export function platform_get_irq(pdev: platform_device, num: number): number {
  const irq = platform_get_irq_optional(pdev, num);
  if (irq < 0) dev_err(pdev.dev, `IRQ index ${num} not found`);
  return irq;
}

/**
 * devm_platform_ioremap_resource - request and map the `index`th memory resource, managed
 * Returns: the MMIO cookie or an ERR_PTR (see devm_ioremap_resource).
 */
export function devm_platform_ioremap_resource(pdev: platform_device, index: number): iomem_t | err_ptr {
  return devm_ioremap_resource(pdev.dev, platform_get_resource(pdev, IORESOURCE_MEM, index));
}

export function platform_set_drvdata(pdev: platform_device, data: unknown): void {
  pdev.dev.driver_data = data;
}

export function platform_get_drvdata<T>(pdev: platform_device): T {
  return pdev.dev.driver_data as T;
}
