/**
 * cohdemo operations: two correct helpers and five classic coherence bugs (reference §13,
 * bugs 3, 4 and 5, a CPU that writes a buffer the device owns, and a partial sync that
 * misses the end of a packet). All run in process context
 * and sleep on the DMA interrupt.
 *
 * The edu engine copies between RAM and its 4 KiB buffer when a transfer completes, so a CPU
 * access between starting a transfer and its interrupt happens "during the transfer".
 */

import {
  dma_get_cache_alignment, dma_map_single, dma_mapping_error, dma_sync_single_for_cpu, dma_sync_single_range_for_cpu, dma_unmap_single, DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
} from "../../../kernel/include/dma-mapping.ts";
import { reinit_completion, wait_for_completion_timeout } from "../../../kernel/include/completion.ts";
import { msecs_to_jiffies } from "../../../kernel/include/timer.ts";
import { writeq } from "../../../kernel/include/io.ts";
import { kfree, kmalloc, kzalloc, GFP_KERNEL } from "../../../kernel/include/slab.ts";
import { copy_from_user, copy_to_user, kread32, kwrite32, memset } from "../../../kernel/include/string.ts";
import { dev_err } from "../../../kernel/include/printk.ts";
import { EINVAL, ENOMEM, ETIMEDOUT } from "../../../kernel/include/errno.ts";
import type { dma_addr_t } from "../../../kernel/include/types.ts";
import type { cohdemo_device } from "./cohdemo_main.ts";
import {
  COHDEMO_BUF_ADDR, COHDEMO_BUF_SIZE, DMA_CMD_IRQ, DMA_CMD_START, DMA_CMD_TO_RAM, REG_DMA_CMD, REG_DMA_COUNT, REG_DMA_DST, REG_DMA_SRC,
} from "./cohdemo_hw.ts";

const TIMEOUT_MS = 100;

/** Program and start one transfer between RAM at `bus` and the device buffer; does not wait. */
function cohdemo_dma_start(cd: cohdemo_device, bus: dma_addr_t, len: number, to_ram: boolean): void {
  reinit_completion(cd.dma_done);
  writeq(to_ram ? COHDEMO_BUF_ADDR : bus, cd.bar + REG_DMA_SRC);
  writeq(to_ram ? bus : COHDEMO_BUF_ADDR, cd.bar + REG_DMA_DST);
  writeq(len, cd.bar + REG_DMA_COUNT);
  writeq(DMA_CMD_START | DMA_CMD_IRQ | (to_ram ? DMA_CMD_TO_RAM : 0), cd.bar + REG_DMA_CMD);
}

/** Sleep until the transfer's interrupt. Returns 0 or -ETIMEDOUT. */
async function cohdemo_dma_wait(cd: cohdemo_device): Promise<number> {
  if (await wait_for_completion_timeout(cd.dma_done, msecs_to_jiffies(TIMEOUT_MS))) return 0;
  dev_err(cd.pdev.dev, "DMA timed out");
  return -ETIMEDOUT;
}

async function cohdemo_dma(cd: cohdemo_device, bus: dma_addr_t, len: number, to_ram: boolean): Promise<number> {
  cohdemo_dma_start(cd, bus, len, to_ram);
  return cohdemo_dma_wait(cd);
}

export interface cohdemo_result {
  readonly err: number;
  /** What the CPU read back (empty on error). */
  readonly data: Uint8Array;
}

const failed = (err: number): cohdemo_result => ({ err, data: new Uint8Array(0) });

/**
 * cohdemo_load - put `data` into the device buffer, correctly (filled, then mapped TO_DEVICE)
 * Context: process; sleeps. Returns: 0 or -errno.
 */
export async function cohdemo_load(cd: cohdemo_device, data: Uint8Array): Promise<number> {
  const dev = cd.pdev.dev;
  const len = data.length;
  if (len === 0 || len > COHDEMO_BUF_SIZE) return -EINVAL;
  const buf = kmalloc(len, GFP_KERNEL);
  if (!buf) return -ENOMEM;
  copy_from_user(buf, data, len);
  const h = dma_map_single(dev, buf, len, DMA_TO_DEVICE);
  let err = -ENOMEM;
  if (!dma_mapping_error(dev, h)) {
    err = await cohdemo_dma(cd, h, len, false);
    dma_unmap_single(dev, h, len, DMA_TO_DEVICE);
  }
  kfree(buf);
  return err;
}

/**
 * cohdemo_fetch - read `len` bytes of the device buffer, correctly (unmapped before reading)
 * Context: process; sleeps.
 */
