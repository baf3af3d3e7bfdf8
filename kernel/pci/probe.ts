/**
 * PCI enumeration (drivers/pci/probe.c): find the functions on bus 0 through ECAM, read their
 * identity, size their BARs, find their capabilities, and add them to the driver core.
 *
 * Theory of operation
 * - A slot whose vendor ID reads 0xffff is empty (the host bridge answers a master abort
 *   with all ones). Function 0 is always probed; functions 1..7 only for a multi-function
 *   header.
 * - BAR sizing is the standard protocol, done with memory decoding switched off so the BAR
 *   never decodes at a bogus address meanwhile: save the BAR, write all ones, read back
 *   (the device answers with its size mask), write the saved value back.
 * - Firmware (the machine description) says which interrupt line each slot's INTx is wired
 *   to; that is pdev.irq. The platform decides whether device DMA snoops CPU caches.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { dev_info } from "../base/dev_printk.ts";
import { driver_core } from "../base/core.ts";
import { IORESOURCE_MEM, IORESOURCE_MEM_64, IORESOURCE_PREFETCH, IORESOURCE_IO, resource_str, type resource } from "../base/resource.ts";
import { pci_bus_read_config as rd, pci_bus_write_config as wr } from "./access.ts";
import * as R from "./pci-regs.ts";
import { pci_dev, pci_link_dev, pci_state, PCI_SLOT } from "./pci-dev.ts";
import { pci_bus_type } from "./bus.ts";

const NO_BAR: Readonly<resource> = { start: 0, end: 0, flags: 0, name: "" };

/** Size one BAR (and its upper half for a 64-bit BAR); returns the resource and BARs used. */
function pci_read_base(devfn: number, bar: number, name: string): { res: resource; used: number } {
  const pos = R.PCI_BASE_ADDRESS_0 + bar * 4;
  const l = rd(devfn, pos, 4);
  wr(devfn, pos, 0xffffffff, 4);
  const sz = rd(devfn, pos, 4);
  wr(devfn, pos, l, 4);
  if (sz === 0 || sz === 0xffffffff) return { res: { ...NO_BAR }, used: 1 };
  if (l & R.PCI_BASE_ADDRESS_SPACE_IO) {
    const size = ((~(sz & ~0x3) >>> 0) & 0xffff) + 1;
    return { res: { start: l & ~0x3, end: (l & ~0x3) + size - 1, flags: IORESOURCE_IO, name }, used: 1 };
  }
  let flags = IORESOURCE_MEM | (l & R.PCI_BASE_ADDRESS_MEM_PREFETCH ? IORESOURCE_PREFETCH : 0);
  let base = (l & R.PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  const mask = (sz & R.PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  let used = 1;
  if ((l & R.PCI_BASE_ADDRESS_MEM_TYPE_MASK) === R.PCI_BASE_ADDRESS_MEM_TYPE_64 && bar < 5) {
    const hi = rd(devfn, pos + 4, 4);
    wr(devfn, pos + 4, 0xffffffff, 4);
    const szhi = rd(devfn, pos + 4, 4);
    wr(devfn, pos + 4, hi, 4);
    flags |= IORESOURCE_MEM_64;
    base += hi * 2 ** 32;
    used = 2;
    if (szhi !== 0xffffffff) {
      // A BAR of 4 GiB or more: size from the upper half.
      const size = (~szhi >>> 0) * 2 ** 32 + 2 ** 32;
      return { res: { start: base, end: base + size - 1, flags, name }, used };
    }
  }
  const size = (~mask >>> 0) + 1;
  return { res: { start: base, end: base + size - 1, flags, name }, used };
}

/** Read all six BARs with memory and I/O decoding off, as Linux's pci_read_bases does. */
function pci_read_bases(pdev: pci_dev): void {
  const cmd = rd(pdev.devfn, R.PCI_COMMAND, 2);
  const decode = R.PCI_COMMAND_MEMORY | R.PCI_COMMAND_IO;
  if (cmd & decode) wr(pdev.devfn, R.PCI_COMMAND, cmd & ~decode, 2);
  for (let bar = 0; bar < R.PCI_STD_NUM_BARS; ) {
    const { res, used } = pci_read_base(pdev.devfn, bar, pdev.dev.name);
    pdev.resource[bar] = res;
    if (used === 2) pdev.resource[bar + 1] = { ...NO_BAR };
    bar += used;
  }
  if (cmd & decode) wr(pdev.devfn, R.PCI_COMMAND, cmd, 2);
}

/**
 * pci_find_capability - walk the capability list for capability `cap`
 * Returns: its offset in configuration space, or 0.
 */
export function pci_bus_find_capability(devfn: number, cap: number): number {
  if (!(rd(devfn, R.PCI_STATUS, 2) & R.PCI_STATUS_CAP_LIST)) return 0;
  let pos = rd(devfn, R.PCI_CAPABILITY_LIST, 1);
  // 48 is the most capabilities that fit in 256 bytes: stops a looping list.
  for (let ttl = 48; ttl > 0 && pos >= 0x40; ttl--) {
    pos &= ~3;
    const id = rd(devfn, pos + R.PCI_CAP_LIST_ID, 1);
    if (id === 0xff) break;
    if (id === cap) return pos;
    pos = rd(devfn, pos + R.PCI_CAP_LIST_NEXT, 1);
  }
  return 0;
}

function pci_scan_device(k: Kernel, devfn: number): pci_dev {
  const pdev = new pci_dev(devfn);
  pdev.vendor = rd(devfn, R.PCI_VENDOR_ID, 2);
  pdev.device = rd(devfn, R.PCI_DEVICE_ID, 2);
  const classrev = rd(devfn, R.PCI_CLASS_REVISION, 4);
  pdev.class = classrev >>> 8;
  pdev.revision = classrev & 0xff;
  pdev.hdr_type = rd(devfn, R.PCI_HEADER_TYPE, 1);
  pdev.subsystem_vendor = rd(devfn, R.PCI_SUBSYSTEM_VENDOR_ID, 2);
  pdev.subsystem_device = rd(devfn, R.PCI_SUBSYSTEM_ID, 2);
  pdev.pin = rd(devfn, R.PCI_INTERRUPT_PIN, 1);
  const fw = k.platform.pciFirmware().find((f) => f.slot === PCI_SLOT(devfn));
  pdev.irq = pdev.pin && fw ? fw.irq : 0;
  pdev._intx_irq = pdev.irq;
  pdev.msi_cap = pci_bus_find_capability(devfn, R.PCI_CAP_ID_MSI);
  pdev.dev.dma_coherent = k.platform.coherentDma;
  pdev.dev.numa_node = 0;
  pci_link_dev(pdev);
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, "0");
  dev_info(pdev.dev, `[${hex(pdev.vendor, 4)}:${hex(pdev.device, 4)}] type ${hex(pdev.hdr_type & 0x7f, 2)} class 0x${hex(pdev.class, 6)}`);
  pci_read_bases(pdev);
  pdev.resource.forEach((r, i) => {
    if (r.flags) dev_info(pdev.dev, `BAR ${i} ${resource_str(r)}`);
  });
  return pdev;
}

function pci_scan_slot(k: Kernel, slot: number): pci_dev[] {
  const found: pci_dev[] = [];
  for (let fn = 0; fn < 8; fn++) {
    const devfn = (slot << 3) | fn;
    if (rd(devfn, R.PCI_VENDOR_ID, 2) === 0xffff) {
      if (fn === 0) break;
      continue;
    }
    const pdev = pci_scan_device(k, devfn);
    found.push(pdev);
    if (fn === 0 && !(pdev.hdr_type & R.PCI_HEADER_TYPE_MFD)) break;
  }
  return found;
}

/**
 * pci_subsys_init - enumerate bus 0 and add every function to the driver core (once)
 * Context: boot; driver_init() calls it, and pci_register_driver() does on first use.
 * Config space is read with real MMIO loads on CPU 0.
 */
export function pci_subsys_init(k: Kernel = current_kernel()): void {
  const st = pci_state(k);
  if (st.scanned) return;
  st.scanned = true;
  k.exec.runOn(0, "process", "", "pci_scan_bus", () => {
    for (let slot = 0; slot < 32; slot++) st.devices.push(...pci_scan_slot(k, slot));
  });
  const core = driver_core(k);
  for (const pdev of st.devices) core.addDevice(pdev.dev, pci_bus_type);
}

/** All PCI functions found by enumeration, in slot order. */
export function pci_devices(k: Kernel = current_kernel()): readonly pci_dev[] {
  pci_subsys_init(k);
  return pci_state(k).devices;
}

/** pci_get_device - the first function with this vendor/device after `from` (PCI_ANY_ID matches any). */
export function pci_get_device(vendor: number, device: number, from: pci_dev | null = null): pci_dev | null {
  const list = pci_devices();
  const start = from ? list.indexOf(from) + 1 : 0;
  const any = 0xffffffff;
  return list.slice(start).find((p) => (vendor >>> 0 === any || p.vendor === vendor) && (device >>> 0 === any || p.device === device)) ?? null;
}
