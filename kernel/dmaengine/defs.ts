/**
 * dmaengine definitions (include/linux/dmaengine.h): the objects a provider (a DMA controller
 * driver) fills in and a client (a peripheral driver) uses, with Linux's names and values.
 *
 * C structs become classes or interfaces; function pointers become optional members. Fields
 * whose names start with `_` are the core's bookkeeping: neither providers nor clients touch
 * them.
 */

import type { device } from "../include/device.ts";
import type { dma_addr_t } from "../include/types.ts";
import type { sg_list } from "../lib/scatterlist.ts";

/** A transaction's ticket: positive once submitted, negative = error (dma_submit_error). */
export type dma_cookie_t = number;
export const DMA_MIN_COOKIE = 1;
/** Cookies count up to INT_MAX, then wrap to DMA_MIN_COOKIE. */
export const DMA_MAX_COOKIE = 0x7fffffff;

// enum dma_status
export const DMA_COMPLETE = 0;
export const DMA_IN_PROGRESS = 1;
export const DMA_PAUSED = 2;
export const DMA_ERROR = 3;
export const DMA_OUT_OF_ORDER = 4;
export type dma_status = typeof DMA_COMPLETE | typeof DMA_IN_PROGRESS | typeof DMA_PAUSED | typeof DMA_ERROR | typeof DMA_OUT_OF_ORDER;

// enum dma_transfer_direction (not the mapping API's dma_data_direction)
export const DMA_MEM_TO_MEM = 0;
export const DMA_MEM_TO_DEV = 1;
export const DMA_DEV_TO_MEM = 2;
export const DMA_DEV_TO_DEV = 3;
export const DMA_TRANS_NONE = 4;
export type dma_transfer_direction = number;

// enum dma_transaction_type (capabilities)
export const DMA_MEMCPY = 0;
export const DMA_XOR = 1;
export const DMA_PQ = 2;
export const DMA_XOR_VAL = 3;
export const DMA_PQ_VAL = 4;
export const DMA_MEMSET = 5;
export const DMA_MEMSET_SG = 6;
export const DMA_INTERRUPT = 7;
export const DMA_PRIVATE = 8;
export const DMA_ASYNC_TX = 9;
export const DMA_SLAVE = 10;
export const DMA_CYCLIC = 11;
export const DMA_INTERLEAVE = 12;
export const DMA_COMPLETION_NO_ORDER = 13;
export const DMA_REPEAT = 14;
export const DMA_LOAD_EOT = 15;
export type dma_transaction_type = number;

// enum dma_ctrl_flags
export const DMA_PREP_INTERRUPT = 1 << 0;
export const DMA_CTRL_ACK = 1 << 1;
export const DMA_PREP_PQ_DISABLE_P = 1 << 2;
export const DMA_PREP_PQ_DISABLE_Q = 1 << 3;
export const DMA_PREP_CONTINUE = 1 << 4;
export const DMA_PREP_FENCE = 1 << 5;
export const DMA_CTRL_REUSE = 1 << 6;
export const DMA_PREP_CMD = 1 << 7;
export const DMA_PREP_REPEAT = 1 << 8;
export const DMA_PREP_LOAD_EOT = 1 << 9;

// enum dma_slave_buswidth
export const DMA_SLAVE_BUSWIDTH_UNDEFINED = 0;
export const DMA_SLAVE_BUSWIDTH_1_BYTE = 1;
export const DMA_SLAVE_BUSWIDTH_2_BYTES = 2;
export const DMA_SLAVE_BUSWIDTH_3_BYTES = 3;
export const DMA_SLAVE_BUSWIDTH_4_BYTES = 4;
export const DMA_SLAVE_BUSWIDTH_8_BYTES = 8;
export const DMA_SLAVE_BUSWIDTH_16_BYTES = 16;
export const DMA_SLAVE_BUSWIDTH_32_BYTES = 32;
export const DMA_SLAVE_BUSWIDTH_64_BYTES = 64;
export type dma_slave_buswidth = number;

// enum dma_residue_granularity
export const DMA_RESIDUE_GRANULARITY_DESCRIPTOR = 0;
export const DMA_RESIDUE_GRANULARITY_SEGMENT = 1;
export const DMA_RESIDUE_GRANULARITY_BURST = 2;

// enum dmaengine_tx_result
export const DMA_TRANS_NOERROR = 0;
export const DMA_TRANS_READ_FAILED = 1;
export const DMA_TRANS_WRITE_FAILED = 2;
export const DMA_TRANS_ABORTED = 3;
export type dmaengine_tx_result = number;

/**
 * Bus transfer modes of the simulated interconnect (a simulator extension, not Linux): a
 * provider that supports them reads a `dma_xfer_mode_config` from
 * `dma_slave_config.peripheral_config` (Linux's slot for controller-specific settings).
 */
export const DMA_XFER_BURST = 0;
export const DMA_XFER_CYCLE_STEAL = 1;
export const DMA_XFER_TRANSPARENT = 2;

export interface dma_xfer_mode_config {
  /** DMA_XFER_BURST, DMA_XFER_CYCLE_STEAL or DMA_XFER_TRANSPARENT. */
  xfer_mode: number;
  /** Burst mode: beats per bus tenure, a power of two (the provider's default if absent). */
  burst_beats?: number;
}

/** dma_cap_mask_t: a bitmap of dma_transaction_type. */
export interface dma_cap_mask_t {
  bits: number;
}

