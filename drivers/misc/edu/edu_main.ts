/**
 * edu: a driver for the educational PCI device (hw/dev/edu/SPEC.md).
 *
 * Theory of operation
 * - probe enables the function, claims and maps BAR0, proves the device is an edu (ID and the
 *   liveness inversion), limits DMA to the engine's 28 address bits, turns on bus mastering,
 *   takes one interrupt vector (MSI if possible, INTx otherwise) and installs the handler.
 *   Each step has a labelled block whose cleanup runs if a later step fails, and remove undoes
 *   probe in exact reverse order.
 * - The interrupt handler reads IRQ_STATUS, acknowledges exactly those causes (with INTx a
 *   forgotten acknowledge is an interrupt storm) and completes the waiter of each cause.
 * - Operations (edu_ops.ts) run in process context and sleep on those completions.
 * - The module parameter `skip_sync_for_cpu` reproduces a classic bug for the edu-stale-read
 *   scenario: reading a DMA_FROM_DEVICE buffer without dma_sync_single_for_cpu().
 * - The same device can sit on the platform bus (edu_platform.ts). What does not depend on the
 *   bus lives here and serves both: `edu_device` (keyed by its `struct device`, with the PCI
 *   function only when there is one), the identity check, the interrupt handler and the list
 *   of bound devices.
 */

import {
  pci_alloc_irq_vectors, pci_clear_master, pci_disable_device, pci_enable_device, pci_free_irq_vectors,
  pci_get_drvdata, pci_iomap, pci_iounmap, pci_irq_vector, pci_register_driver, pci_release_regions,
  pci_request_regions, pci_set_drvdata, pci_set_master, pci_unregister_driver, PCI_IRQ_INTX, PCI_IRQ_MSI,
  type pci_dev, type pci_device_id, type pci_driver,
} from "../../../kernel/include/pci.ts";
import { free_irq, request_irq, IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, type irqreturn_t } from "../../../kernel/include/interrupt.ts";
import { complete, DECLARE_COMPLETION, type completion } from "../../../kernel/include/completion.ts";
import { dma_set_mask_and_coherent, DMA_BIT_MASK } from "../../../kernel/include/dma-mapping.ts";
import { readl, writel } from "../../../kernel/include/io.ts";
import { dev_err, dev_info } from "../../../kernel/include/printk.ts";
import { EIO, ENODEV, ENOMEM } from "../../../kernel/include/errno.ts";
import type { iomem_t } from "../../../kernel/include/types.ts";
import type { device } from "../../../kernel/include/device.ts";
import {
  EDU_DEVICE, EDU_DMA_BITS, EDU_ID_SIGNATURE, EDU_VENDOR, IRQ_DMA, IRQ_FACT, REG_ID, REG_IRQ_ACK,
  REG_IRQ_STATUS, REG_LIVENESS,
} from "./edu_hw.ts";

export const DRV_NAME = "edu";

/** Module parameters (modprobe edu skip_sync_for_cpu=1). */
export const edu_params = {
  /** Deliberately omit dma_sync_single_for_cpu() before reading received data (a bug). */
  skip_sync_for_cpu: false,
};

export interface edu_device {
  /** The bound device: the PCI function's or the platform device's `dev`. */
  readonly dev: device;
  /** The PCI function, when bound through the PCI driver (absent on the platform bus). */
  readonly pdev?: pci_dev;
  /** The mapped register window (BAR0, or the platform MMIO resource). */
  readonly bar: iomem_t;
  readonly irq: number;
  readonly msi: boolean;
  /** How interrupts arrive, for reports: "MSI", "INTx" or "platform IRQ". */
  readonly irq_mode: string;
  readonly fact_done: completion;
  readonly dma_done: completion;
  /** Interrupts taken, by cause, for reports. */
  irqs_fact: number;
  irqs_dma: number;
}

/** Bound devices, in probe order (stands in for the misc device a real driver registers). */
export const edu_devices: edu_device[] = [];

/**
 * edu_irq - the interrupt handler, for either bus
 * Context: hardirq. Acknowledges exactly the causes it read, so a level line drops.
 * Returns: IRQ_NONE when the device raised nothing (a shared INTx line), else IRQ_HANDLED.
 */
export function edu_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const edu = dev_id as edu_device;
  const status = readl(edu.bar + REG_IRQ_STATUS);
  if (status === 0) return IRQ_NONE; // not us (the INTx line may be shared)
  writel(status, edu.bar + REG_IRQ_ACK);
  if (status & IRQ_FACT) {
    edu.irqs_fact++;
    complete(edu.fact_done);
  }
  if (status & IRQ_DMA) {
    edu.irqs_dma++;
    complete(edu.dma_done);
  }
  return IRQ_HANDLED;
}

