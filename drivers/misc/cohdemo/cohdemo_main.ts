/**
 * cohdemo: a driver for the edu device (hw/dev/edu/SPEC.md) whose DMA operations each carry one
 * classic coherence bug, for the coherence-* scenarios.
 *
 * Theory of operation
 * - probe is an ordinary managed probe: enable the function, claim and map BAR0, check the ID,
 *   limit DMA to the engine's 28 bits, enable bus mastering, take one vector (MSI or INTx) and
 *   install the handler. Everything is released by devres when the driver detaches.
 * - The interrupt handler acknowledges what IRQ_STATUS reports and completes `dma_done`.
 * - cohdemo_ops.ts holds the transfers: correct helpers that load and fetch the device's 4 KiB
 *   buffer, and the buggy operations (each names its bug where it happens). Buffer ownership
 *   follows reference §1.2 except where a comment says BUG.
 */

import {
  pci_alloc_irq_vectors, pci_clear_master, pci_get_drvdata, pci_irq_vector, pci_set_drvdata, pci_set_master,
  pcim_enable_device, pcim_iomap_table, pcim_iomap_regions, PCI_IRQ_INTX, PCI_IRQ_MSI,
  type pci_dev, type pci_device_id, type pci_driver,
} from "../../../kernel/include/pci.ts";
import { IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, type irqreturn_t } from "../../../kernel/include/interrupt.ts";
import { devm_request_irq } from "../../../kernel/include/devres.ts";
import { complete, DECLARE_COMPLETION, type completion } from "../../../kernel/include/completion.ts";
import { dma_set_mask_and_coherent, DMA_BIT_MASK } from "../../../kernel/include/dma-mapping.ts";
import { readl, writel } from "../../../kernel/include/io.ts";
import { dev_err, dev_info } from "../../../kernel/include/printk.ts";
import { ENODEV } from "../../../kernel/include/errno.ts";
import type { iomem_t } from "../../../kernel/include/types.ts";
import { COHDEMO_DEVICE, COHDEMO_DMA_BITS, COHDEMO_ID_SIGNATURE, COHDEMO_VENDOR, IRQ_DMA, REG_ID, REG_IRQ_ACK, REG_IRQ_STATUS } from "./cohdemo_hw.ts";

export const DRV_NAME = "cohdemo";

export interface cohdemo_device {
  readonly pdev: pci_dev;
  readonly bar: iomem_t;
  readonly irq: number;
  readonly dma_done: completion;
  irqs: number;
}

/** Bound devices, in probe order. */
export const cohdemo_devices: cohdemo_device[] = [];

function cohdemo_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const cd = dev_id as cohdemo_device;
  const status = readl(cd.bar + REG_IRQ_STATUS);
  if (status === 0) return IRQ_NONE;
  writel(status, cd.bar + REG_IRQ_ACK);
  if (status & IRQ_DMA) {
    cd.irqs++;
    complete(cd.dma_done);
  }
  return IRQ_HANDLED;
}

function cohdemo_probe(pdev: pci_dev, _id: pci_device_id): number {
  let err = pcim_enable_device(pdev);
  if (err) return err;
  err = pcim_iomap_regions(pdev, 1 << 0, DRV_NAME);
  if (err) return err;
  const bar = pcim_iomap_table(pdev)[0];
  if (readl(bar + REG_ID) !== COHDEMO_ID_SIGNATURE) {
    dev_err(pdev.dev, "not an edu");
    return -ENODEV;
  }
  err = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(COHDEMO_DMA_BITS));
  if (err) return err;
  pci_set_master(pdev);
  const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
  if (nvec < 0) {
    pci_clear_master(pdev);
    return nvec;
  }
  const cd: cohdemo_device = { pdev, bar, irq: pci_irq_vector(pdev, 0), dma_done: DECLARE_COMPLETION(), irqs: 0 };
  err = devm_request_irq(pdev.dev, cd.irq, cohdemo_irq, pdev.msi_enabled ? 0 : IRQF_SHARED, DRV_NAME, cd);
  if (err) {
    pci_clear_master(pdev);
    return err;
  }
  pci_set_drvdata(pdev, cd);
  cohdemo_devices.push(cd);
  dev_info(pdev.dev, `cohdemo ready: IRQ ${cd.irq}`);
  return 0;
}

function cohdemo_remove(pdev: pci_dev): void {
  const cd = pci_get_drvdata<cohdemo_device>(pdev);
  const i = cohdemo_devices.indexOf(cd);
  if (i >= 0) cohdemo_devices.splice(i, 1);
  pci_clear_master(pdev);
}

const cohdemo_ids: pci_device_id[] = [{ vendor: COHDEMO_VENDOR, device: COHDEMO_DEVICE }];

export const cohdemo_driver: pci_driver = {
  name: DRV_NAME,
  id_table: cohdemo_ids,
  probe: cohdemo_probe,
  remove: cohdemo_remove,
};
