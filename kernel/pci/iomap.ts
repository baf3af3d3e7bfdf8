/**
 * Mapping BARs (lib/pci_iomap.c, drivers/pci/devres.c): pci_iomap and its managed variants.
 * A BAR is mapped with ioremap, so the cookie works with readl/writel like any MMIO mapping.
 */

import { EBUSY, EINVAL, ENOMEM, ERR_PTR, IS_ERR, PTR_ERR, type err_ptr } from "../include/errno.ts";
import { as_phys, type iomem_t } from "../include/types.ts";
import { ioremap, iounmap } from "../mm/io.ts";
import { current_kernel } from "../core/current.ts";
import { devm_add_action, devres_add_data, devres_release_node } from "../base/devres.ts";
import { devm_request_mem_region } from "../base/devres-io.ts";
import { IORESOURCE_MEM } from "../base/resource.ts";
import { dev_err } from "../base/dev_printk.ts";
import { PCI_STD_NUM_BARS } from "./pci-regs.ts";
import type { pci_dev } from "./pci-dev.ts";
import { pci_resource_flags, pci_resource_len, pci_resource_start } from "./pci.ts";

/**
 * pci_iomap_range - map part of a BAR
 * @pdev: the function
 * @bar: BAR number
 * @offset: where in the BAR to start
 * @maxlen: bytes to map at most (0: to the end of the BAR)
 * Context: process.
 * Returns: an MMIO cookie for readl/writel, or 0 (NULL) for an absent BAR or a bad range.
 */
export function pci_iomap_range(pdev: pci_dev, bar: number, offset: number, maxlen: number): iomem_t {
  let len = pci_resource_len(pdev, bar);
  if (len <= offset || !(pci_resource_flags(pdev, bar) & IORESOURCE_MEM)) return 0;
  len -= offset;
  if (maxlen && maxlen < len) len = maxlen;
  return ioremap(as_phys(pci_resource_start(pdev, bar) + offset), len);
}

/** pci_iomap - map BAR `bar` (at most `maxlen` bytes; 0 for all of it); 0 on failure. */
export function pci_iomap(pdev: pci_dev, bar: number, maxlen: number): iomem_t {
  return pci_iomap_range(pdev, bar, 0, maxlen);
}

/** pci_iounmap - undo pci_iomap. */
export function pci_iounmap(_pdev: pci_dev, addr: iomem_t): void {
  iounmap(addr);
}

/**
 * pcim_iomap_table - the managed table of BAR mappings filled by pcim_iomap and
 * pcim_iomap_regions (index = BAR; 0 where unmapped). It lives until the driver detaches.
 */
export function pcim_iomap_table(pdev: pci_dev): iomem_t[] {
  if (!pdev._iomap_table) {
    pdev._iomap_table = new Array<iomem_t>(PCI_STD_NUM_BARS).fill(0);
    devm_add_action(pdev.dev, pcim_iomap_table_release, pdev);
  }
  return pdev._iomap_table;
}

function pcim_iomap_table_release(pdev: pci_dev): void {
  pdev._iomap_table = null;
}

/**
 * pcim_iomap - pci_iomap, unmapped when the driver detaches
 * Returns: the cookie (also stored in pcim_iomap_table), or 0.
 */
export function pcim_iomap(pdev: pci_dev, bar: number, maxlen: number): iomem_t {
  const table = pcim_iomap_table(pdev);
  if (table[bar]) return table[bar];
  const addr = pci_iomap(pdev, bar, maxlen);
  if (!addr) return 0;
  table[bar] = addr;
  devres_add_data(pdev.dev, "pcim_iomap", addr, () => {
    iounmap(addr);
    if (pdev._iomap_table) pdev._iomap_table[bar] = 0;
  });
  return addr;
}

/**
 * pcim_iounmap - undo a pcim_iomap early
 * Context: process. WARNs when `addr` is not a managed BAR mapping of the device.
 */
export function pcim_iounmap(pdev: pci_dev, addr: iomem_t): void {
  if (!devres_release_node(pdev.dev, (name, data) => name === "pcim_iomap" && data === addr)) {
    current_kernel().warn(`pcim_iounmap: 0x${addr.toString(16)} is not a managed mapping of ${pdev.dev.name}`);
  }
}

/**
 * pcim_iomap_regions - claim and map every BAR in `mask` (bit n = BAR n), all managed
 * Returns: 0, -EINVAL for an absent BAR, -EBUSY when a region is taken, -ENOMEM when a map fails.
 */
export function pcim_iomap_regions(pdev: pci_dev, mask: number, name: string): number {
  for (let bar = 0; bar < PCI_STD_NUM_BARS; bar++) {
    if (!(mask & (1 << bar))) continue;
    const r = pcim_iomap_region(pdev, bar, name);
    if (IS_ERR(r)) return PTR_ERR(r);
  }
  return 0;
}

/**
 * pcim_iomap_region - claim and map one BAR, managed
 * Returns: the cookie, or ERR_PTR(-EINVAL / -EBUSY / -ENOMEM).
 */
export function pcim_iomap_region(pdev: pci_dev, bar: number, name: string): iomem_t | err_ptr {
  const len = pci_resource_len(pdev, bar);
  if (!len) return ERR_PTR(-EINVAL);
  if (!devm_request_mem_region(pdev.dev, pci_resource_start(pdev, bar), len, name)) {
    dev_err(pdev.dev, `BAR ${bar}: can't reserve region for ${name}`);
    return ERR_PTR(-EBUSY);
  }
  const addr = pcim_iomap(pdev, bar, 0);
  return addr ? addr : ERR_PTR(-ENOMEM);
}