/** struct dma_slave_config (C code zero-fills it; here absent fields are zero). */
export interface dma_slave_config {
  /** Deprecated: the prep call's direction wins. */
  direction?: dma_transfer_direction;
  /** The peripheral's FIFO bus address, for DEV_TO_MEM (src) and MEM_TO_DEV (dst). */
  src_addr?: dma_addr_t;
  dst_addr?: dma_addr_t;
  src_addr_width?: dma_slave_buswidth;
  dst_addr_width?: dma_slave_buswidth;
  /** In units of the width. */
  src_maxburst?: number;
  dst_maxburst?: number;
  src_port_window_size?: number;
  dst_port_window_size?: number;
  device_fc?: boolean;
  /** Controller-specific settings (what the provider documents), with their size. */
  peripheral_config?: unknown;
  peripheral_size?: number;
}

/** struct dma_tx_state: what dmaengine_tx_status reports besides the status. */
export class dma_tx_state {
  last: dma_cookie_t = 0;
  used: dma_cookie_t = 0;
  /** Bytes of the transaction not yet transferred. */
  residue = 0;
  /** Bytes fetched by the controller but not yet at their destination (audio delay). */
  in_flight_bytes = 0;
}

/** struct dmaengine_result: what a callback_result receives. */
export interface dmaengine_result {
  result: dmaengine_tx_result;
  residue: number;
}

export type dma_async_tx_callback = (param: unknown) => void;
export type dma_async_tx_callback_result = (param: unknown, result: dmaengine_result) => void;

/**
 * struct dma_async_tx_descriptor: a prepared transaction. The provider creates it (prep) and
 * sets `tx_submit`; the client sets `callback` or `callback_result` and `callback_param`, then
 * submits it. After dmaengine_submit() it belongs to the engine.
 */
export class dma_async_tx_descriptor {
  cookie: dma_cookie_t = 0;
  flags = 0;
  callback: dma_async_tx_callback | null = null;
  callback_result: dma_async_tx_callback_result | null = null;
  callback_param: unknown = null;
  tx_submit: (tx: dma_async_tx_descriptor) => dma_cookie_t = () => -22;
  desc_free: ((tx: dma_async_tx_descriptor) => number) | null = null;

  constructor(public chan: dma_chan) {}
}

/** struct dma_chan. Providers create one per hardware channel, in `device.channels`. */
export class dma_chan {
  /** Set by the provider before registration. */
  device!: dma_device;
  chan_id = 0;
  /** Last cookie handed out and last one completed (dma_cookie_* helpers). */
  cookie: dma_cookie_t = 0;
  completed_cookie: dma_cookie_t = 0;
  client_count = 0;
  /** The name the client requested it by ("ch0", "any"...), while requested. */
  name: string | null = null;
  /** The provider's own per-channel data. */
  private: unknown = null;
  /** "dma0chan1", set at registration. */
  _name = "";
  _client_owner = "";
  _client_dev: device | null = null;
  /** Depth of completion callbacks running for this channel. */
  _in_callback = 0;
}

/** struct dma_device: a provider's description of its controller and its operations. */
export class dma_device {
  /** The controller's device: clients map their buffers against it. */
  dev!: device;
  readonly channels: dma_chan[] = [];
  cap_mask: dma_cap_mask_t = { bits: 0 };
  /** Bitmaps of supported bus widths (1 << DMA_SLAVE_BUSWIDTH_*) and directions (1 << dir). */
  src_addr_widths = 0;
  dst_addr_widths = 0;
  directions = 0;
  max_burst = 0;
  /** Largest sg segment the controller takes (0: no limit). */
  max_sg_burst = 0;
  residue_granularity = DMA_RESIDUE_GRANULARITY_DESCRIPTOR;
  descriptor_reuse = false;
  copy_align = 0;
  device_alloc_chan_resources?: (chan: dma_chan) => number;
  device_free_chan_resources?: (chan: dma_chan) => void;
  device_prep_dma_memcpy?: (chan: dma_chan, dst: dma_addr_t, src: dma_addr_t, len: number, flags: number) => dma_async_tx_descriptor | null;
  device_prep_slave_sg?: (chan: dma_chan, sgl: sg_list, sg_len: number, dir: dma_transfer_direction, flags: number) => dma_async_tx_descriptor | null;
  device_prep_dma_cyclic?: (chan: dma_chan, buf_addr: dma_addr_t, buf_len: number, period_len: number, dir: dma_transfer_direction, flags: number) => dma_async_tx_descriptor | null;
  device_config?: (chan: dma_chan, config: dma_slave_config) => number;
  device_pause?: (chan: dma_chan) => number;
  device_resume?: (chan: dma_chan) => number;
  device_terminate_all?: (chan: dma_chan) => number;
  device_synchronize?: (chan: dma_chan) => void;
  device_tx_status?: (chan: dma_chan, cookie: dma_cookie_t, txstate: dma_tx_state | null) => dma_status;
  device_issue_pending?: (chan: dma_chan) => void;
  /** "dma0", set at registration; -1 until then. */
  _id = -1;
  _owner = "";
}

/** struct dma_slave_caps (dma_get_slave_caps). */
export class dma_slave_caps {
  src_addr_widths = 0;
  dst_addr_widths = 0;
  directions = 0;
  min_burst = 0;
  max_burst = 0;
  max_sg_burst = 0;
  cmd_pause = false;
  cmd_resume = false;
  cmd_terminate = false;
  residue_granularity = DMA_RESIDUE_GRANULARITY_DESCRIPTOR;
  descriptor_reuse = false;
}
