/**
 * dmatour: a deliberately buggy driver for the edu device that tours dma-debug's error classes.
 *
 * Theory of operation
 * - It binds to the edu (PCI 1234:11e8) like the real edu driver, with managed resources:
 *   pcim_enable_device, the BAR through pcim_iomap_region, a 28-bit DMA mask, bus mastering,
 *   one interrupt vector (MSI or INTx) with devm_request_irq. The handler acknowledges the DMA
 *   cause and completes the waiter.
 * - probe also maps a status page DMA_FROM_DEVICE for the device's whole life (as many NICs
 *   keep a status block mapped). remove() FORGETS to unmap it: the one bug that is not in
 *   dmatour_misuse.ts, because dma-debug can only see it when the driver unbinds
 *   (`mapping-leak`). The page is not freed either (freeing memory a device may still write
 *   would be worse); dmatour_release_leak() is the clean-up a test harness does afterwards.
 * - dmatour_sg.ts moves data correctly through scatter-gather mappings, to show the right way
 *   first; dmatour_misuse.ts then commits each mistake once.
 * Nothing here is meant to be copied, except dmatour_sg.ts.
 */

import {
  pci_alloc_irq_vectors, pci_get_drvdata, pci_irq_vector, pci_set_drvdata, pci_set_master, pcim_enable_device,
  pcim_iomap_region, PCI_IRQ_INTX, PCI_IRQ_MSI, type pci_dev, type pci_device_id, type pci_driver,
} from "../../../kernel/include/pci.ts";
import { IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, type irqreturn_t } from "../../../kernel/include/interrupt.ts";
import { devm_request_irq } from "../../../kernel/include/devres.ts";
import { complete, DECLARE_COMPLETION, type completion } from "../../../kernel/include/completion.ts";
import {
  DMA_BIT_MASK, DMA_FROM_DEVICE, dma_map_single, dma_mapping_error, dma_set_mask_and_coherent, dma_unmap_single,
  type dma_addr_t,
} from "../../../kernel/include/dma-mapping.ts";
import { readl, writel } from "../../../kernel/include/io.ts";
import { dev_info } from "../../../kernel/include/printk.ts";
import { ENOMEM, IS_ERR, PTR_ERR } from "../../../kernel/include/errno.ts";
import { __get_free_pages, free_pages, GFP_KERNEL, PAGE_SIZE, __GFP_ZERO } from "../../../kernel/include/slab.ts";
import type { device } from "../../../kernel/include/device.ts";
import type { iomem_t, vaddr_t } from "../../../kernel/include/types.ts";
import { EDU_DEVICE, EDU_DMA_BITS, EDU_VENDOR, IRQ_DMA, REG_IRQ_ACK, REG_IRQ_STATUS } from "./dmatour_hw.ts";

export const DRV_NAME = "dmatour";

export interface dmatour_device {
  readonly pdev: pci_dev;
  readonly dev: device;
  readonly bar: iomem_t;
  readonly msi: boolean;
  readonly dma_done: completion;
  /** The status page, mapped DMA_FROM_DEVICE from probe on (and never unmapped: the leak). */
  readonly status: vaddr_t;
  readonly status_dma: dma_addr_t;
}

/** Bound devices, in probe order. */
export const dmatour_devices: dmatour_device[] = [];

/** Status pages left mapped by remove(), for dmatour_release_leak(). */
const leaked: dmatour_device[] = [];

function dmatour_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const t = dev_id as dmatour_device;
  const status = readl(t.bar + REG_IRQ_STATUS);
  if (status === 0) return IRQ_NONE;
  writel(status, t.bar + REG_IRQ_ACK);
  if (status & IRQ_DMA) complete(t.dma_done);
  return IRQ_HANDLED;
}

function dmatour_probe(pdev: pci_dev, _id: pci_device_id): number {
  const dev = pdev.dev;
  let err = pcim_enable_device(pdev);
  if (err) return err;
  const bar = pcim_iomap_region(pdev, 0, DRV_NAME);
  if (IS_ERR(bar)) return PTR_ERR(bar);
  err = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(EDU_DMA_BITS));
  if (err) return err;
  pci_set_master(pdev);
  const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
  if (nvec < 0) return nvec;
  const status = __get_free_pages(GFP_KERNEL | __GFP_ZERO, 0);
  if (!status) return -ENOMEM;
  const status_dma = dma_map_single(dev, status, PAGE_SIZE, DMA_FROM_DEVICE);
  if (dma_mapping_error(dev, status_dma)) {
    free_pages(status, 0);
    return -ENOMEM;
  }
  const t: dmatour_device = { pdev, dev, bar, msi: pdev.msi_enabled, dma_done: DECLARE_COMPLETION(), status, status_dma };
  err = devm_request_irq(dev, pci_irq_vector(pdev, 0), dmatour_irq, t.msi ? 0 : IRQF_SHARED, DRV_NAME, t);
  if (err) {
    dma_unmap_single(dev, status_dma, PAGE_SIZE, DMA_FROM_DEVICE);
    free_pages(status, 0);
    return err;
  }
  pci_set_drvdata(pdev, t);
  dmatour_devices.push(t);
  dev_info(dev, `dmatour ready: IRQ ${pci_irq_vector(pdev, 0)} (${t.msi ? "MSI" : "INTx"}), status page at ${status_dma.toString(16)}`);
  return 0;
}

function dmatour_remove(pdev: pci_dev): void {
  const t = pci_get_drvdata<dmatour_device>(pdev);
  const i = dmatour_devices.indexOf(t);
  if (i >= 0) dmatour_devices.splice(i, 1);
  // BUG (on purpose): dma_unmap_single(t.dev, t.status_dma, PAGE_SIZE, DMA_FROM_DEVICE) and
  // free_pages(t.status, 0) belong here. dma-debug reports the mapping when we unbind.
  leaked.push(t);
}

/**
 * dmatour_release_leak - what remove() should have done, run by the harness after the unbind
 * report so the machine ends clean: unmap and free every status page remove() left behind.
 * Context: process.
 * Returns: how many were released.
 */
export function dmatour_release_leak(): number {
  const n = leaked.length;
  for (const t of leaked.splice(0)) {
    dma_unmap_single(t.dev, t.status_dma, PAGE_SIZE, DMA_FROM_DEVICE);
    free_pages(t.status, 0);
  }
  return n;
}

const dmatour_ids: pci_device_id[] = [{ vendor: EDU_VENDOR, device: EDU_DEVICE }];

export const dmatour_driver: pci_driver = {
  name: DRV_NAME,
  id_table: dmatour_ids,
  probe: dmatour_probe,
  remove: dmatour_remove,
};
