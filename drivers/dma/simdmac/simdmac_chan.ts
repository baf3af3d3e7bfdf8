/**
 * simdmac channels: the dmaengine operations of one hardware channel.
 *
 * Theory of operation
 * - Descriptors move through four lists, as virt-dma's do: submitted (dmaengine_submit),
 *   issued (dma_async_issue_pending), the one active on the hardware, and terminated
 *   (dmaengine_terminate_*, freed by dmaengine_synchronize). The hardware runs one chain per
 *   channel: the next issued transaction starts when the active one completes.
 * - The interrupt handler (simdmac_main.ts) only acknowledges and notes the causes; the
 *   channel's tasklet completes cookies, starts the next chain and runs the client callbacks
 *   (softirq context, §10.2). A cyclic transaction never completes: its callback runs once per
 *   period, the count taken from DONE_COUNT so coalesced interrupts lose no period.
 * - Residue: the bytes of the hardware descriptor at CUR_DESC not yet delivered (RESIDUE, or
 *   its whole length when RESIDUE reads 0: not fetched yet) plus the lengths after it, to the
 *   end of the chain (the ring, for cyclic). Granularity: one bus burst.
 * - A transaction that ends in an error or is terminated reports DMA_ERROR from tx_status
 *   (with the residue it had); the error one also gets its callback_result with
 *   DMA_TRANS_READ_FAILED or DMA_TRANS_WRITE_FAILED. Terminated ones get no callback.
 */

import {
  DMA_ERROR, DMA_PAUSED, DMA_COMPLETE, DMA_PREP_INTERRUPT, DMA_TRANS_NOERROR, DMA_TRANS_READ_FAILED,
  DMA_TRANS_WRITE_FAILED, DMA_XFER_BURST, DMA_XFER_TRANSPARENT, dma_cookie_assign, dma_cookie_complete,
  dma_cookie_init, dma_cookie_status, dma_set_residue, dmaengine_desc_get_callback_invoke,
  type dma_async_tx_descriptor, type dma_chan, type dma_cookie_t, type dma_device, type dma_slave_config,
  type dma_status, type dma_tx_state, type dma_xfer_mode_config,
} from "../../../kernel/include/dmaengine.ts";
import { tasklet_kill, tasklet_struct } from "../../../kernel/include/interrupt.ts";
import { readl, readq, writel, writeq } from "../../../kernel/include/io.ts";
import { dev_err } from "../../../kernel/include/printk.ts";
import { EINVAL } from "../../../kernel/include/errno.ts";
import type { dma_pool } from "../../../kernel/include/dmapool.ts";
import type { device } from "../../../kernel/include/device.ts";
import type { iomem_t } from "../../../kernel/include/types.ts";
import {
  CH_CTRL, CH_CUR_DESC, CH_DESC, CH_DONE_COUNT, CH_INT_ENABLE, CH_RESIDUE, CH_STATUS, CTRL_ABORT, CTRL_BURST, CTRL_EN,
  CTRL_MODE, CTRL_PAUSE, DEFAULT_BURST_LOG2, DMAC_PP_DATA, ERR_WRITE, INT_CHAIN_DONE, INT_DESC_DONE, INT_ERROR,
  STATUS_ACTIVE, STATUS_ERR,
} from "./simdmac_hw.ts";
import { simdmac_desc_free, type simdmac_desc } from "./simdmac_desc.ts";

/** The controller: what probe set up. */
export interface simdmac_device {
  readonly dev: device;
  readonly regs: iomem_t;
  /** Bus address of the register window (peripheral port addresses are inside it). */
  readonly phys_base: number;
  readonly nports: number;
  readonly pool: dma_pool;
  readonly dd: dma_device;
  readonly chans: simdmac_chan[];
}

/** Remembered outcome of a transaction that did not complete normally. */
interface failed_tx {
  readonly cookie: dma_cookie_t;
  readonly residue: number;
}
const FAILED_KEPT = 32;

