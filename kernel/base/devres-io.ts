/**
 * Managed MMIO (lib/devres.c): devm_ioremap, devm_iounmap, devm_request_mem_region and
 * devm_ioremap_resource, each undone by devres when the driver detaches.
 */

import { current_kernel } from "../core/current.ts";
import type { device } from "../include/device.ts";
import { EBUSY, EINVAL, ENOMEM, ERR_PTR, type err_ptr } from "../include/errno.ts";
import type { iomem_t, phys_addr_t } from "../include/types.ts";
import { ioremap, iounmap } from "../mm/io.ts";
import { devres_add_data, devres_release_node } from "./devres.ts";
import { IORESOURCE_MEM, release_mem_region, request_mem_region, resource_size, resource_str, resource_type, type resource } from "./resource.ts";
import { dev_err } from "./dev_printk.ts";

/**
 * devm_ioremap - ioremap that is undone when the driver detaches
 * @dev: device the mapping belongs to
 * @offset: physical address of the MMIO range
 * @size: bytes to map
 * Context: process.
 * Returns: the MMIO cookie for readl/writel, or 0 on failure.
 */
export function devm_ioremap(dev: device, offset: phys_addr_t | number, size: number): iomem_t {
  const addr = ioremap(offset as phys_addr_t, size);
  if (!addr) return 0;
  devres_add_data(dev, "devm_ioremap", addr, () => iounmap(addr));
  return addr;
}

/**
 * devm_iounmap - undo a devm_ioremap before the driver detaches
 * Context: process. WARNs when `addr` is not a managed mapping of `dev`.
 */
export function devm_iounmap(dev: device, addr: iomem_t): void {
  const found = devres_release_node(dev, (name, data) => name === "devm_ioremap" && data === addr);
  if (!found) current_kernel().warn(`devm_iounmap: 0x${addr.toString(16)} is not a managed mapping of ${dev.name}`);
}

/**
 * devm_request_mem_region - request_mem_region released when the driver detaches
 * Returns: the busy resource, or null when the range is taken.
 */
export function devm_request_mem_region(dev: device, start: number, n: number, name: string): resource | null {
  const r = request_mem_region(start, n, name);
  if (!r) return null;
  devres_add_data(dev, "devm_request_mem_region", start, () => release_mem_region(start, n));
  return r;
}

/**
 * devm_release_mem_region - release a devm_request_mem_region range early
 * Context: any. WARNs when the range is not a managed region of `dev`.
 */
export function devm_release_mem_region(dev: device, start: number, _n: number): void {
  const found = devres_release_node(dev, (name, data) => name === "devm_request_mem_region" && data === start);
  if (!found) current_kernel().warn(`devm_release_mem_region: 0x${start.toString(16)} is not a managed region of ${dev.name}`);
}

/**
 * devm_ioremap_resource - check, request and map a memory resource, all managed
 * @dev: device the resource belongs to
 * @res: an IORESOURCE_MEM resource
 * Context: process.
 * Returns: the MMIO cookie, or ERR_PTR(-EINVAL) for a bad resource, ERR_PTR(-EBUSY) when the
 * region is taken, ERR_PTR(-ENOMEM) when it cannot be mapped. Errors are logged, as in Linux.
 */
export function devm_ioremap_resource(dev: device, res: resource | null): iomem_t | err_ptr {
  if (!res || resource_type(res) !== IORESOURCE_MEM) {
    dev_err(dev, "invalid resource");
    return ERR_PTR(-EINVAL);
  }
  const size = resource_size(res);
  // Linux names the busy region "<device> <resource>" (or just the device).
  const name = res.name ? `${dev.name} ${res.name}` : dev.name;
  if (!devm_request_mem_region(dev, res.start, size, name)) {
    dev_err(dev, `can't request region for resource ${resource_str(res)}`);
    return ERR_PTR(-EBUSY);
  }
  const addr = devm_ioremap(dev, res.start, size);
  if (!addr) {
    dev_err(dev, `ioremap failed for resource ${resource_str(res)}`);
    devm_release_mem_region(dev, res.start, size);
    return ERR_PTR(-ENOMEM);
  }
  return addr;
}
