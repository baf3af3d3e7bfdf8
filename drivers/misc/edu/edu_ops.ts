/**
 * edu operations: what a user of the driver asks for (in Linux these would sit behind ioctls).
 * All run in process context and sleep on the interrupt's completion.
 *
 * Buffer ownership in the streaming round trip (reference §1.2): after dma_map_single the
 * device owns the buffer until dma_unmap_single / dma_sync_single_for_cpu hands it back; the
 * CPU must not read a DMA_FROM_DEVICE buffer before that, or it may see stale cache lines.
 */

import { dma_alloc_coherent, dma_free_coherent, dma_map_single, dma_mapping_error, dma_sync_single_for_cpu, dma_unmap_single, DMA_FROM_DEVICE, DMA_TO_DEVICE } from "../../../kernel/include/dma-mapping.ts";
import { reinit_completion, wait_for_completion_timeout } from "../../../kernel/include/completion.ts";
import { msecs_to_jiffies } from "../../../kernel/include/timer.ts";
import { readl, writel, writeq } from "../../../kernel/include/io.ts";
import { kfree, kmalloc, GFP_KERNEL } from "../../../kernel/include/slab.ts";
import { copy_from_user, copy_to_user, memset } from "../../../kernel/include/string.ts";
import { dev_err } from "../../../kernel/include/printk.ts";
import { EINVAL, EIO, ENOMEM, ETIMEDOUT } from "../../../kernel/include/errno.ts";
import type { dma_addr_t, vaddr_t } from "../../../kernel/include/types.ts";
import { edu_params, type edu_device } from "./edu_main.ts";
import {
  DMA_CMD_IRQ, DMA_CMD_START, DMA_CMD_TO_RAM, EDU_BUF_ADDR, EDU_BUF_SIZE, REG_DMA_CMD, REG_DMA_COUNT,
  REG_DMA_DST, REG_DMA_SRC, REG_FACTORIAL, REG_STATUS, STATUS_IRQ_FACT,
} from "./edu_hw.ts";

const EDU_TIMEOUT_MS = 100;

/**
 * edu_factorial - compute n! (mod 2^32) on the device, completion by interrupt
 * Context: process; sleeps.
 * Returns: the result (>= 0), or -ETIMEDOUT.
 */
export async function edu_factorial(edu: edu_device, n: number): Promise<number> {
  reinit_completion(edu.fact_done);
  writel(STATUS_IRQ_FACT, edu.bar + REG_STATUS);
  writel(n >>> 0, edu.bar + REG_FACTORIAL);
  if (!(await wait_for_completion_timeout(edu.fact_done, msecs_to_jiffies(EDU_TIMEOUT_MS)))) {
    dev_err(edu.dev, "factorial timed out");
    return -ETIMEDOUT;
  }
  return readl(edu.bar + REG_FACTORIAL);
}

/** One transfer between RAM at `bus` and the device buffer; waits for the DMA interrupt. */
async function edu_dma_transfer(edu: edu_device, bus: dma_addr_t, len: number, to_ram: boolean): Promise<number> {
  reinit_completion(edu.dma_done);
  writeq(to_ram ? EDU_BUF_ADDR : bus, edu.bar + REG_DMA_SRC);
  writeq(to_ram ? bus : EDU_BUF_ADDR, edu.bar + REG_DMA_DST);
  writeq(len, edu.bar + REG_DMA_COUNT);
  writeq(DMA_CMD_START | DMA_CMD_IRQ | (to_ram ? DMA_CMD_TO_RAM : 0), edu.bar + REG_DMA_CMD);
  if (!(await wait_for_completion_timeout(edu.dma_done, msecs_to_jiffies(EDU_TIMEOUT_MS)))) {
    dev_err(edu.dev, "DMA timed out");
    return -ETIMEDOUT;
  }
  return 0;
}

export interface edu_roundtrip_result {
  readonly err: number;
  /** What came back (empty on error). */
  readonly data: Uint8Array;
}

/**
 * edu_dma_roundtrip_single - send `data` to the device and read it back, streaming mappings
 * Context: process; sleeps.
 * The transmit buffer is mapped DMA_TO_DEVICE after the CPU filled it; the receive buffer is
 * zeroed by the CPU, mapped DMA_FROM_DEVICE, synced for the CPU and only then read.
 */
export async function edu_dma_roundtrip_single(edu: edu_device, data: Uint8Array): Promise<edu_roundtrip_result> {
  const len = data.length;
  const dev = edu.dev;
  if (len === 0 || len > EDU_BUF_SIZE) return { err: -EINVAL, data: new Uint8Array(0) };
  const tx: vaddr_t = kmalloc(len, GFP_KERNEL);
  const rx: vaddr_t = kmalloc(len, GFP_KERNEL);
  let err = 0;
  const out = new Uint8Array(len);
  if (!tx || !rx) {
    kfree(tx);
    kfree(rx);
    return { err: -ENOMEM, data: new Uint8Array(0) };
  }
  out_free: {
    copy_from_user(tx, data, len);
    const tx_dma = dma_map_single(dev, tx, len, DMA_TO_DEVICE);
    if (dma_mapping_error(dev, tx_dma)) {
      err = -ENOMEM;
      break out_free;
    }
    err = await edu_dma_transfer(edu, tx_dma, len, false);
    dma_unmap_single(dev, tx_dma, len, DMA_TO_DEVICE);
    if (err) break out_free;

    memset(rx, 0, len); // the CPU touches the buffer first: its lines are now in the cache
    const rx_dma = dma_map_single(dev, rx, len, DMA_FROM_DEVICE);
    if (dma_mapping_error(dev, rx_dma)) {
      err = -ENOMEM;
      break out_free;
    }
    err = await edu_dma_transfer(edu, rx_dma, len, true);
    if (!err) {
      if (!edu_params.skip_sync_for_cpu) dma_sync_single_for_cpu(dev, rx_dma, len, DMA_FROM_DEVICE);
      copy_to_user(out, rx, len);
    }
    dma_unmap_single(dev, rx_dma, len, DMA_FROM_DEVICE);
  }
  kfree(rx);
  kfree(tx);
  return { err, data: err ? new Uint8Array(0) : out };
}

/**
 * edu_dma_roundtrip_coherent - the same round trip through one dma_alloc_coherent buffer
 * Context: process; sleeps.
 * No syncs are needed: the CPU's mapping of coherent memory is uncached where DMA does not
 * snoop, so both sides always see the same bytes. The first half goes out, comes back into
 * the second half.
 */
export async function edu_dma_roundtrip_coherent(edu: edu_device, data: Uint8Array): Promise<edu_roundtrip_result> {
  const len = data.length;
  const dev = edu.dev;
  if (len === 0 || len > EDU_BUF_SIZE) return { err: -EINVAL, data: new Uint8Array(0) };
  const handle = { value: 0 as dma_addr_t };
  const buf = dma_alloc_coherent(dev, 2 * len, handle, GFP_KERNEL);
  if (!buf) return { err: -ENOMEM, data: new Uint8Array(0) };
  copy_from_user(buf, data, len);
  memset(buf + len, 0, len);
  let err = await edu_dma_transfer(edu, handle.value, len, false);
  if (!err) err = await edu_dma_transfer(edu, (handle.value + len) as dma_addr_t, len, true);
  const out = new Uint8Array(len);
  if (!err) copy_to_user(out, buf + len, len);
  dma_free_coherent(dev, 2 * len, buf, handle.value);
  return { err: err ? (err === -ETIMEDOUT ? err : -EIO) : 0, data: err ? new Uint8Array(0) : out };
}
