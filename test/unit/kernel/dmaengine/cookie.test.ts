/**
 * Cookie bookkeeping (drivers/dma/dmaengine.h semantics): assignment, completion order,
 * status windows and wrap-around at INT_MAX. Pure functions on a channel object; no machine.
 */

import { describe, expect, it } from "vitest";
import {
  DMA_COMPLETE, DMA_IN_PROGRESS, DMA_MAX_COOKIE, DMA_MIN_COOKIE, dma_async_is_complete, dma_async_tx_descriptor,
  dma_chan, dma_cookie_assign, dma_cookie_complete, dma_cookie_init, dma_cookie_status, dma_set_residue, dma_tx_state,
} from "../../../../kernel/include/dmaengine.ts";
import { KernelOops } from "../../../../kernel/core/oops.ts";

function chan(): dma_chan {
  const c = new dma_chan();
  dma_cookie_init(c);
  return c;
}

describe("dma cookies", () => {
  it("are handed out in order from DMA_MIN_COOKIE + 1", () => {
    const c = chan();
    const a = new dma_async_tx_descriptor(c);
    const b = new dma_async_tx_descriptor(c);
    expect(dma_cookie_assign(a)).toBe(DMA_MIN_COOKIE + 1);
    expect(dma_cookie_assign(b)).toBe(DMA_MIN_COOKIE + 2);
    expect(c.cookie).toBe(b.cookie);
  });

  it("report IN_PROGRESS until completed, COMPLETE after, with last/used in the state", () => {
    const c = chan();
    const a = new dma_async_tx_descriptor(c);
    const b = new dma_async_tx_descriptor(c);
    const ca = dma_cookie_assign(a);
    const cb = dma_cookie_assign(b);
    const st = new dma_tx_state();
    st.residue = 99;
    expect(dma_cookie_status(c, ca, st)).toBe(DMA_IN_PROGRESS);
    expect(st).toMatchObject({ last: DMA_MIN_COOKIE, used: cb, residue: 0 });
    dma_cookie_complete(a);
    expect(a.cookie).toBe(0);
    expect(dma_cookie_status(c, ca, null)).toBe(DMA_COMPLETE);
    expect(dma_cookie_status(c, cb, null)).toBe(DMA_IN_PROGRESS);
    dma_cookie_complete(b);
    expect(dma_cookie_status(c, cb, st)).toBe(DMA_COMPLETE);
    dma_set_residue(st, 5);
    expect(st.residue).toBe(5);
    dma_set_residue(null, 5); // no state: nothing to do
  });

  it("wrap from INT_MAX back to DMA_MIN_COOKIE, and completion windows follow", () => {
    const c = chan();
    c.cookie = DMA_MAX_COOKIE - 1;
    c.completed_cookie = DMA_MAX_COOKIE - 1;
    const a = new dma_async_tx_descriptor(c);
    const b = new dma_async_tx_descriptor(c);
    expect(dma_cookie_assign(a)).toBe(DMA_MAX_COOKIE);
    expect(dma_cookie_assign(b)).toBe(DMA_MIN_COOKIE);
    expect(dma_cookie_status(c, DMA_MAX_COOKIE, null)).toBe(DMA_IN_PROGRESS);
    expect(dma_cookie_status(c, DMA_MIN_COOKIE, null)).toBe(DMA_IN_PROGRESS);
    dma_cookie_complete(a);
    expect(dma_cookie_status(c, DMA_MAX_COOKIE, null)).toBe(DMA_COMPLETE);
    expect(dma_cookie_status(c, DMA_MIN_COOKIE, null)).toBe(DMA_IN_PROGRESS);
    dma_cookie_complete(b);
    expect(dma_cookie_status(c, DMA_MIN_COOKIE, null)).toBe(DMA_COMPLETE);
  });

  it("dma_async_is_complete decides by the (completed, used] window", () => {
    expect(dma_async_is_complete(5, 5, 9)).toBe(DMA_COMPLETE);
    expect(dma_async_is_complete(6, 5, 9)).toBe(DMA_IN_PROGRESS);
    expect(dma_async_is_complete(10, 5, 9)).toBe(DMA_COMPLETE); // never used: nothing pending
    // Wrapped: completed near INT_MAX, used past the wrap.
    expect(dma_async_is_complete(3, DMA_MAX_COOKIE - 1, 4)).toBe(DMA_IN_PROGRESS);
    expect(dma_async_is_complete(DMA_MAX_COOKIE, DMA_MAX_COOKIE - 1, 4)).toBe(DMA_IN_PROGRESS);
    expect(dma_async_is_complete(DMA_MAX_COOKIE - 2, DMA_MAX_COOKIE - 1, 4)).toBe(DMA_COMPLETE);
  });

  it("completing a descriptor that was never submitted is a kernel BUG", () => {
    const c = chan();
    const a = new dma_async_tx_descriptor(c);
    expect(() => dma_cookie_complete(a)).toThrow(KernelOops);
  });
});
