/**
 * simdmac descriptors: a dmaengine transaction (simdmac_desc) is a chain of 32-byte hardware
 * descriptors (SPEC.md section 4) carved from a coherent dma_pool, because the controller
 * fetches them by DMA. Prep calls build the chain; nothing runs until issue_pending.
 *
 * - memcpy: one descriptor per 16 MiB, the last one LAST.
 * - slave sg: one descriptor per mapped entry (split at 16 MiB), to or from the peripheral
 *   port named by the channel's dma_slave_config.
 * - cyclic: one descriptor per period, IRQ on each when the client wants callbacks, the last
 *   one's NEXT pointing back at the first: the controller loops until aborted.
 * Prep may run in interrupt context, so pool blocks are taken with GFP_ATOMIC.
 */

import {
  dma_async_tx_descriptor, DMA_DEV_TO_MEM, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT, type dma_chan,
  type dma_transfer_direction,
} from "../../../kernel/include/dmaengine.ts";
import { dma_pool_alloc, dma_pool_free, dma_addr_holder } from "../../../kernel/include/dmapool.ts";
import { for_each_sg, sg_dma_address, sg_dma_len, type sg_list } from "../../../kernel/include/scatterlist.ts";
import { kwrite32, kwrite64 } from "../../../kernel/include/string.ts";
import { GFP_ATOMIC } from "../../../kernel/include/slab.ts";
import { dev_err } from "../../../kernel/include/printk.ts";
import type { dma_addr_t, vaddr_t } from "../../../kernel/include/types.ts";
import {
  F_DEV2MEM, F_IRQ, F_LAST, F_MEM2DEV, F_MEM2MEM, HW_DST, HW_FLAGS, HW_LEN, HW_MAX_LEN, HW_NEXT, HW_SRC,
} from "./simdmac_hw.ts";
import { to_simdmac_chan, simdmac_tx_submit, type simdmac_chan } from "./simdmac_chan.ts";

/** One hardware descriptor: its CPU address, bus address and length. */
export interface simdmac_hw_desc {
  readonly vaddr: vaddr_t;
  readonly dma: dma_addr_t;
  len: number;
}

/** A prepared transaction: the dmaengine descriptor plus its hardware chain. */
export class simdmac_desc extends dma_async_tx_descriptor {
  readonly hw: simdmac_hw_desc[] = [];
  /** Bytes the whole chain moves (the ring, for cyclic). */
  total = 0;
  cyclic = false;
  /** CH_CTRL mode and burst bits, from the channel's configuration at prep time. */
  ctrl = 0;
}

/** A chain of @n hardware descriptors from the pool, or null (nothing kept) if the pool is dry. */
function desc_alloc(sc: simdmac_chan, n: number, flags: number): simdmac_desc | null {
  const d = new simdmac_desc(sc.chan);
  d.flags = flags;
  d.ctrl = sc.xfer_ctrl;
  d.tx_submit = simdmac_tx_submit;
  for (let i = 0; i < n; i++) {
    const h = dma_addr_holder();
    const vaddr = dma_pool_alloc(sc.sd.pool, GFP_ATOMIC, h);
    if (!vaddr) {
      simdmac_desc_free(sc, d);
      dev_err(sc.sd.dev, `${sc.chan._name}: out of descriptor memory`);
      return null;
    }
    d.hw.push({ vaddr, dma: h.value, len: 0 });
  }
  return d;
}

/** Give a chain's hardware descriptors back to the pool. Context: any. */
export function simdmac_desc_free(sc: simdmac_chan, d: simdmac_desc): void {
  for (const h of d.hw) dma_pool_free(sc.sd.pool, h.vaddr, h.dma);
  d.hw.length = 0;
}

/** Fill hardware descriptor @i of @d; NEXT is the following one (or @next_of_last for the last). */
function hw_fill(d: simdmac_desc, i: number, src: number, dst: number, len: number, flags: number, next_of_last: number): void {
  const h = d.hw[i];
  const next = i + 1 < d.hw.length ? d.hw[i + 1].dma : next_of_last;
  kwrite64(h.vaddr + HW_SRC, src);
  kwrite64(h.vaddr + HW_DST, dst);
  kwrite32(h.vaddr + HW_LEN, len);
  kwrite32(h.vaddr + HW_FLAGS, flags);
  kwrite64(h.vaddr + HW_NEXT, next);
  h.len = len;
  d.total += len;
}

