/**
 * Enabling a PCI function and claiming its BARs (drivers/pci/pci.c, drivers/pci/devres.c).
 *
 * - pci_enable_device turns on memory (and I/O) decoding in the command register; until then
 *   the device ignores its BARs (the model logs a guest error for every access).
 *   pci_disable_device turns decoding and bus mastering off again once the last enable is
 *   undone (Linux leaves decoding to the arch; we clear it so use-after-disable shows).
 * - pci_set_master lets the device master the bus: without it there is no DMA and no MSI.
 * - pci_request_regions claims every BAR in the kernel's busy-region registry: a second claim
 *   (two drivers, or a probe that forgot to release on an earlier failure) gets -EBUSY.
 * - The pcim_ variants are undone by devres when the driver detaches.
 */

import { ENOMEM, EBUSY } from "../include/errno.ts";
import { dev_dbg, dev_info, dev_warn, dev_WARN } from "../base/dev_printk.ts";
import { devm_add_action } from "../base/devres.ts";
import { IORESOURCE_IO, IORESOURCE_MEM, release_mem_region, request_mem_region, resource_str, type resource } from "../base/resource.ts";
import { pci_command_update } from "./access.ts";
import * as R from "./pci-regs.ts";
import type { pci_dev } from "./pci-dev.ts";
import { pci_bus_find_capability } from "./probe.ts";

const hex4 = (n: number): string => n.toString(16).padStart(4, "0");

/** pci_resource_start - bus address of BAR `bar` (0 when absent). */
export function pci_resource_start(pdev: pci_dev, bar: number): number {
  return pdev.resource[bar]?.start ?? 0;
}

/** pci_resource_len - size of BAR `bar` in bytes (0 when absent). */
export function pci_resource_len(pdev: pci_dev, bar: number): number {
  const r = pdev.resource[bar];
  return r && r.flags ? r.end - r.start + 1 : 0;
}

/** pci_resource_end - last address of BAR `bar`. */
export function pci_resource_end(pdev: pci_dev, bar: number): number {
  return pdev.resource[bar]?.end ?? 0;
}

/** pci_resource_flags - IORESOURCE_* flags of BAR `bar` (0 when absent). */
export function pci_resource_flags(pdev: pci_dev, bar: number): number {
  return pdev.resource[bar]?.flags ?? 0;
}

/** pci_find_capability - config offset of capability `cap` (PCI_CAP_ID_*), or 0. */
export function pci_find_capability(pdev: pci_dev, cap: number): number {
  return pci_bus_find_capability(pdev.devfn, cap);
}

function decode_bits(pdev: pci_dev): number {
  let bits = 0;
  for (const r of pdev.resource) {
    if (r.flags & IORESOURCE_MEM) bits |= R.PCI_COMMAND_MEMORY;
    if (r.flags & IORESOURCE_IO) bits |= R.PCI_COMMAND_IO;
  }
  return bits;
}

/**
 * pci_enable_device - turn on the function's memory and I/O decoding (counted)
 * Context: process (driver probe).
 * Returns: 0.
 */
export function pci_enable_device(pdev: pci_dev): number {
  if (pdev.enable_cnt++ > 0) return 0;
  const { old, cmd } = pci_command_update(pdev, 0, decode_bits(pdev));
  if (cmd !== old) dev_info(pdev.dev, `enabling device (${hex4(old)} -> ${hex4(cmd)})`);
  return 0;
}

/** pci_enable_device_mem - pci_enable_device for memory BARs only. */
export function pci_enable_device_mem(pdev: pci_dev): number {
  return pci_enable_device(pdev);
}

/** pci_is_enabled - has pci_enable_device been called more often than pci_disable_device? */
export function pci_is_enabled(pdev: pci_dev): boolean {
  return pdev.enable_cnt > 0;
}

/**
 * pci_disable_device - undo pci_enable_device; the last one turns decoding and mastering off
 * Context: process. WARNs when the device is not enabled.
 */
