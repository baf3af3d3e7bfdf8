/**
 * The right way, first: a round trip through the edu's buffer with scatter-gather mappings.
 *
 * Out: a three-entry sg_table over kmalloc buffers, filled by the CPU (sg_copy_from_buffer),
 * mapped with dma_map_sgtable (DMA_TO_DEVICE), one edu transfer per DMA segment
 * (for_each_sgtable_dma_sg with sg_dma_address/sg_dma_len, never the CPU view), unmapped with
 * dma_unmap_sgtable. Back: a two-entry array mapped with dma_map_sg (DMA_FROM_DEVICE); the
 * device is programmed over the returned count, dma_sync_sg_for_cpu and dma_unmap_sg take the
 * nents passed to map, and the CPU reads only after the sync.
 * Context: process; sleeps on the DMA interrupt.
 */

import {
  DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_sg, dma_map_sgtable, dma_sync_sg_for_cpu, dma_unmap_sg, dma_unmap_sgtable,
  sg_dma_address, sg_dma_len, type dma_addr_t,
} from "../../../kernel/include/dma-mapping.ts";
import {
  for_each_sg, for_each_sgtable_dma_sg, sg_alloc_table, sg_array, sg_copy_from_buffer, sg_copy_to_buffer, sg_free_table,
  sg_init_table, sg_set_buf, sg_table, type scatterlist,
} from "../../../kernel/include/scatterlist.ts";
import { reinit_completion, wait_for_completion_timeout } from "../../../kernel/include/completion.ts";
import { msecs_to_jiffies } from "../../../kernel/include/timer.ts";
import { writeq } from "../../../kernel/include/io.ts";
import { GFP_KERNEL, kfree, kmalloc } from "../../../kernel/include/slab.ts";
import { dev_err } from "../../../kernel/include/printk.ts";
import { EINVAL, EIO, ENOMEM, ETIMEDOUT } from "../../../kernel/include/errno.ts";
import type { vaddr_t } from "../../../kernel/include/types.ts";
import type { dmatour_device } from "./dmatour_main.ts";
import {
  DMA_CMD_IRQ, DMA_CMD_START, DMA_CMD_TO_RAM, EDU_BUF_ADDR, EDU_BUF_SIZE, REG_DMA_CMD, REG_DMA_COUNT, REG_DMA_DST,
  REG_DMA_SRC,
} from "./dmatour_hw.ts";

/** One edu transfer between @bus and the edu buffer at @off; waits for the interrupt. */
async function dmatour_xfer(t: dmatour_device, bus: dma_addr_t, off: number, len: number, to_ram: boolean): Promise<number> {
  reinit_completion(t.dma_done);
  writeq(to_ram ? EDU_BUF_ADDR + off : bus, t.bar + REG_DMA_SRC);
  writeq(to_ram ? bus : EDU_BUF_ADDR + off, t.bar + REG_DMA_DST);
  writeq(len, t.bar + REG_DMA_COUNT);
  writeq(DMA_CMD_START | DMA_CMD_IRQ | (to_ram ? DMA_CMD_TO_RAM : 0), t.bar + REG_DMA_CMD);
  if (!(await wait_for_completion_timeout(t.dma_done, msecs_to_jiffies(100)))) {
    dev_err(t.dev, "DMA timed out");
    return -ETIMEDOUT;
  }
  return 0;
}

/** Fill @n entries from @sgl with fresh kmalloc buffers of @sizes. Returns them, or null. */
function dmatour_fill(sgl: scatterlist, sizes: readonly number[]): vaddr_t[] | null {
  const bufs: vaddr_t[] = [];
  for (const [sg, i] of for_each_sg(sgl, sizes.length)) {
    const b = kmalloc(sizes[i], GFP_KERNEL);
    if (!b) {
      bufs.forEach(kfree);
      return null;
    }
    bufs.push(b);
    sg_set_buf(sg, b, sizes[i]);
  }
  return bufs;
}

/** The way out: CPU fills, map, device reads each segment into its buffer, unmap. */
async function dmatour_sg_out(t: dmatour_device, data: Uint8Array, sizes: readonly number[]): Promise<number> {
  const sgt = new sg_table();
  let err = sg_alloc_table(sgt, sizes.length, GFP_KERNEL);
  if (err) return err;
  const bufs = dmatour_fill(sgt.sgl!, sizes);
  out_free_table: {
    if (!bufs) {
      err = -ENOMEM;
      break out_free_table;
    }
    sg_copy_from_buffer(sgt.sgl!, sgt.orig_nents, data, data.length);
    err = dma_map_sgtable(t.dev, sgt, DMA_TO_DEVICE, 0);
    if (!err) {
      let off = 0;
      for (const [sg] of for_each_sgtable_dma_sg(sgt)) {
        err = await dmatour_xfer(t, sg_dma_address(sg), off, sg_dma_len(sg), false);
        if (err) break;
        off += sg_dma_len(sg);
      }
      dma_unmap_sgtable(t.dev, sgt, DMA_TO_DEVICE, 0);
    }
    bufs.forEach(kfree);
  }
  sg_free_table(sgt);
  return err;
}

/** The way back: map, device writes each segment, sync for the CPU, CPU reads, unmap. */
async function dmatour_sg_in(t: dmatour_device, out: Uint8Array, sizes: readonly number[]): Promise<number> {
  const sg = sg_array(sizes.length);
  sg_init_table(sg, sizes.length);
  const bufs = dmatour_fill(sg[0], sizes);
  if (!bufs) return -ENOMEM;
  let err = 0;
  const nents = sizes.length;
  const count = dma_map_sg(t.dev, sg, nents, DMA_FROM_DEVICE);
  if (!count) err = -EIO;
  else {
    let off = 0;
    for (const [s] of for_each_sg(sg, count)) {
      err = await dmatour_xfer(t, sg_dma_address(s), off, sg_dma_len(s), true);
      if (err) break;
      off += sg_dma_len(s);
    }
    if (!err) {
      dma_sync_sg_for_cpu(t.dev, sg, nents, DMA_FROM_DEVICE);
      sg_copy_to_buffer(sg, nents, out, out.length);
    }
    dma_unmap_sg(t.dev, sg, nents, DMA_FROM_DEVICE);
  }
  bufs.forEach(kfree);
  return err;
}

export interface dmatour_sg_result {
  readonly err: number;
  readonly data: Uint8Array;
}

/**
 * dmatour_sg_roundtrip - send @data to the edu through a 3-entry sg table and read it back
 * through a 2-entry sg list
 * Context: process; sleeps.
 * Returns: err 0 and the bytes that came back, or a negative errno.
 */
export async function dmatour_sg_roundtrip(t: dmatour_device, data: Uint8Array): Promise<dmatour_sg_result> {
  const len = data.length;
  if (len < 8 || len > EDU_BUF_SIZE) return { err: -EINVAL, data: new Uint8Array(0) };
  const a = Math.floor(len / 4);
  const out = new Uint8Array(len);
  let err = await dmatour_sg_out(t, data, [a, Math.floor(len / 2), len - a - Math.floor(len / 2)]);
  if (!err) err = await dmatour_sg_in(t, out, [Math.floor(len / 3), len - Math.floor(len / 3)]);
  return { err, data: err ? new Uint8Array(0) : out };
}