export class simdmac_chan {
  /** CH_CTRL mode and burst bits for transactions prepared from now on. */
  xfer_ctrl = CTRL_MODE(DMA_XFER_BURST) | CTRL_BURST(DEFAULT_BURST_LOG2);
  cfg: dma_slave_config | null = null;
  submitted: simdmac_desc[] = [];
  issued: simdmac_desc[] = [];
  active: simdmac_desc | null = null;
  terminated: simdmac_desc[] = [];
  /** INT_STATUS bits the IRQ handler saw and the tasklet has not handled. */
  pending = 0;
  /** DONE_COUNT when the tasklet last looked (cyclic periods). */
  last_done = 0;
  paused = false;
  readonly failed: failed_tx[] = [];
  readonly task = new tasklet_struct();

  constructor(
    readonly sd: simdmac_device,
    readonly chan: dma_chan,
    readonly index: number,
    /** This channel's register block. */
    readonly regs: iomem_t,
  ) {}
}

export function to_simdmac_chan(chan: dma_chan): simdmac_chan {
  return chan.private as simdmac_chan;
}

// ---------------------------------------------------------------- lifecycle

/** device_alloc_chan_resources. Context: process. Returns: 0. */
export function simdmac_alloc_chan_resources(chan: dma_chan): number {
  dma_cookie_init(chan);
  return 0;
}

/** device_free_chan_resources: stop whatever the client left and forget its config. */
export function simdmac_free_chan_resources(chan: dma_chan): void {
  const sc = to_simdmac_chan(chan);
  simdmac_terminate_all(chan);
  simdmac_synchronize(chan);
  sc.cfg = null;
  sc.xfer_ctrl = CTRL_MODE(DMA_XFER_BURST) | CTRL_BURST(DEFAULT_BURST_LOG2);
  sc.failed.length = 0;
}

/**
 * device_config: remember the peripheral side; `peripheral_config` may be a
 * dma_xfer_mode_config choosing the bus transfer mode. Returns: 0 or -EINVAL (logged).
 */
export function simdmac_config(chan: dma_chan, cfg: dma_slave_config): number {
  const sc = to_simdmac_chan(chan);
  const sd = sc.sd;
  for (const a of [cfg.src_addr, cfg.dst_addr]) {
    if (a === undefined || a === 0) continue;
    const p = (a - sd.phys_base - DMAC_PP_DATA(0)) / (DMAC_PP_DATA(1) - DMAC_PP_DATA(0));
    if (!Number.isInteger(p) || p < 0 || p >= sd.nports) {
      dev_err(sd.dev, `${chan._name}: 0x${a.toString(16)} is not a peripheral port data register of this controller`);
      return -EINVAL;
    }
  }
  let ctrl = sc.xfer_ctrl;
  if (cfg.peripheral_config !== undefined && cfg.peripheral_config !== null) {
    const m = cfg.peripheral_config as dma_xfer_mode_config;
    const beats = m.burst_beats ?? 1 << DEFAULT_BURST_LOG2;
    const log2 = Math.log2(beats);
    if (!(m.xfer_mode >= DMA_XFER_BURST && m.xfer_mode <= DMA_XFER_TRANSPARENT) || !Number.isInteger(log2) || log2 < 0 || log2 > 8) {
      dev_err(sd.dev, `${chan._name}: unsupported transfer mode ${m.xfer_mode} / burst of ${beats} beats`);
      return -EINVAL;
    }
    ctrl = CTRL_MODE(m.xfer_mode) | CTRL_BURST(log2);
  }
  sc.cfg = { ...cfg };
  sc.xfer_ctrl = ctrl;
  return 0;
}

// ---------------------------------------------------------------- submit and start

