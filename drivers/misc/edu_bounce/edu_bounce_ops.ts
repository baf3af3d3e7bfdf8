/**
 * edu_bounce operations: what an upper layer asks of the driver, on buffers it owns (kernel
 * virtual addresses of linear-map memory, wherever in RAM they are). All run in process
 * context and sleep on the DMA interrupt.
 *
 * Ownership (reference §1.2): a mapped buffer belongs to the device until
 * dma_sync_single_for_cpu() or dma_unmap_single() hands it back; the CPU writes a buffer only
 * while it owns it and hands it over again with dma_sync_single_for_device(). Every mapping is
 * checked with dma_mapping_error(): a bounce pool can be full, and that is not a bug but a
 * condition to handle (the TX ring stops filling and sends what it has).
 */

import {
  dma_map_single, dma_mapping_error, dma_sync_single_for_cpu, dma_sync_single_for_device,
  dma_sync_single_range_for_cpu, dma_unmap_single, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE,
} from "../../../kernel/include/dma-mapping.ts";
import { reinit_completion, wait_for_completion_timeout } from "../../../kernel/include/completion.ts";
import { msecs_to_jiffies } from "../../../kernel/include/timer.ts";
import { writeq } from "../../../kernel/include/io.ts";
import { copy_from_user, copy_to_user } from "../../../kernel/include/string.ts";
import { dev_err, dev_warn } from "../../../kernel/include/printk.ts";
import { EINVAL, ENOMEM, ETIMEDOUT } from "../../../kernel/include/errno.ts";
import type { dma_addr_t, vaddr_t } from "../../../kernel/include/types.ts";
import type { edu_bounce_device } from "./edu_bounce_main.ts";
import {
  DMA_CMD_IRQ, DMA_CMD_START, DMA_CMD_TO_RAM, EBOUNCE_BUF_ADDR, EBOUNCE_BUF_SIZE, REG_DMA_CMD, REG_DMA_COUNT,
  REG_DMA_DST, REG_DMA_SRC,
} from "./edu_bounce_hw.ts";

const TIMEOUT_MS = 100;

/** Deliberate bugs for tests (module parameters). */
export const edu_bounce_bugs = {
  /** edu_bounce_receive forgets dma_unmap_single (a mapping leak, slots included). */
  leak_rx_mapping: false,
};

/** One transfer of @len (<= 4 KiB) bytes between bus address @bus and the engine's buffer. */
async function transfer(eb: edu_bounce_device, bus: number, len: number, to_ram: boolean): Promise<number> {
  reinit_completion(eb.dma_done);
  writeq(to_ram ? EBOUNCE_BUF_ADDR : bus, eb.bar + REG_DMA_SRC);
  writeq(to_ram ? bus : EBOUNCE_BUF_ADDR, eb.bar + REG_DMA_DST);
  writeq(len, eb.bar + REG_DMA_COUNT);
  writeq(DMA_CMD_START | DMA_CMD_IRQ | (to_ram ? DMA_CMD_TO_RAM : 0), eb.bar + REG_DMA_CMD);
  if (!(await wait_for_completion_timeout(eb.dma_done, msecs_to_jiffies(TIMEOUT_MS)))) {
    dev_err(eb.pdev.dev, "DMA timed out");
    return -ETIMEDOUT;
  }
  return 0;
}

/**
 * edu_bounce_send - the device reads @len (<= 4 KiB) bytes at @buf into its buffer
 * Context: process; sleeps.
 * Returns: 0, -EINVAL, -ENOMEM (mapping failed) or -ETIMEDOUT.
 */
export async function edu_bounce_send(eb: edu_bounce_device, buf: vaddr_t, len: number): Promise<number> {
  const dev = eb.pdev.dev;
  if (len <= 0 || len > EBOUNCE_BUF_SIZE) return -EINVAL;
  const h = dma_map_single(dev, buf, len, DMA_TO_DEVICE);
  if (dma_mapping_error(dev, h)) return -ENOMEM;
  const err = await transfer(eb, h, len, false);
  dma_unmap_single(dev, h, len, DMA_TO_DEVICE);
  return err;
}

/**
 * edu_bounce_receive - the device writes its buffer's first @len bytes to @buf; the CPU
 * looks at the first word (after dma_sync_single_for_cpu, as an RX path peeks at a header)
 * before unmapping.
 * Context: process; sleeps.
 * Returns: {err, header}.
 */
