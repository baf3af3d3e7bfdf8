/**
 * iommu_demo: a small driver for the rogue DMA function (hw/dev/rogue/SPEC.md) that maps
 * buffers for it in the ways the iommu-* gap scenarios need: through the DMA API
 * (dma_map_single: an IOVA from the device's default domain), or through the IOMMU API
 * directly, VFIO style (an UNMANAGED paging domain it allocates, attaches and maps itself).
 *
 * Theory of operation
 * - probe enables the function, maps BAR0, checks the ID, sets a 64-bit DMA mask and turns on
 *   bus mastering. No interrupt: the device's own DMA engine is never started; what the
 *   scenarios show is what the device's firmware does with the addresses it was given.
 * - Each operation below is one step of a driver's life with a buffer. One of them carries a
 *   bug on purpose (iommu_demo_domain_unmap_nosync, marked BUG) and says what it forgot.
 * - remove gives an UNMANAGED domain back (detach, free) if the caller left one attached.
 */

import {
  pci_get_drvdata, pci_set_drvdata, pci_set_master, pcim_enable_device, pcim_iomap_regions, pcim_iomap_table,
  type pci_dev, type pci_device_id, type pci_driver,
} from "../../../kernel/include/pci.ts";
import {
  dma_map_single, dma_mapping_error, dma_set_mask_and_coherent, dma_unmap_single, DMA_BIT_MASK, type dma_addr_t,
  type dma_data_direction,
} from "../../../kernel/include/dma-mapping.ts";
import {
  iommu_attach_device, iommu_detach_device, iommu_domain_free, iommu_iotlb_gather_init, iommu_map, iommu_paging_domain_alloc,
  iommu_unmap, iommu_unmap_fast, IOMMU_READ, IOMMU_WRITE, type iommu_domain,
} from "../../../kernel/include/iommu.ts";
import { readl } from "../../../kernel/include/io.ts";
import { virt_to_phys, GFP_KERNEL } from "../../../kernel/include/slab.ts";
import { dev_err, dev_info } from "../../../kernel/include/printk.ts";
import { ENODEV, IS_ERR, PTR_ERR } from "../../../kernel/include/errno.ts";
import type { device } from "../../../kernel/include/device.ts";
import type { iomem_t, vaddr_t } from "../../../kernel/include/types.ts";

export const DRV_NAME = "iommu_demo";

// From hw/dev/rogue/SPEC.md §1 and §3 (the driver keeps its own copy of the datasheet's numbers).
const ROGUE_VENDOR = 0x1234;
const ROGUE_DEVICE = 0xbad1;
const REG_ID = 0x00;
const ROGUE_ID_SIGNATURE = 0x52470001;

export interface iommu_demo_device {
  readonly pdev: pci_dev;
  readonly dev: device;
  readonly bar: iomem_t;
  /** The UNMANAGED domain the driver attached the device to, or null (default domain). */
  domain: iommu_domain | null;
}

/** Bound devices, in probe order. */
export const iommu_demo_devices: iommu_demo_device[] = [];

function iommu_demo_probe(pdev: pci_dev, _id: pci_device_id): number {
  let err = pcim_enable_device(pdev);
  if (err) return err;
  err = pcim_iomap_regions(pdev, 1 << 0, DRV_NAME);
  if (err) return err;
  const bar = pcim_iomap_table(pdev)[0];
  if (readl(bar + REG_ID) !== ROGUE_ID_SIGNATURE) {
    dev_err(pdev.dev, "unexpected ID register");
    return -ENODEV;
  }
  err = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(64));
  if (err) return err;
  pci_set_master(pdev);
  const id: iommu_demo_device = { pdev, dev: pdev.dev, bar, domain: null };
  pci_set_drvdata(pdev, id);
  iommu_demo_devices.push(id);
  return 0;
}

