/**
 * Configuration space accessors (drivers/pci/access.c) over ECAM: each function's 4 KiB of
 * configuration space is memory-mapped at (bus << 20) | (devfn << 12) in the host bridge's
 * window, mapped once with ioremap, and read with ordinary MMIO loads from the running CPU.
 *
 * TypeScript shape: Linux's `int pci_read_config_dword(dev, where, u32 *val)` returns a status
 * and writes the value through a pointer; here the read functions RETURN THE VALUE (all ones,
 * PCI_ERROR_RESPONSE, for a misaligned or out-of-range offset, as a failed read leaves it in
 * Linux). The write functions return PCIBIOS_SUCCESSFUL (0) or PCIBIOS_BAD_REGISTER_NUMBER.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { as_phys, type iomem_t } from "../include/types.ts";
import { ioremap } from "../mm/io.ts";
import { readb, readl, readw, writeb, writel, writew } from "../mm/io.ts";
import { PCIBIOS_BAD_REGISTER_NUMBER, PCIBIOS_SUCCESSFUL, PCI_CFG_SPACE_EXP_SIZE, PCI_COMMAND } from "./pci-regs.ts";
import { pci_state, type pci_dev } from "./pci-dev.ts";

/** ECAM window size for bus 0 (32 devices x 8 functions x 4 KiB). */
export const ECAM_BUS_SIZE = 1 << 20;

type Size = 1 | 2 | 4;

/** The ECAM mapping of kernel `k`, created on first use. */
function ecam(k: Kernel): iomem_t {
  const st = pci_state(k);
  if (!st.ecam) st.ecam = ioremap(as_phys(k.platform.pciEcamBase), ECAM_BUS_SIZE);
  return st.ecam;
}

function bad(where: number, size: Size): boolean {
  return !Number.isInteger(where) || where < 0 || where + size > PCI_CFG_SPACE_EXP_SIZE || where % size !== 0;
}

/**
 * pci_bus_read_config - read `size` bytes at `where` of function `devfn` on bus 0
 * Context: kernel code on a CPU (an MMIO read).
 * Returns: the value, or all ones for a bad offset or an empty slot.
 */
export function pci_bus_read_config(devfn: number, where: number, size: Size): number {
  if (bad(where, size)) return 2 ** (size * 8) - 1;
  const addr = ecam(current_kernel()) + (devfn << 12) + where;
  return size === 1 ? readb(addr) : size === 2 ? readw(addr) : readl(addr);
}

/**
 * pci_bus_write_config - write `size` bytes at `where` of function `devfn` on bus 0
 * Returns: PCIBIOS_SUCCESSFUL or PCIBIOS_BAD_REGISTER_NUMBER.
 */
export function pci_bus_write_config(devfn: number, where: number, value: number, size: Size): number {
  if (bad(where, size)) return PCIBIOS_BAD_REGISTER_NUMBER;
  const addr = ecam(current_kernel()) + (devfn << 12) + where;
  if (size === 1) writeb(value & 0xff, addr);
  else if (size === 2) writew(value & 0xffff, addr);
  else writel(value >>> 0, addr);
  return PCIBIOS_SUCCESSFUL;
}

/** pci_read_config_byte - returns the byte at `where` (0xff on a bad offset). */
export function pci_read_config_byte(pdev: pci_dev, where: number): number {
  return pci_bus_read_config(pdev.devfn, where, 1);
}

/** pci_read_config_word - returns the 16-bit value at `where` (0xffff on a bad offset). */
export function pci_read_config_word(pdev: pci_dev, where: number): number {
  return pci_bus_read_config(pdev.devfn, where, 2);
}

/** pci_read_config_dword - returns the 32-bit value at `where` (0xffffffff on a bad offset). */
export function pci_read_config_dword(pdev: pci_dev, where: number): number {
  return pci_bus_read_config(pdev.devfn, where, 4);
}

/** pci_write_config_byte - returns PCIBIOS_SUCCESSFUL or PCIBIOS_BAD_REGISTER_NUMBER. */
export function pci_write_config_byte(pdev: pci_dev, where: number, val: number): number {
  return pci_bus_write_config(pdev.devfn, where, val, 1);
}

/** pci_write_config_word - returns PCIBIOS_SUCCESSFUL or PCIBIOS_BAD_REGISTER_NUMBER. */
export function pci_write_config_word(pdev: pci_dev, where: number, val: number): number {
  return pci_bus_write_config(pdev.devfn, where, val, 2);
}

/** pci_write_config_dword - returns PCIBIOS_SUCCESSFUL or PCIBIOS_BAD_REGISTER_NUMBER. */
export function pci_write_config_dword(pdev: pci_dev, where: number, val: number): number {
  return pci_bus_write_config(pdev.devfn, where, val, 4);
}

/** Read-modify-write of the command register: clear `clear`, then set `set`. */
export function pci_command_update(pdev: pci_dev, clear: number, set: number): { old: number; cmd: number } {
  const old = pci_read_config_word(pdev, PCI_COMMAND);
  const cmd = (old & ~clear) | set;
  if (cmd !== old) pci_write_config_word(pdev, PCI_COMMAND, cmd);
  return { old, cmd };
}
