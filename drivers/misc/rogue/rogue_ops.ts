/**
 * rogue operations: the legitimate transfers a user of the driver asks for (in Linux these
 * would be the NIC's transmit and receive paths). All run in process context and sleep on the
 * handler's completion.
 *
 * Buffer ownership (reference §1.2): the transmit and receive buffers stay mapped while the
 * driver is bound and belong to the device between operations. The CPU takes one back with
 * dma_sync_single_for_cpu before touching it and gives it back with dma_sync_single_for_device.
 */

import { dma_sync_single_for_cpu, dma_sync_single_for_device, DMA_FROM_DEVICE, DMA_TO_DEVICE } from "../../../kernel/include/dma-mapping.ts";
import { reinit_completion, wait_for_completion_timeout } from "../../../kernel/include/completion.ts";
import { msecs_to_jiffies } from "../../../kernel/include/timer.ts";
import { readb, writeb, writel, writeq } from "../../../kernel/include/io.ts";
import { copy_from_user, copy_to_user } from "../../../kernel/include/string.ts";
import { dev_err } from "../../../kernel/include/printk.ts";
import { EINVAL, EIO, ETIMEDOUT } from "../../../kernel/include/errno.ts";
import type { dma_addr_t } from "../../../kernel/include/types.ts";
import type { rogue_device } from "./rogue_main.ts";
import {
  DMA_CMD_GO, DMA_CMD_TO_MEM, IRQ_ERROR, REG_DMA_CMD, REG_DMA_DST, REG_DMA_LEN, REG_DMA_SRC, ROGUE_BAR_BUF, ROGUE_BUF_SIZE,
} from "./rogue_hw.ts";

const ROGUE_TIMEOUT_MS = 10;

/**
 * rogue_dma - run one engine transfer between bus address @bus and the device buffer
 * @rg: the device
 * @bus: bus (DMA) address of memory the device may use
 * @len: bytes, 0..4096
 * @to_mem: true: device buffer -> memory; false: memory -> device buffer
 * Context: process; sleeps until the DONE or ERROR interrupt.
 * Returns: 0, -EIO when the device reported a refused DMA (an IOMMU fault, say), -ETIMEDOUT.
 */
export async function rogue_dma(rg: rogue_device, bus: dma_addr_t, len: number, to_mem: boolean): Promise<number> {
  if (len < 0 || len > ROGUE_BUF_SIZE) return -EINVAL;
  reinit_completion(rg.done);
  writeq(to_mem ? 0 : bus, rg.bar + REG_DMA_SRC);
  writeq(to_mem ? bus : 0, rg.bar + REG_DMA_DST);
  writel(len, rg.bar + REG_DMA_LEN);
  writel(DMA_CMD_GO | (to_mem ? DMA_CMD_TO_MEM : 0), rg.bar + REG_DMA_CMD);
  if (!(await wait_for_completion_timeout(rg.done, msecs_to_jiffies(ROGUE_TIMEOUT_MS)))) {
    dev_err(rg.dev, "DMA timed out");
    return -ETIMEDOUT;
  }
  if (rg.last_status & IRQ_ERROR) {
    dev_err(rg.dev, `DMA ${to_mem ? "to" : "from"} 0x${bus.toString(16)} refused by the bus`);
    return -EIO;
  }
  return 0;
}

/**
 * rogue_send - transmit: copy @data into the transmit buffer and let the device fetch it
 * Context: process; sleeps.
 * Returns: 0 or a negative errno (see rogue_dma).
 */
export async function rogue_send(rg: rogue_device, data: Uint8Array): Promise<number> {
  const len = data.length;
  if (len === 0 || len > ROGUE_BUF_SIZE) return -EINVAL;
  dma_sync_single_for_cpu(rg.dev, rg.tx_dma, ROGUE_BUF_SIZE, DMA_TO_DEVICE);
  copy_from_user(rg.tx_buf, data, len);
  dma_sync_single_for_device(rg.dev, rg.tx_dma, ROGUE_BUF_SIZE, DMA_TO_DEVICE);
  return rogue_dma(rg, rg.tx_dma, len, false);
}

export interface rogue_rx_result {
  readonly err: number;
  /** What arrived (empty on error). */
  readonly data: Uint8Array;
}

/**
 * rogue_receive - receive: let the device write @len bytes into the receive buffer, read them
 * Context: process; sleeps.
 * Returns: the bytes, or an errno with no data.
 */
export async function rogue_receive(rg: rogue_device, len: number): Promise<rogue_rx_result> {
  if (len <= 0 || len > ROGUE_BUF_SIZE) return { err: -EINVAL, data: new Uint8Array(0) };
  const err = await rogue_dma(rg, rg.rx_dma, len, true);
  if (err) return { err, data: new Uint8Array(0) };
  const out = new Uint8Array(len);
  dma_sync_single_for_cpu(rg.dev, rg.rx_dma, len, DMA_FROM_DEVICE);
  copy_to_user(out, rg.rx_buf, len);
  dma_sync_single_for_device(rg.dev, rg.rx_dma, len, DMA_FROM_DEVICE);
  return { err: 0, data: out };
}

/**
 * rogue_load - fill the device buffer through BAR0 (programmed I/O, no DMA)
 * Context: any.
 */
export function rogue_load(rg: rogue_device, data: Uint8Array): number {
  if (data.length > ROGUE_BUF_SIZE) return -EINVAL;
  for (let i = 0; i < data.length; i++) writeb(data[i]!, rg.bar + ROGUE_BAR_BUF + i);
  return 0;
}

/** rogue_peek - read @len bytes of the device buffer through BAR0. Context: any. */
export function rogue_peek(rg: rogue_device, len: number): Uint8Array {
  const out = new Uint8Array(Math.min(len, ROGUE_BUF_SIZE));
  for (let i = 0; i < out.length; i++) out[i] = readb(rg.bar + ROGUE_BAR_BUF + i);
  return out;
}

/**
 * rogue_buf_read - what the CPU finds in the transmit or receive buffer now
 * @rx: true for the receive buffer, false for the transmit buffer
 * Context: any. Takes the buffer back from the device for the read and hands it over again.
 */
export function rogue_buf_read(rg: rogue_device, rx: boolean, len: number): Uint8Array {
  const out = new Uint8Array(Math.min(len, ROGUE_BUF_SIZE));
  const dir = rx ? DMA_FROM_DEVICE : DMA_TO_DEVICE;
  const handle = rx ? rg.rx_dma : rg.tx_dma;
  dma_sync_single_for_cpu(rg.dev, handle, out.length, dir);
  copy_to_user(out, rx ? rg.rx_buf : rg.tx_buf, out.length);
  dma_sync_single_for_device(rg.dev, handle, out.length, dir);
  return out;
}

/** What scenarios ask the driver to do: its legitimate operations. */
export const rogue_ops = {
  dma: rogue_dma,
  send: rogue_send,
  receive: rogue_receive,
  load: rogue_load,
  peek: rogue_peek,
  buf_read: rogue_buf_read,
} as const;
