/**
 * edu_bounce: a second driver for the edu DMA engine (hw/dev/edu/SPEC.md), written to move
 * data that lives where the engine cannot reach: buffers handed in by an upper layer (as a
 * network or block stack hands a driver its data) above 4 GiB, beyond the device's DMA mask.
 * The driver does nothing special about it; it maps, checks every mapping, syncs and unmaps as
 * any streaming-DMA driver must, and the DMA layer bounces through swiotlb behind its back.
 *
 * Theory of operation
 * - probe enables the function (managed), maps BAR0 (managed), checks the ID register, sets
 *   the DMA mask to the width the board wired (`dma_bits`, default 32), turns on bus
 *   mastering, takes one vector (MSI, else INTx) and installs the handler. It logs the
 *   largest mapping the DMA layer accepts (dma_max_mapping_size: 256 KiB when bouncing).
 * - The handler acknowledges the DMA cause and completes the waiter.
 * - Operations (edu_bounce_ops.ts) run in process context and sleep on that completion.
 *
 * Module parameters: `dma_bits` (modprobe edu_bounce dma_bits=28): the engine's address width
 * on this board; 32 by default (a 32-bit PCI DMA engine), 28 for the stock edu.
 */

import {
  pci_alloc_irq_vectors, pci_clear_master, pci_free_irq_vectors, pci_get_drvdata, pci_irq_vector,
  pci_set_drvdata, pci_set_master, pcim_enable_device, pcim_iomap_region, PCI_IRQ_INTX, PCI_IRQ_MSI,
  type pci_dev, type pci_device_id, type pci_driver,
} from "../../../kernel/include/pci.ts";
import { free_irq, request_irq, IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, type irqreturn_t } from "../../../kernel/include/interrupt.ts";
import { complete, DECLARE_COMPLETION, type completion } from "../../../kernel/include/completion.ts";
import { dma_max_mapping_size, dma_set_mask_and_coherent, DMA_BIT_MASK } from "../../../kernel/include/dma-mapping.ts";
import { readl, writel } from "../../../kernel/include/io.ts";
import { dev_err, dev_info } from "../../../kernel/include/printk.ts";
import { ENODEV, IS_ERR, PTR_ERR } from "../../../kernel/include/errno.ts";
import type { iomem_t } from "../../../kernel/include/types.ts";
import { EBOUNCE_DEVICE, EBOUNCE_ID_SIGNATURE, EBOUNCE_VENDOR, IRQ_DMA, REG_ID, REG_IRQ_ACK, REG_IRQ_STATUS } from "./edu_bounce_hw.ts";

export const DRV_NAME = "edu_bounce";

/** Module parameters. */
export const edu_bounce_params = {
  /** Address lines of the DMA engine on this board (the stock edu has 28). */
  dma_bits: 32,
};

export interface edu_bounce_device {
  readonly pdev: pci_dev;
  readonly bar: iomem_t;
  readonly irq: number;
  readonly dma_done: completion;
  /** The mask set at probe, in bits. */
  readonly dma_bits: number;
  /** dma_max_mapping_size() at probe: no single mapping may be larger. */
  readonly max_mapping: number;
  /** DMA completions taken (for reports). */
  irqs: number;
}

/** Bound devices, in probe order. */
export const edu_bounce_devices: edu_bounce_device[] = [];

function edu_bounce_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const eb = dev_id as edu_bounce_device;
  const status = readl(eb.bar + REG_IRQ_STATUS);
  if (status === 0) return IRQ_NONE; // a shared INTx line: not us
  writel(status, eb.bar + REG_IRQ_ACK);
  if (status & IRQ_DMA) {
    eb.irqs++;
    complete(eb.dma_done);
  }
  return IRQ_HANDLED;
}

function edu_bounce_probe(pdev: pci_dev, _id: pci_device_id): number {
  const dev = pdev.dev;
  let err = pcim_enable_device(pdev);
  if (err) return err;
  const bar = pcim_iomap_region(pdev, 0, DRV_NAME);
  if (IS_ERR(bar)) return PTR_ERR(bar);
  const id = readl(bar + REG_ID);
  if (id !== EBOUNCE_ID_SIGNATURE) {
    dev_err(dev, `unexpected ID register 0x${id.toString(16)}`);
    return -ENODEV;
  }
  const bits = edu_bounce_params.dma_bits;
  err = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(bits));
  if (err) {
    dev_err(dev, `no usable DMA configuration for a ${bits}-bit mask`);
    return err;
  }
  pci_set_master(pdev);
  const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
  if (nvec < 0) {
    err = nvec;
    pci_clear_master(pdev);
    return err;
  }
  const eb: edu_bounce_device = {
    pdev,
    bar,
    irq: pci_irq_vector(pdev, 0),
    dma_done: DECLARE_COMPLETION(),
    dma_bits: bits,
    max_mapping: dma_max_mapping_size(dev),
    irqs: 0,
  };
  err = request_irq(eb.irq, edu_bounce_irq, pdev.msi_enabled ? 0 : IRQF_SHARED, DRV_NAME, eb);
  if (err) {
    dev_err(dev, `cannot request IRQ ${eb.irq}`);
    pci_free_irq_vectors(pdev);
    pci_clear_master(pdev);
    return err;
  }
  pci_set_drvdata(pdev, eb);
  edu_bounce_devices.push(eb);
  const max = eb.max_mapping >= Number.MAX_SAFE_INTEGER ? "unlimited" : `${eb.max_mapping} bytes`;
  dev_info(dev, `DMA mask ${bits} bits, largest mapping ${max}`);
  return 0;
}

function edu_bounce_remove(pdev: pci_dev): void {
  const eb = pci_get_drvdata<edu_bounce_device>(pdev);
  const i = edu_bounce_devices.indexOf(eb);
  if (i >= 0) edu_bounce_devices.splice(i, 1);
  free_irq(eb.irq, eb);
  pci_free_irq_vectors(pdev);
  pci_clear_master(pdev);
  // BAR mapping, region and enable are managed: released after remove returns.
}

export const edu_bounce_driver: pci_driver = {
  name: DRV_NAME,
  id_table: [{ vendor: EBOUNCE_VENDOR, device: EBOUNCE_DEVICE }],
  probe: edu_bounce_probe,
  remove: edu_bounce_remove,
};
