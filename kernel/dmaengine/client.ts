/**
 * The dmaengine client API (include/linux/dmaengine.h inline wrappers; §10 of the reference):
 * configure, prepare, submit, issue, poll, terminate. Each call forwards to the provider's
 * operation, with Linux's return values when the provider lacks it.
 *
 * Memory handed to the prep calls must be mapped against the controller's device
 * (`chan.device.dev`, also dmaengine_get_dma_device()), not the client's own: the controller
 * is the bus master that touches it.
 */

import { current_kernel } from "../core/current.ts";
import { might_sleep_in } from "../irq/context.ts";
import type { device } from "../include/device.ts";
import { EINVAL, ENOSYS, ENXIO } from "../include/errno.ts";
import type { dma_addr_t } from "../include/types.ts";
import { sg_array, sg_init_table, type sg_list } from "../lib/scatterlist.ts";
import {
  DMA_SLAVE, type dma_async_tx_descriptor, type dma_chan, type dma_cookie_t, type dma_slave_caps,
  type dma_slave_config, type dma_status, type dma_transfer_direction, type dma_tx_state,
} from "./defs.ts";
import { dma_has_cap } from "./core.ts";

/** dmaengine_get_dma_device - the device to map buffers against for @chan. Context: any. */
export function dmaengine_get_dma_device(chan: dma_chan): device {
  return chan.device.dev;
}

/**
 * dmaengine_slave_config - set the peripheral side of later transfers on @chan
 * Context: any. Applies to transfers prepared afterwards, not to queued ones.
 * Returns: 0, -ENOSYS if the provider has no configuration, or the provider's -EINVAL.
 */
export function dmaengine_slave_config(chan: dma_chan, config: dma_slave_config): number {
  const op = chan.device.device_config;
  return op ? op(chan, config) : -ENOSYS;
}

/**
 * dmaengine_prep_slave_sg - prepare a transfer between a peripheral and a mapped sg list
 * @sg_len: the MAPPED count dma_map_sg() returned, not the original nents
 * @dir: DMA_MEM_TO_DEV or DMA_DEV_TO_MEM
 * Context: any (also IRQ context). Returns: the descriptor, or null.
 */
export function dmaengine_prep_slave_sg(chan: dma_chan, sgl: sg_list, sg_len: number, dir: dma_transfer_direction, flags: number): dma_async_tx_descriptor | null {
  const op = chan.device.device_prep_slave_sg;
  return op ? op(chan, sgl, sg_len, dir, flags) : null;
}

/**
 * dmaengine_prep_slave_single - prepare a transfer between a peripheral and one mapped buffer
 * Context: any. Returns: the descriptor, or null. (A one-entry sg list, as in Linux.)
 */
export function dmaengine_prep_slave_single(chan: dma_chan, buf: dma_addr_t, len: number, dir: dma_transfer_direction, flags: number): dma_async_tx_descriptor | null {
  const sg = sg_array(1);
  sg_init_table(sg, 1);
  sg[0].dma_address = buf;
  sg[0].dma_length = len;
  return dmaengine_prep_slave_sg(chan, sg, 1, dir, flags);
}

/**
 * dmaengine_prep_dma_cyclic - prepare a ring of @buf_len bytes split into @period_len periods
 * that the controller loops over until terminated; with DMA_PREP_INTERRUPT the callback runs
 * once per period. Context: any. Returns: the descriptor, or null.
 */
export function dmaengine_prep_dma_cyclic(chan: dma_chan, buf_addr: dma_addr_t, buf_len: number, period_len: number, dir: dma_transfer_direction, flags: number): dma_async_tx_descriptor | null {
  const op = chan.device.device_prep_dma_cyclic;
  return op ? op(chan, buf_addr, buf_len, period_len, dir, flags) : null;
}

/**
 * dmaengine_prep_dma_memcpy - prepare a memory-to-memory copy of @len bytes
 * Context: any. Returns: the descriptor, or null.
 */
export function dmaengine_prep_dma_memcpy(chan: dma_chan, dest: dma_addr_t, src: dma_addr_t, len: number, flags: number): dma_async_tx_descriptor | null {
  const op = chan.device.device_prep_dma_memcpy;
  return op ? op(chan, dest, src, len, flags) : null;
}

/**
 * dmaengine_submit - queue a prepared descriptor (it does not start: see issue_pending)
 * Context: any. The descriptor now belongs to the engine.
 * Returns: its cookie, or a negative errno (test with dma_submit_error).
 */
export function dmaengine_submit(desc: dma_async_tx_descriptor): dma_cookie_t {
  return desc.tx_submit(desc);
}