/** tx_submit: queue the descriptor; it starts at the next issue_pending. */
export function simdmac_tx_submit(tx: dma_async_tx_descriptor): dma_cookie_t {
  const sc = to_simdmac_chan(tx.chan);
  const cookie = dma_cookie_assign(tx);
  sc.submitted.push(tx as simdmac_desc);
  return cookie;
}

/** device_issue_pending. Context: any. */
export function simdmac_issue_pending(chan: dma_chan): void {
  const sc = to_simdmac_chan(chan);
  if (sc.submitted.length) {
    sc.issued.push(...sc.submitted);
    sc.submitted = [];
  }
  if (!sc.active) simdmac_start_next(sc);
}

/** Put the next issued chain on the hardware (the channel is idle). */
export function simdmac_start_next(sc: simdmac_chan): void {
  const d = sc.issued.shift();
  if (!d) return;
  sc.active = d;
  sc.last_done = 0;
  writeq(d.hw[0].dma, sc.regs + CH_DESC);
  writel(INT_CHAIN_DONE | INT_ERROR | (d.cyclic ? INT_DESC_DONE : 0), sc.regs + CH_INT_ENABLE);
  // writel orders the descriptor stores (coherent memory) before the start.
  writel(d.ctrl | CTRL_EN | (sc.paused ? CTRL_PAUSE : 0), sc.regs + CH_CTRL);
}

// ---------------------------------------------------------------- completion (tasklet)

function remember_failed(sc: simdmac_chan, cookie: dma_cookie_t, residue: number): void {
  sc.failed.push({ cookie, residue });
  if (sc.failed.length > FAILED_KEPT) sc.failed.shift();
}

/**
 * The channel's tasklet: handle what the IRQ handler noted. Context: softirq.
 * Callbacks run last, after the channel's state is consistent and the next chain started.
 */
export function simdmac_tasklet(sc: simdmac_chan): void {
  const st = sc.pending;
  sc.pending = 0;
  const d = sc.active;
  if (!d) return; // terminated meanwhile: aborted transfers get no callback
  if (st & INT_ERROR) {
    const status = readl(sc.regs + CH_STATUS);
    const residue = hw_residue(sc, d);
    dev_err(sc.sd.dev, `${sc.chan._name}: transfer failed (controller error ${STATUS_ERR(status)}), ${residue} bytes not transferred`);
    remember_failed(sc, d.cookie, residue);
    dma_cookie_complete(d);
    sc.active = null;
    simdmac_start_next(sc);
    const result = STATUS_ERR(status) === ERR_WRITE ? DMA_TRANS_WRITE_FAILED : DMA_TRANS_READ_FAILED;
    if (d.flags & DMA_PREP_INTERRUPT) dmaengine_desc_get_callback_invoke(d, { result, residue });
    simdmac_desc_free(sc, d);
    return;
  }
  if (d.cyclic) {
    if (!(st & INT_DESC_DONE)) return;
    const count = readl(sc.regs + CH_DONE_COUNT);
    let periods = (count - sc.last_done) >>> 0;
    sc.last_done = count;
    // One callback per elapsed period; stop if a callback terminated the channel.
    while (periods-- > 0 && sc.active === d) dmaengine_desc_get_callback_invoke(d, null);
    return;
  }
  if (st & INT_CHAIN_DONE) {
    dma_cookie_complete(d);
    sc.active = null;
    simdmac_start_next(sc);
    if (d.flags & DMA_PREP_INTERRUPT) dmaengine_desc_get_callback_invoke(d, { result: DMA_TRANS_NOERROR, residue: 0 });
    simdmac_desc_free(sc, d);
  }
}

// ---------------------------------------------------------------- status