function iommu_demo_remove(pdev: pci_dev): void {
  const id = pci_get_drvdata<iommu_demo_device>(pdev);
  if (id.domain) iommu_demo_domain_exit(id);
  const i = iommu_demo_devices.indexOf(id);
  if (i >= 0) iommu_demo_devices.splice(i, 1);
}

// ------------------------------------------------------------------ through the DMA API

/**
 * iommu_demo_map - map @len bytes at @va for the device (dma_map_single)
 * Context: process context.
 * Returns: the bus address (an IOVA behind a translating IOMMU), or null when the map failed.
 */
export function iommu_demo_map(id: iommu_demo_device, va: vaddr_t, len: number, dir: dma_data_direction): dma_addr_t | null {
  const handle = dma_map_single(id.dev, va, len, dir);
  if (dma_mapping_error(id.dev, handle)) {
    dev_err(id.dev, `dma_map_single of ${len} bytes failed`);
    return null;
  }
  return handle;
}

/** iommu_demo_unmap - undo iommu_demo_map. Context: process context. */
export function iommu_demo_unmap(id: iommu_demo_device, handle: dma_addr_t, len: number, dir: dma_data_direction): void {
  dma_unmap_single(id.dev, handle, len, dir);
}

// ------------------------------------------------------------------ through the IOMMU API

/**
 * iommu_demo_domain_init - give the device an UNMANAGED domain of its own (VFIO style)
 * Context: process context.
 * Returns: 0, or -errno (-ENODEV when no translating IOMMU is in front of the device).
 */
export function iommu_demo_domain_init(id: iommu_demo_device): number {
  const domain = iommu_paging_domain_alloc(id.dev);
  if (IS_ERR(domain)) return PTR_ERR(domain);
  const d = domain;
  const err = iommu_attach_device(d, id.dev);
  if (err) {
    iommu_domain_free(d);
    return err;
  }
  id.domain = d;
  dev_info(id.dev, "attached to an UNMANAGED IOMMU domain");
  return 0;
}

/**
 * iommu_demo_domain_map - map the page-aligned @size bytes at @va to @iova, read and write
 * Context: process context. Returns: 0 or -errno (from iommu_map).
 */
export function iommu_demo_domain_map(id: iommu_demo_device, iova: number, va: vaddr_t, size: number): number {
  if (!id.domain) return -ENODEV;
  return iommu_map(id.domain, iova, virt_to_phys(va), size, IOMMU_READ | IOMMU_WRITE, GFP_KERNEL);
}

/**
 * iommu_demo_domain_unmap_nosync - unmap with the batched API and forget the sync
 * Context: process context. Returns: bytes unmapped.
 */
export function iommu_demo_domain_unmap_nosync(id: iommu_demo_device, iova: number, size: number): number {
  if (!id.domain) return 0;
  const gather = iommu_iotlb_gather_init();
  // BUG: iommu_unmap_fast() only clears the page table; without iommu_iotlb_sync(id.domain,
  // gather) the IOTLB keeps translating @iova to the old page, which the caller frees next.
  return iommu_unmap_fast(id.domain, iova, size, gather);
}

/**
 * iommu_demo_domain_unmap - unmap and invalidate (iommu_unmap): when it returns, the device
 * can no longer reach the pages. Context: process context. Returns: bytes unmapped.
 */
export function iommu_demo_domain_unmap(id: iommu_demo_device, iova: number, size: number): number {
  if (!id.domain) return 0;
  return iommu_unmap(id.domain, iova, size);
}

/** iommu_demo_domain_exit - back to the default domain, and free ours. Context: process context. */
export function iommu_demo_domain_exit(id: iommu_demo_device): void {
  const d = id.domain;
  if (!d) return;
  iommu_detach_device(d, id.dev);
  iommu_domain_free(d);
  id.domain = null;
}

export const iommu_demo_driver: pci_driver = {
  name: DRV_NAME,
  id_table: [{ vendor: ROGUE_VENDOR, device: ROGUE_DEVICE }],
  probe: iommu_demo_probe,
  remove: iommu_demo_remove,
};
