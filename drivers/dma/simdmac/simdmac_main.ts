/**
 * simdmac: the driver of the dmac DMA controller (hw/dev/dmac/SPEC.md), a dmaengine provider.
 *
 * Theory of operation
 * - A platform driver named after the model, "dmac", so it binds every dmac the machine
 *   describes (or a scenario plugs in).
 * - probe maps the registers, proves the ID, reads how many channels and peripheral ports the
 *   block has, allows 64-bit DMA (the controller drives every address line), resets and
 *   enables the controller, creates a coherent dma_pool for the 32-byte hardware descriptors
 *   (the controller fetches them by DMA), sets up one dma_chan and one tasklet per channel,
 *   installs the interrupt handler and registers the dma_device. Everything is managed
 *   (devm_*, dmam_*, dmaenginem_*), so a failed probe and remove leave nothing behind.
 * - The interrupt handler (hardirq) reads IRQ_STATUS, acknowledges each flagged channel's
 *   INT_STATUS (W1C: the level line drops), notes the causes and schedules that channel's
 *   tasklet; all the work, callbacks included, happens there (simdmac_chan.ts).
 * - remove aborts every channel, kills the tasklets, frees what descriptors are left and
 *   disables the controller; devres then unregisters the dma_device, frees the IRQ, destroys
 *   the pool and unmaps the registers, in reverse order of probe.
 */

import {
  devm_platform_ioremap_resource, platform_driver_register, platform_driver_unregister, platform_get_drvdata,
  platform_get_irq, platform_get_resource, platform_set_drvdata, resource_size, IORESOURCE_MEM,
  type platform_device, type platform_driver,
} from "../../../kernel/include/platform_device.ts";
import { devm_request_irq } from "../../../kernel/include/devres.ts";
import { IRQ_HANDLED, IRQ_NONE, tasklet_kill, tasklet_schedule, tasklet_setup, type irqreturn_t } from "../../../kernel/include/interrupt.ts";
import { dma_set_mask_and_coherent, DMA_BIT_MASK } from "../../../kernel/include/dma-mapping.ts";
import { dmam_pool_create } from "../../../kernel/include/dmapool.ts";
import {
  DMA_CYCLIC, DMA_DEV_TO_MEM, DMA_MEM_TO_DEV, DMA_MEM_TO_MEM, DMA_MEMCPY, DMA_PRIVATE, DMA_RESIDUE_GRANULARITY_BURST,
  DMA_SLAVE, DMA_SLAVE_BUSWIDTH_1_BYTE, DMA_SLAVE_BUSWIDTH_2_BYTES, DMA_SLAVE_BUSWIDTH_4_BYTES, DMA_SLAVE_BUSWIDTH_8_BYTES,
  dma_cap_set, dma_chan, dma_device, dmaenginem_async_device_register,
} from "../../../kernel/include/dmaengine.ts";
import { readl, writel } from "../../../kernel/include/io.ts";
import { dev_err, dev_info } from "../../../kernel/include/printk.ts";
import { EINVAL, ENODEV, ENOMEM, IS_ERR, PTR_ERR } from "../../../kernel/include/errno.ts";
import {
  CAPS_CHANNELS, CAPS_PPORTS, CH_INT_STATUS, CTRL_ABORT, CH_CTRL, DMAC_CAPS, DMAC_CH, DMAC_CTRL, DMAC_CTRL_ENABLE,
  DMAC_CTRL_RESET, DMAC_ID, DMAC_ID_VALUE, DMAC_IRQ_STATUS, DMAC_REGS_MIN, DRV_NAME, HW_DESC_ALIGN, HW_DESC_SIZE,
} from "./simdmac_hw.ts";
import {
  simdmac_alloc_chan_resources, simdmac_chan, simdmac_config, simdmac_free_chan_resources, simdmac_issue_pending,
  simdmac_pause, simdmac_resume, simdmac_synchronize, simdmac_tasklet, simdmac_terminate_all, simdmac_tx_status,
  type simdmac_device,
} from "./simdmac_chan.ts";
import { simdmac_desc_free, simdmac_prep_dma_cyclic, simdmac_prep_dma_memcpy, simdmac_prep_slave_sg } from "./simdmac_desc.ts";

/**
 * simdmac_irq - the interrupt handler
 * Context: hardirq. Acknowledges exactly the causes it read, then defers to the tasklets.
 * Returns: IRQ_NONE when no channel of this controller asked (a shared line), else IRQ_HANDLED.
 */
export function simdmac_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const sd = dev_id as simdmac_device;
  const summary = readl(sd.regs + DMAC_IRQ_STATUS);
  if (summary === 0) return IRQ_NONE;
  for (const sc of sd.chans) {
    if (!(summary & (1 << sc.index))) continue;
    const st = readl(sc.regs + CH_INT_STATUS);
    writel(st, sc.regs + CH_INT_STATUS);
    sc.pending |= st;
    tasklet_schedule(sc.task);
  }
  return IRQ_HANDLED;
}

