/**
 * edu on the platform bus: the same device as the PCI edu, described by the machine file
 * (`platform: [{name, model: edu, base, size, irq}]`) instead of discovered (SPEC.md §12).
 *
 * Theory of operation
 * - The driver is named after the model, "edu", so it binds every platform device whose model
 *   is edu whatever the instance is called ("edu0", "edu1", ...).
 * - probe maps the MMIO resource (there is no command register: the window always decodes
 *   and the device is always a bus master), proves it is an edu, limits DMA to the engine's
 *   28 address bits and installs the shared handler (edu_main.ts) on the wired line, which is
 *   level-triggered: the handler's acknowledge is what drops it. Every resource is managed
 *   (devm_*), so a failed probe and remove leave nothing behind.
 * - remove withdraws the device from edu_devices; devres then frees the IRQ, unmaps the
 *   window and releases the region, in reverse order of probe.
 */

import {
  devm_platform_ioremap_resource, platform_driver_register, platform_driver_unregister, platform_get_drvdata,
  platform_get_irq, platform_get_resource, platform_set_drvdata, resource_size, IORESOURCE_MEM,
  type platform_device, type platform_driver,
} from "../../../kernel/include/platform_device.ts";
import { devm_request_irq } from "../../../kernel/include/devres.ts";
import { dma_set_mask_and_coherent, DMA_BIT_MASK } from "../../../kernel/include/dma-mapping.ts";
import { dev_err, dev_info } from "../../../kernel/include/printk.ts";
import { EINVAL, ENODEV, IS_ERR, PTR_ERR } from "../../../kernel/include/errno.ts";
import { DRV_NAME, edu_add, edu_alloc, edu_check_identity, edu_del, edu_irq, type edu_device } from "./edu_main.ts";
import { EDU_DMA_BITS, EDU_REGS_END } from "./edu_hw.ts";

/** What edu_device.irq_mode says for a device on the platform bus. */
export const EDU_PLATFORM_IRQ_MODE = "platform IRQ";

function edu_platform_probe(pdev: platform_device): number {
  const dev = pdev.dev;
  const res = platform_get_resource(pdev, IORESOURCE_MEM, 0);
  if (!res) {
    dev_err(dev, "no MMIO resource");
    return -ENODEV;
  }
  if (resource_size(res) < EDU_REGS_END) {
    dev_err(dev, `MMIO resource of ${resource_size(res)} bytes cannot hold the registers (0x${EDU_REGS_END.toString(16)} bytes)`);
    return -EINVAL;
  }
  const bar = devm_platform_ioremap_resource(pdev, 0);
  if (IS_ERR(bar)) return PTR_ERR(bar);
  const irq = platform_get_irq(pdev, 0);
  if (irq < 0) return irq;
  let err = edu_check_identity(dev, bar);
  if (err) return err;
  err = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(EDU_DMA_BITS));
  if (err) {
    dev_err(dev, "no usable DMA configuration");
    return err;
  }
  const edu = edu_alloc(dev, bar, irq, EDU_PLATFORM_IRQ_MODE);
  // The line is the device's own (the machine file gives each device a distinct IRQ).
  err = devm_request_irq(dev, irq, edu_irq, 0, DRV_NAME, edu);
  if (err) {
    dev_err(dev, `cannot request IRQ ${irq}`);
    return err;
  }
  platform_set_drvdata(pdev, edu);
  edu_add(edu);
  dev_info(dev, `edu ready: IRQ ${irq} (${edu.irq_mode}), DMA mask ${EDU_DMA_BITS} bits`);
  return 0;
}

function edu_platform_remove(pdev: platform_device): void {
  edu_del(platform_get_drvdata<edu_device>(pdev));
  // devres undoes the rest after we return: free_irq, iounmap, release_mem_region.
}

export const edu_platform_driver: platform_driver = {
  driver: { name: DRV_NAME },
  probe: edu_platform_probe,
  remove: edu_platform_remove,
};

/** module_platform_driver(edu_platform_driver) */
export function edu_platform_init(): Promise<number> {
  return platform_driver_register(edu_platform_driver);
}

export function edu_platform_exit(): Promise<void> {
  return platform_driver_unregister(edu_platform_driver);
}
