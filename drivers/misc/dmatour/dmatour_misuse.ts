/**
 * The tour: each step commits one DMA-API mistake, once, and otherwise cleans up after itself
 * (every buffer freed, every mapping it can undo undone), so each step produces exactly one
 * dma-debug finding and the next step starts from a clean slate. The mistake of each step is
 * marked BUG; the rest is how the call should look. None of the steps touches a buffer the
 * device owns or starts a transfer, so the coherence sanitizer has nothing to add.
 * (The fifteenth class, mapping-leak, is committed by remove(): see dmatour_main.ts.)
 * Context: process.
 */

import {
  DMA_BIT_MASK, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_addr_holder, dma_alloc_coherent, dma_free_coherent, dma_map_sg,
  dma_map_single, dma_mapping_error, dma_set_mask, dma_sync_single_for_cpu, dma_sync_single_for_device, dma_unmap_page,
  dma_unmap_sg, dma_unmap_single,
} from "../../../kernel/include/dma-mapping.ts";
import { sg_alloc_table, sg_free_table, sg_set_buf, sg_table, for_each_sgtable_sg } from "../../../kernel/include/scatterlist.ts";
import { with_stack_buffer } from "../../../kernel/include/stack.ts";
import { __get_free_pages, free_pages, get_order, GFP_KERNEL, kfree, kmalloc, PAGE_SIZE, vfree, vmalloc } from "../../../kernel/include/slab.ts";
import { memset } from "../../../kernel/include/string.ts";
import { dev_info } from "../../../kernel/include/printk.ts";
import type { device } from "../../../kernel/include/device.ts";
import type { vaddr_t } from "../../../kernel/include/types.ts";
import { EDU_DMA_BITS } from "./dmatour_hw.ts";

/** A buffer the CPU has filled, ready to map (kmalloc memory, as DMA buffers should be). */
function tour_buf(size: number): vaddr_t {
  const b = kmalloc(size, GFP_KERNEL);
  if (b) memset(b, 0x5a, size);
  return b;
}

function unmap_not_mapped(dev: device): void {
  const b = tour_buf(512);
  const h = dma_map_single(dev, b, 512, DMA_TO_DEVICE);
  if (!dma_mapping_error(dev, h)) {
    dma_unmap_single(dev, h, 512, DMA_TO_DEVICE);
    dma_unmap_single(dev, h, 512, DMA_TO_DEVICE); // BUG: unmapped twice (an error path and the normal path both unmap)
  }
  kfree(b);
}

function unmap_wrong_size(dev: device): void {
  const b = tour_buf(512);
  const h = dma_map_single(dev, b, 512, DMA_TO_DEVICE);
  if (!dma_mapping_error(dev, h)) dma_unmap_single(dev, h, 256, DMA_TO_DEVICE); // BUG: the payload length, not the mapped length
  kfree(b);
}

function unmap_wrong_type(dev: device): void {
  const b = tour_buf(512);
  const h = dma_map_single(dev, b, 512, DMA_TO_DEVICE);
  if (!dma_mapping_error(dev, h)) dma_unmap_page(dev, h, 512, DMA_TO_DEVICE); // BUG: mapped with dma_map_single
  kfree(b);
}

function unmap_wrong_direction(dev: device): void {
  const b = tour_buf(512);
  const h = dma_map_single(dev, b, 512, DMA_FROM_DEVICE);
  if (!dma_mapping_error(dev, h)) dma_unmap_single(dev, h, 512, DMA_TO_DEVICE); // BUG: mapped DMA_FROM_DEVICE
  kfree(b);
}

function unmap_wrong_nents(dev: device): void {
  const sgt = new sg_table();
  if (sg_alloc_table(sgt, 4, GFP_KERNEL)) return;
  const bufs: vaddr_t[] = [];
  for (const [sg, i] of for_each_sgtable_sg(sgt)) {
    if (i === 3) break; // this request uses 3 of the table's 4 slots
    bufs.push(tour_buf(256));
    sg_set_buf(sg, bufs[i], 256);
  }
  if (dma_map_sg(dev, sgt.sgl!, 3, DMA_TO_DEVICE)) {
    dma_unmap_sg(dev, sgt.sgl!, sgt.orig_nents, DMA_TO_DEVICE); // BUG: mapped with nents 3
  }
  bufs.forEach(kfree);
  sg_free_table(sgt);
}

function free_coherent_mismatch(dev: device): void {
  const h = dma_addr_holder();
  const va = dma_alloc_coherent(dev, 1024, h, GFP_KERNEL);
  if (!va) return;
  dma_free_coherent(dev, 512, va, h.value); // BUG: allocated 1024 bytes (nothing is freed)
  dma_free_coherent(dev, 1024, va, h.value);
}

function mapping_error_not_checked(dev: device): void {
  const b = tour_buf(512);
  const h = dma_map_single(dev, b, 512, DMA_TO_DEVICE); // BUG: no dma_mapping_error(dev, h)
  dma_unmap_single(dev, h, 512, DMA_TO_DEVICE);
  kfree(b);
}

function sync_not_mapped(dev: device): void {
  const b = tour_buf(512);
  const h = dma_map_single(dev, b, 512, DMA_TO_DEVICE);
  if (!dma_mapping_error(dev, h)) {
    dma_unmap_single(dev, h, 512, DMA_TO_DEVICE);
    dma_sync_single_for_device(dev, h, 512, DMA_TO_DEVICE); // BUG: the mapping is gone
  }
  kfree(b);
}