/**
 * edu_check_identity - prove the mapped window really is an edu (ID and liveness inversion)
 * Context: process (probe).
 * Returns: 0, -ENODEV for a wrong ID, -EIO when LIVENESS does not invert.
 */
export function edu_check_identity(dev: device, bar: iomem_t): number {
  const id = readl(bar + REG_ID);
  if (id !== EDU_ID_SIGNATURE) {
    dev_err(dev, `unexpected ID register 0x${id.toString(16)}`);
    return -ENODEV;
  }
  writel(0x12345678, bar + REG_LIVENESS);
  const inv = readl(bar + REG_LIVENESS);
  if (inv !== (~0x12345678 >>> 0)) {
    dev_err(dev, `liveness check failed: read 0x${inv.toString(16)}`);
    return -EIO;
  }
  return 0;
}

function edu_probe(pdev: pci_dev, _id: pci_device_id): number {
  let err = pci_enable_device(pdev);
  if (err) return err;
  out_disable: {
    err = pci_request_regions(pdev, DRV_NAME);
    if (err) break out_disable;
    out_release: {
      const bar = pci_iomap(pdev, 0, 0);
      if (!bar) {
        err = -ENOMEM;
        break out_release;
      }
      out_unmap: {
        err = edu_check_identity(pdev.dev, bar);
        if (err) break out_unmap;
        err = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(EDU_DMA_BITS));
        if (err) {
          dev_err(pdev.dev, "no usable DMA configuration");
          break out_unmap;
        }
        pci_set_master(pdev);
        out_clear_master: {
          const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
          if (nvec < 0) {
            err = nvec;
            break out_clear_master;
          }
          out_free_vectors: {
            const edu = edu_alloc(pdev.dev, bar, pci_irq_vector(pdev, 0), pdev.msi_enabled ? "MSI" : "INTx", pdev);
            err = request_irq(edu.irq, edu_irq, edu.msi ? 0 : IRQF_SHARED, DRV_NAME, edu);
            if (err) {
              dev_err(pdev.dev, `cannot request IRQ ${edu.irq}`);
              break out_free_vectors;
            }
            pci_set_drvdata(pdev, edu);
            edu_add(edu);
            dev_info(pdev.dev, `edu ready: IRQ ${edu.irq} (${edu.irq_mode}), DMA mask ${EDU_DMA_BITS} bits`);
            return 0;
          }
          pci_free_irq_vectors(pdev);
        }
        pci_clear_master(pdev);
      }
      pci_iounmap(pdev, bar);
    }
    pci_release_regions(pdev);
  }
  pci_disable_device(pdev);
  return err;
}

/**
 * edu_alloc - the per-device state both buses share
 * @dev: the bound device
 * @bar: its mapped register window
 * @irq: the Linux IRQ the handler will be installed on
 * @irq_mode: "MSI", "INTx" or "platform IRQ"
 * @pdev: the PCI function, on PCI only
 * Context: process (probe).
 */
export function edu_alloc(dev: device, bar: iomem_t, irq: number, irq_mode: string, pdev?: pci_dev): edu_device {
  return {
    dev,
    pdev,
    bar,
    irq,
    msi: irq_mode === "MSI",
    irq_mode,
    fact_done: DECLARE_COMPLETION(),
    dma_done: DECLARE_COMPLETION(),
    irqs_fact: 0,
    irqs_dma: 0,
  };
}

/** edu_add - publish a probed device (the end of a successful probe, on either bus). */
export function edu_add(edu: edu_device): void {
  edu_devices.push(edu);
}

/** edu_del - withdraw a device (the start of remove, before its resources go). */
export function edu_del(edu: edu_device): void {
  const i = edu_devices.indexOf(edu);
  if (i >= 0) edu_devices.splice(i, 1);
}

function edu_remove(pdev: pci_dev): void {
  const edu = pci_get_drvdata<edu_device>(pdev);
  edu_del(edu);
  free_irq(edu.irq, edu);
  pci_free_irq_vectors(pdev);
  pci_clear_master(pdev);
  pci_iounmap(pdev, edu.bar);
  pci_release_regions(pdev);
  pci_disable_device(pdev);
}

const edu_ids: pci_device_id[] = [{ vendor: EDU_VENDOR, device: EDU_DEVICE }];

export const edu_driver: pci_driver = {
  name: DRV_NAME,
  id_table: edu_ids,
  probe: edu_probe,
  remove: edu_remove,
};

/** module_pci_driver(edu_driver) */
export function edu_init(): Promise<number> | number {
  return pci_register_driver(edu_driver);
}

export function edu_exit(): Promise<void> | void {
  return pci_unregister_driver(edu_driver);
}
