/**
 * rogue: a well-behaved driver for the rogue DMA function (hw/dev/rogue/SPEC.md).
 *
 * Theory of operation
 * - The driver does everything right; the device is what is not to be trusted (its firmware
 *   can issue DMA on its own, SPEC §8). The isolation scenarios show what the IOMMU makes of
 *   that, so the driver keeps long-lived streaming mappings for the device to aim at.
 * - probe enables the function, claims and maps BAR0, checks the ID, sets a 64-bit DMA mask,
 *   turns on bus mastering, takes one vector (MSI, else INTx) and installs the handler, then
 *   allocates a 4 KiB receive buffer mapped DMA_FROM_DEVICE and a 4 KiB transmit buffer mapped
 *   DMA_TO_DEVICE (dma_map_single, kept for the life of the binding), and finally enables the
 *   DONE and ERROR interrupts. Each step has a labelled block whose cleanup runs if a later
 *   step fails; remove undoes probe in exact reverse order.
 * - Buffer ownership (reference §1.2): both buffers belong to the device between transfers.
 *   rogue_ops.ts takes them back with dma_sync_single_for_cpu before the CPU touches them and
 *   hands them over again with dma_sync_single_for_device.
 * - The handler acknowledges exactly the causes it read. DONE or ERROR completes the waiting
 *   transfer; an ERROR nobody waits for (the firmware's own DMA refused by the bus) is counted
 *   with the device's ERR_ADDR, and logged once: it is how a driver notices an attack at all.
 */

import {
  pci_alloc_irq_vectors, pci_clear_master, pci_disable_device, pci_enable_device, pci_free_irq_vectors,
  pci_get_drvdata, pci_iomap, pci_iounmap, pci_irq_vector, pci_release_regions,
  pci_request_regions, pci_set_drvdata, pci_set_master, PCI_IRQ_INTX, PCI_IRQ_MSI,
  type pci_dev, type pci_device_id, type pci_driver,
} from "../../../kernel/include/pci.ts";
import { free_irq, request_irq, IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, type irqreturn_t } from "../../../kernel/include/interrupt.ts";
import { complete, DECLARE_COMPLETION, type completion } from "../../../kernel/include/completion.ts";
import {
  dma_map_single, dma_mapping_error, dma_set_mask_and_coherent, dma_unmap_single, DMA_BIT_MASK, DMA_FROM_DEVICE, DMA_TO_DEVICE,
} from "../../../kernel/include/dma-mapping.ts";
import { readl, readq, writel } from "../../../kernel/include/io.ts";
import { kfree, kzalloc, GFP_KERNEL } from "../../../kernel/include/slab.ts";
import { dev_err, dev_err_once, dev_info } from "../../../kernel/include/printk.ts";
import { ENODEV, ENOMEM } from "../../../kernel/include/errno.ts";
import type { dma_addr_t, iomem_t, vaddr_t } from "../../../kernel/include/types.ts";
import type { device } from "../../../kernel/include/device.ts";
import {
  IRQ_DONE, IRQ_ERROR, REG_ERR_ADDR, REG_ID, REG_IRQ_ENABLE, REG_IRQ_STATUS, ROGUE_BUF_SIZE, ROGUE_DEVICE,
  ROGUE_DMA_BITS, ROGUE_ID_SIGNATURE, ROGUE_VENDOR,
} from "./rogue_hw.ts";

export const DRV_NAME = "rogue";

export interface rogue_device {
  readonly dev: device;
  readonly pdev: pci_dev;
  readonly bar: iomem_t;
  readonly irq: number;
  /** "MSI" or "INTx", for reports. */
  readonly irq_mode: string;
  /** Completed by the handler when a transfer finished (DONE) or failed (ERROR). */
  readonly done: completion;
  /** IRQ_STATUS causes of the last completion. */
  last_status: number;
  /** Receive buffer: 4 KiB, mapped DMA_FROM_DEVICE for the life of the binding. */
  rx_buf: vaddr_t;
  rx_dma: dma_addr_t;
  /** Transmit buffer: 4 KiB, mapped DMA_TO_DEVICE for the life of the binding. */
  tx_buf: vaddr_t;
  tx_dma: dma_addr_t;
  /** Interrupts taken, by cause; and where the device said its last refused DMA went. */
  irqs_done: number;
  irqs_error: number;
  last_err_addr: number;
}

/** Bound devices, in probe order (stands in for the net device a real driver registers). */
export const rogue_devices: rogue_device[] = [];

/**
 * rogue_irq - the interrupt handler
 * Context: hardirq. Acknowledges exactly the causes it read.
 * Returns: IRQ_NONE when the device raised nothing (a shared INTx line), else IRQ_HANDLED.
 */
function rogue_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const rg = dev_id as rogue_device;
  const status = readl(rg.bar + REG_IRQ_STATUS);
  if (status === 0) return IRQ_NONE;
  writel(status, rg.bar + REG_IRQ_STATUS);
  if (status & IRQ_ERROR) {
    rg.irqs_error++;
    rg.last_err_addr = readq(rg.bar + REG_ERR_ADDR);
    dev_err_once(rg.dev, `device reported a refused DMA at bus address 0x${rg.last_err_addr.toString(16)}`);
  }
  if (status & IRQ_DONE) rg.irqs_done++;
  rg.last_status = status;
  complete(rg.done);
  return IRQ_HANDLED;
}

