/**
 * struct device and struct page: the objects the driver model, the DMA layer and the IRQ
 * layer share. Drivers hold them; only the kernel changes their fields.
 */

import { DMA_BIT_MASK } from "./types.ts";

/** A managed resource: released in reverse order when probe fails or after remove. */
export interface devres_node {
  readonly name: string;
  readonly release: () => void;
}

export interface device_driver {
  readonly name: string;
}

export interface device_dma_parameters {
  max_segment_size: number;
  segment_boundary_mask: number;
  /**
   * Low address bits a bounce buffer must preserve (dma_set_min_align_mask, NVMe-style);
   * absent or 0: none.
   */
  min_align_mask?: number;
}

/** What the rest of the kernel may read of a device's IOMMU data (kernel/iommu owns the rest). */
export interface dev_iommu_handle {
  /** PCI bus << 8 | devfn, or the platform device's stream id. */
  readonly requesterId: number;
  /** The firmware marks the device external-facing / untrusted (strict, bounced). */
  readonly untrusted: boolean;
}

export class device {
  driver: device_driver | null = null;
  driver_data: unknown = null;
  /** Streaming DMA mask (highest reachable bus address); Linux's default is 32 bits. */
  dma_mask: number = DMA_BIT_MASK(32);
  coherent_dma_mask: number = DMA_BIT_MASK(32);
  /** Device DMA snoops CPU caches (from the machine: coherent profile or dma-coherent). */
  dma_coherent = false;
  dma_parms: device_dma_parameters = { max_segment_size: 65536, segment_boundary_mask: Number.MAX_SAFE_INTEGER };
  /**
   * Every streaming mapping of this device goes through a swiotlb bounce buffer (what a
   * restricted-dma-pool or an untrusted port imposes). Set by the platform, never by drivers.
   */
  dma_io_tlb_force = false;
  /** NUMA node the device is attached to. */
  numa_node = 0;
  /** Managed resources, in acquisition order. */
  readonly devres: devres_node[] = [];
  /** Set while the device is being torn down after a driver crash. */
  dead = false;
  /**
   * Per-device IOMMU data (struct dev_iommu): set by iommu_probe_device when an IOMMU that
   * translates is in front of the device, null otherwise. Owned by kernel/iommu.
   */
  iommu: dev_iommu_handle | null = null;

  constructor(
    readonly name: string,
    readonly bus: "pci" | "platform",
    readonly parent: device | null = null,
  ) {}
}

export function dev_name(dev: device): string {
  return dev.name;
}

export function dev_set_drvdata(dev: device, data: unknown): void {
  dev.driver_data = data;
}

export function dev_get_drvdata<T>(dev: device): T {
  return dev.driver_data as T;
}

/** struct page: one physical page frame. */
export interface page {
  readonly pfn: number;
}
