/**
 * struct pci_dev, struct pci_driver and struct pci_device_id (include/linux/pci.h), and the
 * PCI subsystem's per-kernel state (the ECAM mapping, the functions found, the MSI vectors
 * handed out).
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { device } from "../include/device.ts";
import type { iomem_t } from "../include/types.ts";
import type { resource } from "../base/resource.ts";

/** Matches any ID in a pci_device_id field (Linux's ~0). */
export const PCI_ANY_ID = 0xffffffff;

/** struct pci_device_id: one row of a driver's id_table; absent fields match anything. */
export interface pci_device_id {
  readonly vendor: number;
  readonly device: number;
  readonly subvendor?: number;
  readonly subdevice?: number;
  readonly class?: number;
  readonly class_mask?: number;
  readonly driver_data?: number;
}

/** PCI_DEVICE - an id_table row matching one vendor/device pair. */
export function PCI_DEVICE(vendor: number, dev: number): pci_device_id {
  return { vendor, device: dev, subvendor: PCI_ANY_ID, subdevice: PCI_ANY_ID };
}

/** struct pci_driver. probe returns 0 or a negative errno and may sleep; so may remove. */
export interface pci_driver {
  readonly name: string;
  readonly id_table: readonly pci_device_id[];
  probe(pdev: pci_dev, id: pci_device_id): number | Promise<number>;
  remove?(pdev: pci_dev): void | Promise<void>;
}

/** struct pci_dev: one PCI function. Drivers read the fields; the PCI core changes them. */
export class pci_dev {
  readonly dev: device;
  readonly bus_number = 0;
  /** (slot << 3) | function. */
  readonly devfn: number;
  vendor = 0;
  device = 0;
  subsystem_vendor = 0;
  subsystem_device = 0;
  /** 24-bit class code: base class, subclass, programming interface. */
  class = 0;
  revision = 0;
  hdr_type = 0;
  /** Interrupt pin (1 = INTA#), 0 when the function has none. */
  pin = 0;
  /** Linux IRQ number: the INTx line, or the MSI vector while MSI is enabled. */
  irq = 0;
  /** BARs 0..5; a missing BAR has flags 0. */
  readonly resource: resource[] = [];
  /** Config offset of the MSI capability, 0 if none. */
  msi_cap = 0;
  msi_enabled = false;
  msix_enabled = false;
  is_busmaster = false;
  /** pcim_enable_device was used: MSI vectors are released on unbind too. */
  is_managed = false;
  enable_cnt = 0;
  driver: pci_driver | null = null;

  /** @internal INTx IRQ to restore when MSI is disabled. */
  _intx_irq = 0;
  /** @internal pcim_iomap_table(), created on first use. */
  _iomap_table: iomem_t[] | null = null;

  constructor(devfn: number) {
    this.devfn = devfn;
    this.dev = new device(pci_slot_name(0, devfn), "pci");
  }
}

/** "0000:00:03.0" for bus 0, slot 3, function 0. */
export function pci_slot_name(bus: number, devfn: number): string {
  const h2 = (n: number): string => n.toString(16).padStart(2, "0");
  return `0000:${h2(bus)}:${h2(devfn >> 3)}.${devfn & 7}`;
}

export function PCI_SLOT(devfn: number): number {
  return (devfn >> 3) & 0x1f;
}

export function PCI_FUNC(devfn: number): number {
  return devfn & 7;
}

/** Per-kernel PCI state. */
export interface PciState {
  /** ioremap cookie of the ECAM window (bus 0). */
  ecam: iomem_t;
  scanned: boolean;
  readonly devices: pci_dev[];
  /** MSI vectors handed out, by vector -> device name. */
  readonly msiUsed: Map<number, string>;
}

export function pci_state(k: Kernel = current_kernel()): PciState {
  return k.state("pci", () => ({ ecam: 0, scanned: false, devices: [], msiUsed: new Map() }));
}

const pdev_of = new WeakMap<device, pci_dev>();

/** @internal Link a device to its pci_dev (enumeration). */
export function pci_link_dev(pdev: pci_dev): void {
  pdev_of.set(pdev.dev, pdev);
}

/** to_pci_dev - the pci_dev that embeds `dev` (a BUG if `dev` is not a PCI device). */
export function to_pci_dev(dev: device): pci_dev {
  const p = pdev_of.get(dev);
  if (!p) throw new Error(`BUG: ${dev.name} is not a PCI device`);
  return p;
}

/** pci_name - the device's name, "0000:00:03.0". */
export function pci_name(pdev: pci_dev): string {
  return pdev.dev.name;
}

export function pci_set_drvdata(pdev: pci_dev, data: unknown): void {
  pdev.dev.driver_data = data;
}

export function pci_get_drvdata<T>(pdev: pci_dev): T {
  return pdev.dev.driver_data as T;
}

/**
 * pci_match_id - the first id_table row that matches `pdev`
 * Returns: the row, or null.
 */
export function pci_match_id(ids: readonly pci_device_id[], pdev: pci_dev): pci_device_id | null {
  const eq = (want: number | undefined, have: number): boolean => want === undefined || want >>> 0 === PCI_ANY_ID || want === have;
  for (const id of ids) {
    if (!eq(id.vendor, pdev.vendor) || !eq(id.device, pdev.device)) continue;
    if (!eq(id.subvendor, pdev.subsystem_vendor) || !eq(id.subdevice, pdev.subsystem_device)) continue;
    if (((id.class ?? 0) ^ pdev.class) & (id.class_mask ?? 0)) continue;
    return id;
  }
  return null;
}