/** Bytes of the active chain not yet delivered, from CUR_DESC and RESIDUE. */
function hw_residue(sc: simdmac_chan, d: simdmac_desc): number {
  const status = readl(sc.regs + CH_STATUS);
  if (!(status & STATUS_ACTIVE) && STATUS_ERR(status) === 0) return 0; // chain done, tasklet pending
  const cur = readq(sc.regs + CH_CUR_DESC);
  const res = readl(sc.regs + CH_RESIDUE);
  const i = d.hw.findIndex((h) => h.dma === cur);
  if (i < 0) return d.total;
  let left = res === 0 ? d.hw[i].len : res; // 0: that descriptor is not fetched yet
  for (let j = i + 1; j < d.hw.length; j++) left += d.hw[j].len;
  return left;
}

/** device_tx_status. Context: any. */
export function simdmac_tx_status(chan: dma_chan, cookie: dma_cookie_t, state: dma_tx_state | null): dma_status {
  const sc = to_simdmac_chan(chan);
  const failed = sc.failed.find((f) => f.cookie === cookie);
  if (failed) {
    dma_cookie_status(chan, cookie, state);
    dma_set_residue(state, failed.residue);
    return DMA_ERROR;
  }
  const ret = dma_cookie_status(chan, cookie, state);
  if (ret === DMA_COMPLETE) return ret;
  const d = sc.active;
  if (d && d.cookie === cookie) {
    if (state) dma_set_residue(state, hw_residue(sc, d));
    return sc.paused ? DMA_PAUSED : ret;
  }
  const queued = sc.issued.find((q) => q.cookie === cookie) ?? sc.submitted.find((q) => q.cookie === cookie);
  if (queued) dma_set_residue(state, queued.total);
  return ret;
}

// ---------------------------------------------------------------- pause, resume, terminate

/** device_pause: no new bursts; the one on the bus finishes. Context: any. Returns: 0. */
export function simdmac_pause(chan: dma_chan): number {
  const sc = to_simdmac_chan(chan);
  sc.paused = true;
  writel(readl(sc.regs + CH_CTRL) | CTRL_PAUSE, sc.regs + CH_CTRL);
  return 0;
}

/** device_resume. Returns: 0, or -EINVAL when the channel is not paused. */
export function simdmac_resume(chan: dma_chan): number {
  const sc = to_simdmac_chan(chan);
  if (!sc.paused) return -EINVAL;
  sc.paused = false;
  writel(readl(sc.regs + CH_CTRL) & ~CTRL_PAUSE, sc.regs + CH_CTRL);
  return 0;
}

/**
 * device_terminate_all: abort the hardware, drop every queued transaction (no callbacks).
 * Context: any, also a completion callback. Descriptors are freed by synchronize.
 */
export function simdmac_terminate_all(chan: dma_chan): number {
  const sc = to_simdmac_chan(chan);
  writel(CTRL_ABORT, sc.regs + CH_CTRL);
  const dropped = [...(sc.active ? [sc.active] : []), ...sc.issued, ...sc.submitted];
  for (const d of dropped) {
    remember_failed(sc, d.cookie, d === sc.active ? hw_residue_aborted(sc, d) : d.total);
    sc.terminated.push(d);
  }
  sc.active = null;
  sc.issued = [];
  sc.submitted = [];
  sc.pending = 0;
  sc.paused = false;
  return 0;
}

/** After ABORT the hardware is idle: what it had not delivered, from CUR_DESC and RESIDUE. */
function hw_residue_aborted(sc: simdmac_chan, d: simdmac_desc): number {
  const cur = readq(sc.regs + CH_CUR_DESC);
  const i = d.hw.findIndex((h) => h.dma === cur);
  if (i < 0) return d.total;
  let left = d.hw[i].len; // the aborted descriptor's partial progress is lost with it
  for (let j = i + 1; j < d.hw.length; j++) left += d.hw[j].len;
  return left;
}

/** device_synchronize: no tasklet runs any more for what was terminated; free it. Context: process. */
export function simdmac_synchronize(chan: dma_chan): void {
  const sc = to_simdmac_chan(chan);
  tasklet_kill(sc.task);
  for (const d of sc.terminated) simdmac_desc_free(sc, d);
  sc.terminated = [];
}