function sync_out_of_range(dev: device): void {
  const b = tour_buf(1024);
  const h = dma_map_single(dev, b, 512, DMA_TO_DEVICE); // only the header half is mapped
  if (!dma_mapping_error(dev, h)) {
    dma_sync_single_for_device(dev, h, 1024, DMA_TO_DEVICE); // BUG: syncs the whole buffer
    dma_unmap_single(dev, h, 512, DMA_TO_DEVICE);
  }
  kfree(b);
}

function sync_wrong_direction(dev: device): void {
  const b = tour_buf(512);
  const h = dma_map_single(dev, b, 512, DMA_FROM_DEVICE);
  if (!dma_mapping_error(dev, h)) {
    dma_sync_single_for_cpu(dev, h, 512, DMA_TO_DEVICE); // BUG: copied from the TX path; mapped DMA_FROM_DEVICE
    dma_unmap_single(dev, h, 512, DMA_FROM_DEVICE);
  }
  kfree(b);
}

function map_stack_memory(dev: device): void {
  with_stack_buffer(64, (cmd) => {
    memset(cmd, 0, 64);
    const h = dma_map_single(dev, cmd, 64, DMA_TO_DEVICE); // BUG: a local variable
    if (!dma_mapping_error(dev, h)) dma_unmap_single(dev, h, 64, DMA_TO_DEVICE);
  });
}

function map_invalid_memory(dev: device): void {
  const v = vmalloc(2 * PAGE_SIZE);
  if (!v) return;
  const h = dma_map_single(dev, v, 2 * PAGE_SIZE, DMA_TO_DEVICE); // BUG: vmalloc memory (refused)
  if (!dma_mapping_error(dev, h)) dma_unmap_single(dev, h, 2 * PAGE_SIZE, DMA_TO_DEVICE);
  vfree(v);
}

function cacheline_overlap(dev: device): void {
  const b = tour_buf(256);
  const a = dma_map_single(dev, b, 256, DMA_FROM_DEVICE);
  if (!dma_mapping_error(dev, a)) {
    const again = dma_map_single(dev, b, 256, DMA_FROM_DEVICE); // BUG: re-posted while still mapped
    if (!dma_mapping_error(dev, again)) dma_unmap_single(dev, again, 256, DMA_FROM_DEVICE);
    dma_unmap_single(dev, a, 256, DMA_FROM_DEVICE);
  }
  kfree(b);
}

/**
 * The edu engine has 28 address lines; for this step the driver narrows its mask to 24 (as if
 * one buffer type could only use an ISA-era 16 MiB window) and maps a buffer from above it.
 * Not even the bounce pool can help: it lies above 16 MiB too.
 */
function dma_mask_exceeded(dev: device): void {
  const order = get_order(16 << 20);
  const big = __get_free_pages(GFP_KERNEL, order); // the allocator places 16 MiB blocks at 16 MiB or above
  if (!big) return;
  if (dma_set_mask(dev, DMA_BIT_MASK(24)) === 0) {
    const h = dma_map_single(dev, big, PAGE_SIZE, DMA_TO_DEVICE); // BUG: beyond the mask
    if (!dma_mapping_error(dev, h)) dma_unmap_single(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    dma_set_mask(dev, DMA_BIT_MASK(EDU_DMA_BITS));
  }
  free_pages(big, order);
}

export interface dmatour_step {
  /** The finding kind the step produces. */
  readonly kind: string;
  readonly what: string;
  readonly run: (dev: device) => void;
}

/** The steps, in tour order. */
export const DMATOUR_STEPS: readonly dmatour_step[] = [
  { kind: "unmap-not-mapped", what: "unmaps the same handle twice", run: unmap_not_mapped },
  { kind: "unmap-wrong-size", what: "unmaps with the payload length instead of the mapped length", run: unmap_wrong_size },
  { kind: "unmap-wrong-type", what: "undoes dma_map_single with dma_unmap_page", run: unmap_wrong_type },
  { kind: "unmap-wrong-direction", what: "unmaps a DMA_FROM_DEVICE mapping as DMA_TO_DEVICE", run: unmap_wrong_direction },
  { kind: "unmap-wrong-nents", what: "maps 3 sg entries and unmaps with the table's orig_nents (4)", run: unmap_wrong_nents },
  { kind: "free-coherent-mismatch", what: "frees coherent memory with the wrong size", run: free_coherent_mismatch },
  { kind: "mapping-error-not-checked", what: "never calls dma_mapping_error on a handle", run: mapping_error_not_checked },
  { kind: "sync-not-mapped", what: "syncs a handle after unmapping it", run: sync_not_mapped },
  { kind: "sync-out-of-range", what: "syncs more than it mapped", run: sync_out_of_range },
  { kind: "sync-wrong-direction", what: "syncs a DMA_FROM_DEVICE mapping as DMA_TO_DEVICE", run: sync_wrong_direction },
  { kind: "map-stack-memory", what: "maps a buffer on the kernel stack", run: map_stack_memory },
  { kind: "map-invalid-memory", what: "maps vmalloc memory with dma_map_single", run: map_invalid_memory },
  { kind: "cacheline-overlap", what: "maps an RX buffer again while it is still mapped", run: cacheline_overlap },
  { kind: "dma-mask-exceeded", what: "maps a buffer beyond its DMA mask", run: dma_mask_exceeded },
];

/**
 * dmatour_misuse_all - run every step once, logging what each one does wrong
 * Context: process.
 */
export function dmatour_misuse_all(dev: device): void {
  DMATOUR_STEPS.forEach((s, i) => {
    dev_info(dev, `tour step ${i + 1}: ${s.what} (expect ${s.kind})`);
    s.run(dev);
  });
}