function simdmac_dma_device(sd_dev: simdmac_device["dev"]): dma_device {
  const dd = new dma_device();
  dd.dev = sd_dev;
  dma_cap_set(DMA_MEMCPY, dd.cap_mask);
  dma_cap_set(DMA_SLAVE, dd.cap_mask);
  dma_cap_set(DMA_CYCLIC, dd.cap_mask);
  dma_cap_set(DMA_PRIVATE, dd.cap_mask);
  const widths = (1 << DMA_SLAVE_BUSWIDTH_1_BYTE) | (1 << DMA_SLAVE_BUSWIDTH_2_BYTES) | (1 << DMA_SLAVE_BUSWIDTH_4_BYTES) | (1 << DMA_SLAVE_BUSWIDTH_8_BYTES);
  dd.src_addr_widths = widths;
  dd.dst_addr_widths = widths;
  dd.directions = (1 << DMA_MEM_TO_MEM) | (1 << DMA_MEM_TO_DEV) | (1 << DMA_DEV_TO_MEM);
  dd.max_burst = 256;
  dd.residue_granularity = DMA_RESIDUE_GRANULARITY_BURST;
  dd.device_alloc_chan_resources = simdmac_alloc_chan_resources;
  dd.device_free_chan_resources = simdmac_free_chan_resources;
  dd.device_prep_dma_memcpy = simdmac_prep_dma_memcpy;
  dd.device_prep_slave_sg = simdmac_prep_slave_sg;
  dd.device_prep_dma_cyclic = simdmac_prep_dma_cyclic;
  dd.device_config = simdmac_config;
  dd.device_pause = simdmac_pause;
  dd.device_resume = simdmac_resume;
  dd.device_terminate_all = simdmac_terminate_all;
  dd.device_synchronize = simdmac_synchronize;
  dd.device_tx_status = simdmac_tx_status;
  dd.device_issue_pending = simdmac_issue_pending;
  return dd;
}

function simdmac_probe(pdev: platform_device): number {
  const dev = pdev.dev;
  const res = platform_get_resource(pdev, IORESOURCE_MEM, 0);
  if (!res) {
    dev_err(dev, "no MMIO resource");
    return -ENODEV;
  }
  if (resource_size(res) < DMAC_REGS_MIN) {
    dev_err(dev, `MMIO resource of ${resource_size(res)} bytes cannot hold the registers (0x${DMAC_REGS_MIN.toString(16)} bytes)`);
    return -EINVAL;
  }
  const regs = devm_platform_ioremap_resource(pdev, 0);
  if (IS_ERR(regs)) return PTR_ERR(regs);
  const irq = platform_get_irq(pdev, 0);
  if (irq < 0) return irq;
  const id = readl(regs + DMAC_ID);
  if (id !== DMAC_ID_VALUE) {
    dev_err(dev, `not a dmac: ID reads 0x${id.toString(16)}`);
    return -ENODEV;
  }
  const caps = readl(regs + DMAC_CAPS);
  let err = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
  if (err) {
    dev_err(dev, "no usable DMA configuration");
    return err;
  }
  writel(DMAC_CTRL_RESET, regs + DMAC_CTRL);
  writel(DMAC_CTRL_ENABLE, regs + DMAC_CTRL);
  const pool = dmam_pool_create("simdmac-desc", dev, HW_DESC_SIZE, HW_DESC_ALIGN, 0);
  if (!pool) return -ENOMEM;
  const dd = simdmac_dma_device(dev);
  const sd: simdmac_device = { dev, regs, phys_base: res.start, nports: CAPS_PPORTS(caps), pool, dd, chans: [] };
  for (let i = 0; i < CAPS_CHANNELS(caps); i++) {
    const chan = new dma_chan();
    chan.device = dd;
    const sc = new simdmac_chan(sd, chan, i, regs + DMAC_CH(i));
    chan.private = sc;
    tasklet_setup(sc.task, () => simdmac_tasklet(sc));
    dd.channels.push(chan);
    sd.chans.push(sc);
  }
  err = devm_request_irq(dev, irq, simdmac_irq, 0, DRV_NAME, sd);
  if (err) {
    dev_err(dev, `cannot request IRQ ${irq}`);
    writel(0, regs + DMAC_CTRL);
    return err;
  }
  err = dmaenginem_async_device_register(dd);
  if (err) {
    writel(0, regs + DMAC_CTRL);
    return err;
  }
  platform_set_drvdata(pdev, sd);
  dev_info(dev, `dmac: ${sd.chans.length} channels, ${sd.nports} peripheral ports, IRQ ${irq}`);
  return 0;
}

function simdmac_remove(pdev: platform_device): void {
  const sd = platform_get_drvdata<simdmac_device>(pdev);
  for (const sc of sd.chans) {
    writel(CTRL_ABORT, sc.regs + CH_CTRL);
    tasklet_kill(sc.task);
    for (const d of [...(sc.active ? [sc.active] : []), ...sc.issued, ...sc.submitted, ...sc.terminated]) simdmac_desc_free(sc, d);
    sc.active = null;
    sc.issued = [];
    sc.submitted = [];
    sc.terminated = [];
  }
  writel(0, sd.regs + DMAC_CTRL);
  // devres: dma_async_device_unregister, free_irq, dma_pool_destroy, iounmap, release region.
}

export const simdmac_driver: platform_driver = {
  driver: { name: DRV_NAME },
  probe: simdmac_probe,
  remove: simdmac_remove,
};

/** module_platform_driver(simdmac_driver) */
export function simdmac_init(): Promise<number> {
  return platform_driver_register(simdmac_driver);
}

export function simdmac_exit(): Promise<void> {
  return platform_driver_unregister(simdmac_driver);
}
