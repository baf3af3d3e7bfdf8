/**
 * The IOMMU model's interface types: what a DMA port needs from an IOMMU, the model's options,
 * the fault report observers see, and its statistics (hw/iommu/iommu.ts is the model).
 *
 * Kept apart from the model so that the DMA port and the kernel's platform layer name these
 * types without depending on the model's code, and the model file holds behaviour only.
 */

/** What a DMA port needs from an IOMMU (SPEC.md section 9). */
export interface DmaTranslator {
  /**
   * translate - physical address for a device access of `len` bytes at `iova`.
   * `[iova, iova + len)` must lie within one 4 KiB IOVA page (RangeError otherwise).
   * Returns: the physical address, or -1 when the access is aborted (already recorded).
   */
  translate(requesterId: number, iova: number, len: number, isWrite: boolean): number;
}

export interface IommuOptions {
  name?: string;
  /** IOTLB entries (default 64) and ways (default 4); entries must be a multiple of ways. */
  iotlbEntries?: number;
  iotlbWays?: number;
  /** Do the IOMMU's table reads snoop CPU caches? (default true) */
  coherentWalk?: boolean;
  /** Invalidation latency in ns (default 0: complete during the INV_CMD write). */
  invalidateNs?: number;
}

/** One aborted transaction, recorded or dropped (for observers and reports). */
export interface IommuFault {
  timeNs: number;
  requesterId: number;
  iova: number;
  isWrite: boolean;
  reason: number;
  /** The page was present: a permission fault. */
  pagePresent: boolean;
  /** Domain of the requester's context; 0 when it has none. */
  did: number;
  /** False when the fault log was full and the fault was dropped (overflow). */
  recorded: boolean;
}

export class IommuStats {
  translations = 0;
  hits = 0;
  misses = 0;
  walks = 0;
  walkReads = 0;
  contextReads = 0;
  /** Bytes the context and page-table reads took from memory (not device DMA: not in deviceReadBytes). */
  walkReadBytes = 0;
  contextHits = 0;
  pscHits = 0;
  faults = 0;
  faultsDropped = 0;
  invalidations = 0;
}