/** dma_submit_error - the error in a cookie (negative), or 0. */
export function dma_submit_error(cookie: dma_cookie_t): number {
  return cookie < 0 ? cookie : 0;
}

/** dma_async_issue_pending - start what was submitted on @chan. Context: any. */
export function dma_async_issue_pending(chan: dma_chan): void {
  chan.device.device_issue_pending!(chan);
}

/**
 * dmaengine_tx_status - where transaction @cookie is
 * @state: if given, filled with last/used cookies, residue and in-flight bytes
 * Context: any. Returns: DMA_COMPLETE, DMA_IN_PROGRESS, DMA_PAUSED or DMA_ERROR.
 */
export function dmaengine_tx_status(chan: dma_chan, cookie: dma_cookie_t, state: dma_tx_state | null): dma_status {
  return chan.device.device_tx_status!(chan, cookie, state);
}

/** dma_async_is_tx_complete - the older form: status of @cookie, no residue. */
export function dma_async_is_tx_complete(chan: dma_chan, cookie: dma_cookie_t): dma_status {
  return dmaengine_tx_status(chan, cookie, null);
}

/**
 * dmaengine_terminate_async - stop everything on @chan without waiting
 * Context: any, also a completion callback. Aborted transfers get no callback. The client
 * must call dmaengine_synchronize() before freeing buffers or callback resources.
 * Returns: 0 or -ENOSYS.
 */
export function dmaengine_terminate_async(chan: dma_chan): number {
  const op = chan.device.device_terminate_all;
  return op ? op(chan) : -ENOSYS;
}

/** dmaengine_terminate_all - deprecated: use dmaengine_terminate_sync or _async. */
export const dmaengine_terminate_all = dmaengine_terminate_async;

/**
 * dmaengine_synchronize - wait until terminated transfers and running callbacks are over
 * Context: process (may sleep): `await dmaengine_synchronize(chan)`.
 */
export async function dmaengine_synchronize(chan: dma_chan): Promise<void> {
  const k = current_kernel();
  if (!might_sleep_in(k, "dmaengine_synchronize")) return;
  chan.device.device_synchronize?.(chan);
}

/**
 * dmaengine_terminate_sync - stop everything on @chan and wait until it is quiet
 * Context: process only (may sleep): never from atomic context or a completion callback,
 * where it is reported and only terminates (use dmaengine_terminate_async there).
 * Returns: a promise of 0 or -ENOSYS.
 */
export async function dmaengine_terminate_sync(chan: dma_chan): Promise<number> {
  const k = current_kernel();
  if (chan._in_callback > 0) {
    k.warn(`dmaengine_terminate_sync(${chan._name}) called from its own completion callback: it would wait for itself; use dmaengine_terminate_async()`);
    return dmaengine_terminate_async(chan);
  }
  if (!might_sleep_in(k, "dmaengine_terminate_sync")) return dmaengine_terminate_async(chan);
  const ret = dmaengine_terminate_async(chan);
  if (ret) return ret;
  chan.device.device_synchronize?.(chan);
  return 0;
}

/** dmaengine_pause - stop @chan without losing data. Returns: 0 or -ENOSYS. */
export function dmaengine_pause(chan: dma_chan): number {
  const op = chan.device.device_pause;
  return op ? op(chan) : -ENOSYS;
}

/** dmaengine_resume - continue a paused channel. Returns: 0, -EINVAL if not paused, -ENOSYS. */
export function dmaengine_resume(chan: dma_chan): number {
  const op = chan.device.device_resume;
  return op ? op(chan) : -ENOSYS;
}

/**
 * dma_get_slave_caps - what @chan's controller can do
 * Context: any. Returns: 0, -EINVAL (null chan) or -ENXIO (not a slave controller).
 */
export function dma_get_slave_caps(chan: dma_chan | null, caps: dma_slave_caps): number {
  if (!chan) return -EINVAL;
  const dd = chan.device;
  if (!dma_has_cap(DMA_SLAVE, dd.cap_mask)) return -ENXIO;
  if (!dd.directions) return -ENXIO;
  caps.src_addr_widths = dd.src_addr_widths;
  caps.dst_addr_widths = dd.dst_addr_widths;
  caps.directions = dd.directions;
  caps.min_burst = 1;
  caps.max_burst = dd.max_burst;
  caps.max_sg_burst = dd.max_sg_burst;
  caps.residue_granularity = dd.residue_granularity;
  caps.descriptor_reuse = dd.descriptor_reuse;
  caps.cmd_pause = dd.device_pause !== undefined;
  caps.cmd_resume = dd.device_resume !== undefined;
  caps.cmd_terminate = dd.device_terminate_all !== undefined;
  return 0;
}
