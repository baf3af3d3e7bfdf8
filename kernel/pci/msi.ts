/**
 * Interrupt vectors for PCI functions (drivers/pci/msi/, Documentation/PCI/msi-howto.rst).
 *
 * Theory of operation
 * - MSI: the PCI core takes a free vector from the interrupt controller's MSI range
 *   (platform.msiFirst .. platform.irqVectors-1), finds the function's MSI capability by walking
 *   the capability list, writes the controller's doorbell address and the vector number into
 *   it, sets its enable bit and disables INTx. The device then signals by writing the vector
 *   number to the doorbell through its DMA port, so an MSI needs bus mastering and travels
 *   behind the device's earlier DMA writes. While MSI is on, pdev.irq is the vector.
 * - INTx: the wired line firmware reported (pdev.irq), level-triggered, possibly shared.
 * - MSI-X is not modelled: PCI_IRQ_MSIX alone fails with -EINVAL (no capability), as for a
 *   device without one. Multi-message MSI is not modelled: MSI gives exactly one vector.
 * - After pcim_enable_device the vectors are freed when the driver detaches, as in Linux.
 */

import { EINVAL, ENOSPC } from "../include/errno.ts";
import { current_kernel } from "../core/current.ts";
import { dev_WARN, dev_dbg } from "../base/dev_printk.ts";
import { devm_add_action } from "../base/devres.ts";
import { pci_read_config_word, pci_write_config_dword, pci_write_config_word } from "./access.ts";
import * as R from "./pci-regs.ts";
import { pci_state, type pci_dev } from "./pci-dev.ts";
import { pci_intx } from "./pci.ts";
import { irq_core, irq_to_desc } from "../irq/irqdesc.ts";

export const PCI_IRQ_INTX = 1 << 0;
/** Older name of PCI_IRQ_INTX. */
export const PCI_IRQ_LEGACY = PCI_IRQ_INTX;
export const PCI_IRQ_MSI = 1 << 1;
export const PCI_IRQ_MSIX = 1 << 2;
export const PCI_IRQ_AFFINITY = 1 << 3;
export const PCI_IRQ_ALL_TYPES = PCI_IRQ_INTX | PCI_IRQ_MSI | PCI_IRQ_MSIX;

function msi_vector_alloc(pdev: pci_dev): number {
  const k = current_kernel();
  const used = pci_state(k).msiUsed;
  for (let v = k.platform.msiFirst; v < k.platform.irqVectors; v++) {
    if (used.has(v)) continue;
    used.set(v, pdev.dev.name);
    return v;
  }
  return -ENOSPC;
}

/** Program the MSI capability with the doorbell address and `vector`, then enable it. */
function msi_program(pdev: pci_dev, vector: number): void {
  const cap = pdev.msi_cap;
  const addr = current_kernel().platform.msiAddress;
  const flags = pci_read_config_word(pdev, cap + R.PCI_MSI_FLAGS);
  const is64 = (flags & R.PCI_MSI_FLAGS_64BIT) !== 0;
  pci_write_config_dword(pdev, cap + R.PCI_MSI_ADDRESS_LO, addr % 2 ** 32);
  if (is64) pci_write_config_dword(pdev, cap + R.PCI_MSI_ADDRESS_HI, Math.floor(addr / 2 ** 32));
  pci_write_config_word(pdev, cap + (is64 ? R.PCI_MSI_DATA_64 : R.PCI_MSI_DATA_32), vector);
  // One message: multiple-message-enable stays 0.
  pci_write_config_word(pdev, cap + R.PCI_MSI_FLAGS, (flags & ~R.PCI_MSI_FLAGS_QSIZE) | R.PCI_MSI_FLAGS_ENABLE);
  pci_intx(pdev, false);
}

