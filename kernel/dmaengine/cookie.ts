/**
 * Provider helpers (drivers/dma/dmaengine.h): cookie bookkeeping, residue reporting and the
 * completion-callback helpers every controller driver uses.
 *
 * Cookies count up per channel from DMA_MIN_COOKIE and wrap at INT_MAX; a transaction is
 * complete when its cookie lies in the window (used, completed] has left behind, exactly as
 * dma_async_is_complete() decides it in Linux.
 *
 * Callbacks (§10.2) must run from the provider's bottom half (a tasklet), never in hardirq
 * context: dmaengine_desc_callback_invoke() reports a provider that calls it from there. While
 * a callback runs, the running code is attributed to the client that requested the channel,
 * so its allocations and an oops in it name the client, not the controller driver; an
 * exception in a callback is that client's oops and the provider's tasklet goes on.
 */

import { current_kernel } from "../core/current.ts";
import { BUG_ON } from "../core/oops.ts";
import {
  DMA_COMPLETE, DMA_IN_PROGRESS, DMA_MAX_COOKIE, DMA_MIN_COOKIE, DMA_TRANS_NOERROR, type dma_async_tx_callback,
  type dma_async_tx_callback_result, type dma_async_tx_descriptor, type dma_chan, type dma_cookie_t, type dma_status,
  type dma_tx_state, type dmaengine_result,
} from "./defs.ts";

/** dma_cookie_init - start a channel's cookie counters. Context: any (provider init). */
export function dma_cookie_init(chan: dma_chan): void {
  chan.cookie = DMA_MIN_COOKIE;
  chan.completed_cookie = DMA_MIN_COOKIE;
}

/**
 * dma_cookie_assign - give a submitted descriptor the channel's next cookie
 * Context: any (from tx_submit). Returns: the cookie.
 */
export function dma_cookie_assign(tx: dma_async_tx_descriptor): dma_cookie_t {
  const chan = tx.chan;
  let cookie = chan.cookie + 1;
  if (cookie > DMA_MAX_COOKIE || cookie < DMA_MIN_COOKIE) cookie = DMA_MIN_COOKIE;
  tx.cookie = chan.cookie = cookie;
  return cookie;
}

/**
 * dma_cookie_complete - mark a descriptor's transaction complete (in submission order)
 * Context: any. The descriptor's cookie is cleared, as in Linux.
 */
export function dma_cookie_complete(tx: dma_async_tx_descriptor): void {
  BUG_ON(tx.cookie < DMA_MIN_COOKIE, `dma_cookie_complete of a descriptor with cookie ${tx.cookie} (not submitted, or completed twice)`);
  tx.chan.completed_cookie = tx.cookie;
  tx.cookie = 0;
}

/**
 * dma_async_is_complete - is @cookie done, given the last completed and last used cookies?
 * Context: any. Returns: DMA_COMPLETE or DMA_IN_PROGRESS (wrap-around aware).
 */
export function dma_async_is_complete(cookie: dma_cookie_t, last_complete: dma_cookie_t, last_used: dma_cookie_t): dma_status {
  if (last_complete <= last_used) {
    if (cookie <= last_complete || cookie > last_used) return DMA_COMPLETE;
  } else if (cookie <= last_complete && cookie > last_used) {
    return DMA_COMPLETE;
  }
  return DMA_IN_PROGRESS;
}

/**
 * dma_cookie_status - the cookie part of a provider's device_tx_status
 * @state: filled with last/used and zero residue when given
 * Context: any. Returns: DMA_COMPLETE or DMA_IN_PROGRESS.
 */
export function dma_cookie_status(chan: dma_chan, cookie: dma_cookie_t, state: dma_tx_state | null): dma_status {
  const used = chan.cookie;
  const complete = chan.completed_cookie;
  if (state) {
    state.last = complete;
    state.used = used;
    state.residue = 0;
    state.in_flight_bytes = 0;
  }
  return dma_async_is_complete(cookie, complete, used);
}

/** dma_set_residue - report @residue bytes left (if the client asked for a state). */
export function dma_set_residue(state: dma_tx_state | null, residue: number): void {
  if (state) state.residue = residue;
}

/** dma_set_in_flight_bytes - report bytes fetched but not yet delivered. */
export function dma_set_in_flight_bytes(state: dma_tx_state | null, in_flight_bytes: number): void {
  if (state) state.in_flight_bytes = in_flight_bytes;
}

/**
 * struct dmaengine_desc_callback: a descriptor's callback, copied out so the provider may free
 * the descriptor before invoking it (plus the channel, to attribute the callback's work).
 */
export interface dmaengine_desc_callback {
  callback: dma_async_tx_callback | null;
  callback_result: dma_async_tx_callback_result | null;
  callback_param: unknown;
  chan: dma_chan | null;
}

/** dmaengine_desc_get_callback - copy @tx's callback into @cb. Context: any. */
export function dmaengine_desc_get_callback(tx: dma_async_tx_descriptor, cb: dmaengine_desc_callback): void {
  cb.callback = tx.callback;
  cb.callback_result = tx.callback_result;
  cb.callback_param = tx.callback_param;
  cb.chan = tx.chan;
}

/** dmaengine_desc_callback_valid - does @cb have anything to call? */
export function dmaengine_desc_callback_valid(cb: dmaengine_desc_callback): boolean {
  return cb.callback !== null || cb.callback_result !== null;
}

const NOERROR: dmaengine_result = { result: DMA_TRANS_NOERROR, residue: 0 };

/**
 * dmaengine_desc_callback_invoke - run a completion callback
 * @result: what callback_result receives (NOERROR with residue 0 when null)
 * Context: the provider's tasklet (softirq). From hardirq context it still runs, after a WARN
 * naming the provider's bug.
 */
export function dmaengine_desc_callback_invoke(cb: dmaengine_desc_callback, result: dmaengine_result | null): void {
  if (!dmaengine_desc_callback_valid(cb)) return;
  const k = current_kernel();
  const exec = k.exec;
  const chan = cb.chan;
  if (exec.context === "hardirq") {
    k.warn(`dmaengine: completion callback for ${chan?._name ?? "a channel"} invoked in hardirq context; providers must run callbacks from a tasklet`);
  }
  const provider = exec.owner;
  const client = chan ? chan._client_owner : provider;
  exec.owner = client;
  if (chan) chan._in_callback++;
  try {
    if (cb.callback_result) cb.callback_result(cb.callback_param, result ?? NOERROR);
    else cb.callback!(cb.callback_param);
  } catch (err) {
    k.oops(err, `dma completion callback (${chan?._name ?? "?"})`, client);
  } finally {
    if (chan) chan._in_callback--;
    exec.owner = provider;
  }
}

/** dmaengine_desc_get_callback_invoke - get @tx's callback and run it. Context: as above. */
export function dmaengine_desc_get_callback_invoke(tx: dma_async_tx_descriptor, result: dmaengine_result | null): void {
  const cb: dmaengine_desc_callback = { callback: null, callback_result: null, callback_param: null, chan: null };
  dmaengine_desc_get_callback(tx, cb);
  dmaengine_desc_callback_invoke(cb, result);
}