export async function cohdemo_fetch(cd: cohdemo_device, len: number): Promise<cohdemo_result> {
  const dev = cd.pdev.dev;
  if (len === 0 || len > COHDEMO_BUF_SIZE) return failed(-EINVAL);
  const buf = kmalloc(len, GFP_KERNEL);
  if (!buf) return failed(-ENOMEM);
  const out = new Uint8Array(len);
  const h = dma_map_single(dev, buf, len, DMA_FROM_DEVICE);
  let err = -ENOMEM;
  if (!dma_mapping_error(dev, h)) {
    err = await cohdemo_dma(cd, h, len, true);
    dma_unmap_single(dev, h, len, DMA_FROM_DEVICE);
    if (!err) copy_to_user(out, buf, len);
  }
  kfree(buf);
  return err ? failed(err) : { err, data: out };
}

/**
 * cohdemo_rx_no_sync - receive `len` bytes, reading them before dma_sync_single_for_cpu()
 * (reference §13 bug 4). Context: process; sleeps.
 */
export async function cohdemo_rx_no_sync(cd: cohdemo_device, len: number): Promise<cohdemo_result> {
  const dev = cd.pdev.dev;
  const rx = kmalloc(len, GFP_KERNEL);
  if (!rx) return failed(-ENOMEM);
  const out = new Uint8Array(len);
  memset(rx, 0, len); // the CPU touched the buffer last: its lines are in the cache
  const h = dma_map_single(dev, rx, len, DMA_FROM_DEVICE);
  let err = -ENOMEM;
  if (!dma_mapping_error(dev, h)) {
    err = await cohdemo_dma(cd, h, len, true);
    if (!err) copy_to_user(out, rx, len); // BUG: the device still owns rx; no sync_for_cpu
    dma_unmap_single(dev, h, len, DMA_FROM_DEVICE);
  }
  kfree(rx);
  return err ? failed(err) : { err, data: out };
}

export interface cohdemo_reuse_result {
  readonly err: number;
  /** What the device received after each rewrite. */
  readonly rounds: Uint8Array[];
}

/**
 * cohdemo_tx_reuse - send `a`, then reuse the same DMA_TO_DEVICE mapping for `b` and `c`
 * without dma_sync_single_for_device() (reference §13 bug 5). Round 1 rewrites the buffer
 * while the device owns it; round 2 takes ownership with dma_sync_single_for_cpu() but never
 * gives it back. After each round the device buffer is fetched to see what the device got.
 * Context: process; sleeps.
 */
export async function cohdemo_tx_reuse(cd: cohdemo_device, a: Uint8Array, b: Uint8Array, c: Uint8Array): Promise<cohdemo_reuse_result> {
  const dev = cd.pdev.dev;
  const len = a.length;
  const rounds: Uint8Array[] = [];
  const tx = kmalloc(len, GFP_KERNEL);
  if (!tx) return { err: -ENOMEM, rounds };
  copy_from_user(tx, a, len);
  const h = dma_map_single(dev, tx, len, DMA_TO_DEVICE);
  let err = -ENOMEM;
  out_free: {
    if (dma_mapping_error(dev, h)) break out_free;
    out_unmap: {
      err = await cohdemo_dma(cd, h, len, false);
      if (err) break out_unmap;
      copy_from_user(tx, b, len); // BUG: rewrites a buffer the device owns
      err = await cohdemo_dma(cd, h, len, false); // BUG: no dma_sync_single_for_device()
      const r1 = err ? failed(err) : await cohdemo_fetch(cd, len);
      if ((err = r1.err)) break out_unmap;
      rounds.push(r1.data);
      dma_sync_single_for_cpu(dev, h, len, DMA_TO_DEVICE);
      copy_from_user(tx, c, len);
      err = await cohdemo_dma(cd, h, len, false); // BUG: the CPU still owns tx
      const r2 = err ? failed(err) : await cohdemo_fetch(cd, len);
      err = r2.err;
      if (!err) rounds.push(r2.data);
    }
    dma_unmap_single(dev, h, len, DMA_TO_DEVICE);
  }
  kfree(tx);
  return { err, rounds };
}

/** struct cohdemo_msg: a small receive buffer followed by a counter, in one allocation. */
export const MSG_RX = 0;
export const MSG_RX_LEN = 48;
export const MSG_SEQ = 48;
export const MSG_SIZE = 64;

export interface cohdemo_msg_result extends cohdemo_result {
  /** The counter the CPU kept in the same structure. */
  readonly seq: number;
}

/**
 * cohdemo_rx_shared_line - receive into msg.rx while the CPU bumps msg.seq, which shares its
 * cache line (reference §13 bug 3): the buffer is not aligned to dma_get_cache_alignment().
 * Context: process; sleeps.
 */