export function pci_disable_device(pdev: pci_dev): void {
  if (pdev.enable_cnt <= 0) {
    dev_WARN(pdev.dev, "disabling already-disabled device");
    return;
  }
  if (--pdev.enable_cnt > 0) return;
  pci_command_update(pdev, R.PCI_COMMAND_MASTER | R.PCI_COMMAND_MEMORY | R.PCI_COMMAND_IO, 0);
  pdev.is_busmaster = false;
}

function pcim_disable_device(pdev: pci_dev): void {
  if (pdev.enable_cnt > 0) pci_disable_device(pdev);
  pdev.is_managed = false;
}

/**
 * pcim_enable_device - pci_enable_device, disabled again when the driver detaches
 * Also makes MSI vectors allocated later managed (freed on detach), as in Linux.
 * Returns: 0, or the error of pci_enable_device.
 */
export function pcim_enable_device(pdev: pci_dev): number {
  const rc = pci_enable_device(pdev);
  if (rc) return rc;
  pdev.is_managed = true;
  if (devm_add_action(pdev.dev, pcim_disable_device, pdev)) {
    pcim_disable_device(pdev);
    return -ENOMEM;
  }
  return 0;
}

/** pci_set_master - let the function master the bus (DMA, MSI). */
export function pci_set_master(pdev: pci_dev): void {
  const { old, cmd } = pci_command_update(pdev, 0, R.PCI_COMMAND_MASTER);
  if (cmd !== old) dev_dbg(pdev.dev, "enabling bus mastering");
  pdev.is_busmaster = true;
}

/** pci_clear_master - stop the function from mastering the bus. */
export function pci_clear_master(pdev: pci_dev): void {
  pci_command_update(pdev, R.PCI_COMMAND_MASTER, 0);
  pdev.is_busmaster = false;
}

/** pci_intx - enable (true) or disable (false) the function's INTx output. */
export function pci_intx(pdev: pci_dev, enable: boolean): void {
  if (enable) pci_command_update(pdev, R.PCI_COMMAND_INTX_DISABLE, 0);
  else pci_command_update(pdev, 0, R.PCI_COMMAND_INTX_DISABLE);
}

/**
 * pci_request_region - claim BAR `bar` for `name`
 * Context: process.
 * Returns: 0 (also for an absent BAR), or -EBUSY when someone holds it (logged).
 */
export function pci_request_region(pdev: pci_dev, bar: number, name: string): number {
  const len = pci_resource_len(pdev, bar);
  if (len === 0) return 0;
  const res: resource = pdev.resource[bar];
  if (!request_mem_region(res.start, len, name)) {
    dev_warn(pdev.dev, `BAR ${bar}: can't reserve ${resource_str(res)}`);
    return -EBUSY;
  }
  return 0;
}

/** pci_release_region - release BAR `bar` claimed with pci_request_region. */
export function pci_release_region(pdev: pci_dev, bar: number): void {
  const len = pci_resource_len(pdev, bar);
  if (len) release_mem_region(pdev.resource[bar].start, len);
}

/**
 * pci_request_regions - claim every BAR of the function for `name`
 * Returns: 0, or -EBUSY (nothing stays claimed then).
 */
export function pci_request_regions(pdev: pci_dev, name: string): number {
  for (let bar = 0; bar < R.PCI_STD_NUM_BARS; bar++) {
    if (pci_request_region(pdev, bar, name) === 0) continue;
    for (let b = bar - 1; b >= 0; b--) pci_release_region(pdev, b);
    return -EBUSY;
  }
  return 0;
}

/** pci_release_regions - release every BAR claimed with pci_request_regions. */
export function pci_release_regions(pdev: pci_dev): void {
  for (let bar = 0; bar < R.PCI_STD_NUM_BARS; bar++) pci_release_region(pdev, bar);
}

/**
 * pcim_request_all_regions - pci_request_regions, released when the driver detaches
 * Returns: 0 or -EBUSY.
 */
export function pcim_request_all_regions(pdev: pci_dev, name: string): number {
  const rc = pci_request_regions(pdev, name);
  if (rc) return rc;
  return devm_add_action(pdev.dev, pci_release_regions, pdev);
}