export async function edu_bounce_receive(eb: edu_bounce_device, buf: vaddr_t, len: number): Promise<{ err: number; header: number }> {
  const dev = eb.pdev.dev;
  if (len < 4 || len > EBOUNCE_BUF_SIZE) return { err: -EINVAL, header: 0 };
  const h = dma_map_single(dev, buf, len, DMA_FROM_DEVICE);
  if (dma_mapping_error(dev, h)) return { err: -ENOMEM, header: 0 };
  const err = await transfer(eb, h, len, true);
  let header = 0;
  if (!err) {
    dma_sync_single_for_cpu(dev, h, len, DMA_FROM_DEVICE);
    const word = new Uint8Array(4);
    copy_to_user(word, buf, 4);
    header = new DataView(word.buffer).getUint32(0, true);
  }
  if (!edu_bounce_bugs.leak_rx_mapping) dma_unmap_single(dev, h, len, DMA_FROM_DEVICE);
  return { err, header };
}

export interface bidi_result {
  readonly err: number;
  /** After the first pass the second half equalled the first. */
  readonly first_pass_ok: boolean;
  /** The second half after the second pass (the inverted first half, if all went well). */
  readonly data: Uint8Array;
}

/**
 * edu_bounce_bidi - two passes through one DMA_BIDIRECTIONAL mapping of 2 x @half bytes: the
 * device copies the first half into the second; the CPU checks it, inverts the first half and
 * hands the buffer back; the device copies again; the CPU syncs just the second half and
 * reads it.
 * Context: process; sleeps.
 */
export async function edu_bounce_bidi(eb: edu_bounce_device, buf: vaddr_t, half: number): Promise<bidi_result> {
  const dev = eb.pdev.dev;
  const fail = (err: number): bidi_result => ({ err, first_pass_ok: false, data: new Uint8Array(0) });
  if (half <= 0 || half > EBOUNCE_BUF_SIZE) return fail(-EINVAL);
  const size = 2 * half;
  const h = dma_map_single(dev, buf, size, DMA_BIDIRECTIONAL);
  if (dma_mapping_error(dev, h)) return fail(-ENOMEM);
  const pass = async (): Promise<number> => (await transfer(eb, h, half, false)) || (await transfer(eb, (h + half) as dma_addr_t, half, true));
  let err = await pass();
  let first_pass_ok = false;
  const data = new Uint8Array(half);
  if (!err) {
    dma_sync_single_for_cpu(dev, h, size, DMA_BIDIRECTIONAL);
    const a = new Uint8Array(half);
    const b = new Uint8Array(half);
    copy_to_user(a, buf, half);
    copy_to_user(b, buf + half, half);
    first_pass_ok = a.every((v, i) => v === b[i]);
    for (let i = 0; i < half; i++) a[i] ^= 0xff;
    copy_from_user(buf, a, half);
    dma_sync_single_for_device(dev, h, size, DMA_BIDIRECTIONAL);
    err = await pass();
    if (!err) {
      dma_sync_single_range_for_cpu(dev, h, half, half, DMA_BIDIRECTIONAL);
      copy_to_user(data, buf + half, half);
    }
  }
  dma_unmap_single(dev, h, size, DMA_BIDIRECTIONAL);
  return { err, first_pass_ok, data: err ? new Uint8Array(0) : data };
}

/**
 * edu_bounce_tx_ring - fill a TX ring with @bufs (each @len bytes), as far as mappings
 * succeed, let the device read every mapped buffer (4 KiB at a time), then unmap them all.
 * A mapping failure is not an error: the ring stops there and the caller resubmits the rest
 * once these are done (a network driver would stop its queue).
 * Context: process; sleeps.
 * Returns: {err, sent}: how many buffers of @bufs went out, from the front.
 */
export async function edu_bounce_tx_ring(eb: edu_bounce_device, bufs: readonly vaddr_t[], len: number): Promise<{ err: number; sent: number }> {
  const dev = eb.pdev.dev;
  if (len <= 0 || len > eb.max_mapping) return { err: -EINVAL, sent: 0 };
  const handles: dma_addr_t[] = [];
  for (const buf of bufs) {
    const h = dma_map_single(dev, buf, len, DMA_TO_DEVICE);
    if (dma_mapping_error(dev, h)) {
      dev_warn(dev, `TX ring: ${handles.length} of ${bufs.length} buffers mapped, the rest wait for the next round`);
      break;
    }
    handles.push(h);
  }
  let err = 0;
  for (const h of handles) {
    for (let off = 0; off < len && !err; off += EBOUNCE_BUF_SIZE) {
      err = await transfer(eb, h + off, Math.min(EBOUNCE_BUF_SIZE, len - off), false);
    }
  }
  for (const h of handles) dma_unmap_single(dev, h, len, DMA_TO_DEVICE);
  if (handles.length === 0 && !err) err = -ENOMEM;
  return { err, sent: err ? 0 : handles.length };
}