/** Map one 4 KiB buffer for the device; false (and nothing held) on failure. */
function rogue_buf_map(rg: rogue_device, dir: typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE): boolean {
  const buf = kzalloc(ROGUE_BUF_SIZE, GFP_KERNEL);
  if (!buf) return false;
  const handle = dma_map_single(rg.dev, buf, ROGUE_BUF_SIZE, dir);
  if (dma_mapping_error(rg.dev, handle)) {
    kfree(buf);
    return false;
  }
  if (dir === DMA_FROM_DEVICE) {
    rg.rx_buf = buf;
    rg.rx_dma = handle;
  } else {
    rg.tx_buf = buf;
    rg.tx_dma = handle;
  }
  return true;
}

function rogue_buf_unmap(rg: rogue_device, dir: typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE): void {
  const rx = dir === DMA_FROM_DEVICE;
  dma_unmap_single(rg.dev, rx ? rg.rx_dma : rg.tx_dma, ROGUE_BUF_SIZE, dir);
  kfree(rx ? rg.rx_buf : rg.tx_buf);
}

/** The rest of probe, once BAR0 is mapped: mask, mastering, IRQ, buffers, enable. */
function rogue_setup(pdev: pci_dev, bar: iomem_t): number {
  let err = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(ROGUE_DMA_BITS));
  if (err) {
    dev_err(pdev.dev, "no usable DMA configuration");
    return err;
  }
  pci_set_master(pdev);
  out_clear_master: {
    const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
    if (nvec < 0) {
      err = nvec;
      break out_clear_master;
    }
    out_free_vectors: {
      const rg = rogue_alloc(pdev, bar);
      err = request_irq(rg.irq, rogue_irq, pdev.msi_enabled ? 0 : IRQF_SHARED, DRV_NAME, rg);
      if (err) break out_free_vectors;
      out_free_irq: {
        err = -ENOMEM;
        if (!rogue_buf_map(rg, DMA_FROM_DEVICE)) break out_free_irq;
        if (!rogue_buf_map(rg, DMA_TO_DEVICE)) {
          rogue_buf_unmap(rg, DMA_FROM_DEVICE);
          break out_free_irq;
        }
        writel(IRQ_DONE | IRQ_ERROR, bar + REG_IRQ_ENABLE);
        pci_set_drvdata(pdev, rg);
        rogue_devices.push(rg);
        dev_info(pdev.dev, `rogue ready: IRQ ${rg.irq} (${rg.irq_mode}), rx at 0x${rg.rx_dma.toString(16)}, tx at 0x${rg.tx_dma.toString(16)}`);
        return 0;
      }
      free_irq(rg.irq, rg);
    }
    pci_free_irq_vectors(pdev);
  }
  pci_clear_master(pdev);
  return err;
}

function rogue_alloc(pdev: pci_dev, bar: iomem_t): rogue_device {
  return {
    dev: pdev.dev, pdev, bar, irq: pci_irq_vector(pdev, 0), irq_mode: pdev.msi_enabled ? "MSI" : "INTx",
    done: DECLARE_COMPLETION(), last_status: 0,
    rx_buf: 0, rx_dma: 0 as dma_addr_t, tx_buf: 0, tx_dma: 0 as dma_addr_t,
    irqs_done: 0, irqs_error: 0, last_err_addr: 0,
  };
}

function rogue_probe(pdev: pci_dev, _id: pci_device_id): number {
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
      const id = readl(bar + REG_ID);
      if (id !== ROGUE_ID_SIGNATURE) {
        dev_err(pdev.dev, `unexpected ID register 0x${id.toString(16)}`);
        err = -ENODEV;
      } else {
        err = rogue_setup(pdev, bar);
        if (!err) return 0;
      }
      pci_iounmap(pdev, bar);
    }
    pci_release_regions(pdev);
  }
  pci_disable_device(pdev);
  return err;
}

function rogue_remove(pdev: pci_dev): void {
  const rg = pci_get_drvdata<rogue_device>(pdev);
  const i = rogue_devices.indexOf(rg);
  if (i >= 0) rogue_devices.splice(i, 1);
  writel(0, rg.bar + REG_IRQ_ENABLE);
  rogue_buf_unmap(rg, DMA_TO_DEVICE);
  rogue_buf_unmap(rg, DMA_FROM_DEVICE);
  free_irq(rg.irq, rg);
  pci_free_irq_vectors(pdev);
  pci_clear_master(pdev);
  pci_iounmap(pdev, rg.bar);
  pci_release_regions(pdev);
  pci_disable_device(pdev);
}

const rogue_ids: pci_device_id[] = [{ vendor: ROGUE_VENDOR, device: ROGUE_DEVICE }];

export const rogue_driver: pci_driver = {
  name: DRV_NAME,
  id_table: rogue_ids,
  probe: rogue_probe,
  remove: rogue_remove,
};