/** device_prep_dma_memcpy. Context: any. Returns: the descriptor or null. */
export function simdmac_prep_dma_memcpy(chan: dma_chan, dst: dma_addr_t, src: dma_addr_t, len: number, flags: number): simdmac_desc | null {
  const sc = to_simdmac_chan(chan);
  if (!(len > 0) || !Number.isSafeInteger(len)) return null;
  const n = Math.ceil(len / HW_MAX_LEN);
  const d = desc_alloc(sc, n, flags);
  if (!d) return null;
  for (let i = 0, off = 0; i < n; i++, off += HW_MAX_LEN) {
    const l = Math.min(HW_MAX_LEN, len - off);
    hw_fill(d, i, src + off, dst + off, l, F_MEM2MEM | (i === n - 1 ? F_LAST : 0), 0);
  }
  return d;
}

/** The peripheral port address for @dir from the channel's slave config, or -1 (logged). */
function port_addr(sc: simdmac_chan, dir: dma_transfer_direction): number {
  if (dir !== DMA_MEM_TO_DEV && dir !== DMA_DEV_TO_MEM) {
    dev_err(sc.sd.dev, `${sc.chan._name}: slave transfers go DMA_MEM_TO_DEV or DMA_DEV_TO_MEM, not direction ${dir}`);
    return -1;
  }
  const addr = dir === DMA_MEM_TO_DEV ? sc.cfg?.dst_addr : sc.cfg?.src_addr;
  if (addr === undefined || addr === 0) {
    dev_err(sc.sd.dev, `${sc.chan._name}: no ${dir === DMA_MEM_TO_DEV ? "dst_addr" : "src_addr"} configured: call dmaengine_slave_config() first`);
    return -1;
  }
  return addr;
}

/** Split (addr, len) into descriptor-sized pieces: how many descriptors it needs. */
function pieces(len: number): number {
  return Math.max(1, Math.ceil(len / HW_MAX_LEN));
}

/**
 * device_prep_slave_sg: @sg_len is the mapped count.
 * Context: any. Returns: the descriptor or null.
 */
export function simdmac_prep_slave_sg(chan: dma_chan, sgl: sg_list, sg_len: number, dir: dma_transfer_direction, flags: number): simdmac_desc | null {
  const sc = to_simdmac_chan(chan);
  const port = port_addr(sc, dir);
  if (port < 0 || !(sg_len > 0)) return null;
  let n = 0;
  for (const [sg] of for_each_sg(sgl, sg_len)) {
    if (sg_dma_len(sg) === 0) return null;
    n += pieces(sg_dma_len(sg));
  }
  const d = desc_alloc(sc, n, flags);
  if (!d) return null;
  const type = dir === DMA_MEM_TO_DEV ? F_MEM2DEV : F_DEV2MEM;
  let i = 0;
  for (const [sg] of for_each_sg(sgl, sg_len)) {
    const addr = sg_dma_address(sg);
    const len = sg_dma_len(sg);
    for (let off = 0; off < len; off += HW_MAX_LEN, i++) {
      const l = Math.min(HW_MAX_LEN, len - off);
      const mem = addr + off;
      hw_fill(d, i, dir === DMA_MEM_TO_DEV ? mem : port, dir === DMA_MEM_TO_DEV ? port : mem, l, type | (i === n - 1 ? F_LAST : 0), 0);
    }
  }
  return d;
}

/**
 * device_prep_dma_cyclic: a ring of @buf_len bytes in @period_len periods, looping.
 * Context: any. Returns: the descriptor or null (bad geometry is logged).
 */
export function simdmac_prep_dma_cyclic(chan: dma_chan, buf_addr: dma_addr_t, buf_len: number, period_len: number, dir: dma_transfer_direction, flags: number): simdmac_desc | null {
  const sc = to_simdmac_chan(chan);
  const port = port_addr(sc, dir);
  if (port < 0) return null;
  if (!(period_len > 0) || period_len > HW_MAX_LEN || !(buf_len >= period_len) || buf_len % period_len !== 0) {
    dev_err(sc.sd.dev, `${sc.chan._name}: cyclic buffer of ${buf_len} bytes cannot be split into periods of ${period_len} bytes`);
    return null;
  }
  const n = buf_len / period_len;
  const d = desc_alloc(sc, n, flags);
  if (!d) return null;
  d.cyclic = true;
  const type = (dir === DMA_MEM_TO_DEV ? F_MEM2DEV : F_DEV2MEM) | (flags & DMA_PREP_INTERRUPT ? F_IRQ : 0);
  for (let i = 0; i < n; i++) {
    const mem = buf_addr + i * period_len;
    hw_fill(d, i, dir === DMA_MEM_TO_DEV ? mem : port, dir === DMA_MEM_TO_DEV ? port : mem, period_len, type, d.hw[0].dma);
  }
  return d;
}