export async function cohdemo_rx_shared_line(cd: cohdemo_device): Promise<cohdemo_msg_result> {
  const dev = cd.pdev.dev;
  const msg = kzalloc(MSG_SIZE, GFP_KERNEL);
  if (!msg) return { ...failed(-ENOMEM), seq: 0 };
  const out = new Uint8Array(MSG_RX_LEN);
  const h = dma_map_single(dev, msg + MSG_RX, MSG_RX_LEN, DMA_FROM_DEVICE);
  let err = -ENOMEM;
  if (!dma_mapping_error(dev, h)) {
    cohdemo_dma_start(cd, h, MSG_RX_LEN, true);
    kwrite32(msg + MSG_SEQ, kread32(msg + MSG_SEQ) + 1); // BUG: dirties the line the device is filling
    err = await cohdemo_dma_wait(cd);
    dma_unmap_single(dev, h, MSG_RX_LEN, DMA_FROM_DEVICE);
    if (!err) copy_to_user(out, msg + MSG_RX, MSG_RX_LEN);
  }
  const seq = kread32(msg + MSG_SEQ);
  kfree(msg);
  return err ? { ...failed(err), seq } : { err, data: out, seq };
}

export const SENTINEL = 0x5a5a5a5a;

export interface cohdemo_sentinel_result extends cohdemo_result {
  /** The driver saw the device overwrite its sentinel. */
  readonly tail_seen: boolean;
}

/**
 * cohdemo_rx_sentinel - receive `len` bytes, having planted a sentinel in the last 4 bytes of
 * the mapped buffer to see whether the device wrote that far; checks it after the interrupt,
 * before unmapping. Writes and reads a buffer the device owns.
 * Context: process; sleeps.
 */
export async function cohdemo_rx_sentinel(cd: cohdemo_device, len: number): Promise<cohdemo_sentinel_result> {
  const dev = cd.pdev.dev;
  const rx = kmalloc(len, GFP_KERNEL);
  if (!rx) return { ...failed(-ENOMEM), tail_seen: false };
  const out = new Uint8Array(len);
  let tail_seen = false;
  memset(rx, 0, len);
  const h = dma_map_single(dev, rx, len, DMA_FROM_DEVICE);
  let err = -ENOMEM;
  if (!dma_mapping_error(dev, h)) {
    kwrite32(rx + len - 4, SENTINEL); // BUG: a CPU store into a buffer the device owns
    err = await cohdemo_dma(cd, h, len, true);
    if (!err) tail_seen = kread32(rx + len - 4) !== SENTINEL; // BUG: reads it, still device-owned
    dma_unmap_single(dev, h, len, DMA_FROM_DEVICE);
    if (!err) copy_to_user(out, rx, len);
  }
  kfree(rx);
  return err ? { ...failed(err), tail_seen } : { err, data: out, tail_seen };
}

/** One packet of cohdemo_rx_recycle: what the device sends, and how many bytes the driver syncs. */
export interface cohdemo_packet {
  readonly data: Uint8Array;
  /** Bytes synced for the CPU from the start of the buffer (rounded up to the cache alignment). */
  readonly sync: number;
}

/** The size of cohdemo_rx_recycle's long-lived receive buffer. */
export const RECYCLE_BUF_SIZE = 2048;

/**
 * cohdemo_rx_recycle - receive `packets` into one long-lived DMA_FROM_DEVICE buffer, the way
 * NIC drivers recycle RX buffers: for each, the device writes the packet, the driver syncs only
 * `sync` bytes for the CPU (dma_sync_single_range_for_cpu: the whole buffer would cost a cache
 * walk per packet), copies the packet out, and hands the buffer back to the device without
 * dma_sync_single_for_device (allowed: the CPU only read it). Correct while `sync` covers the
 * packet; a packet longer than the bytes synced is read partly from stale cache (the bug).
 * Context: process; sleeps. Returns: what the driver read of each packet.
 */
export async function cohdemo_rx_recycle(cd: cohdemo_device, packets: readonly cohdemo_packet[]): Promise<cohdemo_reuse_result> {
  const dev = cd.pdev.dev;
  const rounds: Uint8Array[] = [];
  const align = dma_get_cache_alignment();
  const rx = kmalloc(RECYCLE_BUF_SIZE, GFP_KERNEL);
  if (!rx) return { err: -ENOMEM, rounds };
  memset(rx, 0, RECYCLE_BUF_SIZE); // the CPU touched the buffer last: its lines are in the cache
  const h = dma_map_single(dev, rx, RECYCLE_BUF_SIZE, DMA_FROM_DEVICE);
  let err = -ENOMEM;
  if (!dma_mapping_error(dev, h)) {
    err = 0;
    for (const p of packets) {
      const len = p.data.length;
      if (len === 0 || len > RECYCLE_BUF_SIZE) {
        err = -EINVAL;
        break;
      }
      if ((err = await cohdemo_load(cd, p.data))) break;
      if ((err = await cohdemo_dma(cd, h, len, true))) break;
      const synced = Math.min(RECYCLE_BUF_SIZE, Math.ceil(p.sync / align) * align);
      dma_sync_single_range_for_cpu(dev, h, 0, synced, DMA_FROM_DEVICE);
      const out = new Uint8Array(len);
      copy_to_user(out, rx, len); // BUG when len > synced: the rest is still the device's
      rounds.push(out);
    }
    dma_unmap_single(dev, h, RECYCLE_BUF_SIZE, DMA_FROM_DEVICE);
  }
  kfree(rx);
  return { err, rounds };
}