function pci_enable_msi_range(pdev: pci_dev, min: number, max: number): number {
  if (!pdev.msi_cap) return -EINVAL;
  if (pdev.msi_enabled) {
    dev_WARN(pdev.dev, "MSI already enabled: pci_alloc_irq_vectors called twice without pci_free_irq_vectors");
    return -EINVAL;
  }
  if (max < min) return -EINVAL;
  if (min > 1) return -ENOSPC;
  const vector = msi_vector_alloc(pdev);
  if (vector < 0) return vector;
  msi_program(pdev, vector);
  pdev.msi_enabled = true;
  pdev._intx_irq = pdev.irq;
  pdev.irq = vector;
  dev_dbg(pdev.dev, `MSI enabled: vector ${vector}`);
  if (pdev.is_managed) devm_add_action(pdev.dev, pcim_msi_release, pdev);
  return 1;
}

function pcim_msi_release(pdev: pci_dev): void {
  pci_free_irq_vectors(pdev);
}

/**
 * pci_alloc_irq_vectors - allocate between `min` and `max` interrupt vectors
 * @pdev: the function
 * @min: fewest vectors the driver can work with (>= 1)
 * @max: most vectors it can use
 * @flags: PCI_IRQ_MSI, PCI_IRQ_INTX (PCI_IRQ_LEGACY), PCI_IRQ_MSIX, PCI_IRQ_ALL_TYPES
 * Tries MSI-X (not modelled), then MSI, then INTx, as `flags` allow; INTx only when min is 1.
 * Context: process (driver probe).
 * Returns: the number of vectors (always 1 here), -ENOSPC when no allowed type can give `min`
 * vectors (e.g. the controller's MSI vectors are used up), -EINVAL for bad arguments or a
 * device without the requested capability.
 */
export function pci_alloc_irq_vectors(pdev: pci_dev, min: number, max: number, flags: number): number {
  if (min < 1 || max < min) return -EINVAL;
  let nvecs = -ENOSPC;
  if (flags & PCI_IRQ_MSIX) nvecs = -EINVAL;
  if (flags & PCI_IRQ_MSI) {
    nvecs = pci_enable_msi_range(pdev, min, max);
    if (nvecs > 0) return nvecs;
  }
  if (flags & PCI_IRQ_INTX && min === 1 && pdev.pin) {
    pci_intx(pdev, true);
    return 1;
  }
  return nvecs;
}

/**
 * pci_irq_vector - the Linux IRQ number of vector `nr` (for request_irq)
 * Returns: the IRQ number, or -EINVAL for a vector that was not allocated.
 */
export function pci_irq_vector(pdev: pci_dev, nr: number): number {
  if (nr !== 0) return -EINVAL;
  return pdev.irq;
}

/**
 * pci_free_irq_vectors - give back the vectors of pci_alloc_irq_vectors
 * Disables MSI, returns the vector to the controller's pool and turns INTx back on.
 * Free every handler (free_irq) first. Context: process.
 */
export function pci_free_irq_vectors(pdev: pci_dev): void {
  if (!pdev.msi_enabled) return;
  if (irq_to_desc(irq_core(current_kernel()), pdev.irq)?.actions.length) {
    // Linux BUG()s here (free_msi_irqs); a WARN lets the simulation go on.
    dev_WARN(pdev.dev, `pci_free_irq_vectors: IRQ ${pdev.irq} still has a handler: free_irq() it first`);
  }
  const cap = pdev.msi_cap;
  const flags = pci_read_config_word(pdev, cap + R.PCI_MSI_FLAGS);
  pci_write_config_word(pdev, cap + R.PCI_MSI_FLAGS, flags & ~R.PCI_MSI_FLAGS_ENABLE);
  pci_intx(pdev, true);
  pci_state().msiUsed.delete(pdev.irq);
  pdev.irq = pdev._intx_irq;
  pdev.msi_enabled = false;
}

/** pci_enable_msi - older API: one MSI vector; returns 0 or a negative errno. */
export function pci_enable_msi(pdev: pci_dev): number {
  const rc = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
  return rc < 0 ? rc : 0;
}

/** pci_disable_msi - older API: undo pci_enable_msi. */
export function pci_disable_msi(pdev: pci_dev): void {
  pci_free_irq_vectors(pdev);
}
