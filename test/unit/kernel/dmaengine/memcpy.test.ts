/**
 * dmaengine with the simdmac provider: memcpy transactions end to end, cookies and status,
 * callbacks in softirq context, queued transactions, pause/resume with residue.
 */

import { describe, expect, it } from "vitest";
import {
  DMA_COMPLETE, DMA_IN_PROGRESS, DMA_PAUSED, DMA_PREP_INTERRUPT, DMA_TRANS_NOERROR, dma_async_issue_pending,
  dma_release_channel, dma_request_chan, dma_submit_error, dma_tx_state, dmaengine_get_dma_device,
  dmaengine_pause, dmaengine_prep_dma_memcpy, dmaengine_resume, dmaengine_submit, dmaengine_tx_status,
  type dma_chan, type dmaengine_result,
} from "../../../../kernel/include/dmaengine.ts";
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_single } from "../../../../kernel/include/dma-mapping.ts";
import { GFP_KERNEL, kfree, kmalloc, kzalloc } from "../../../../kernel/include/slab.ts";
import { copy_from_user, copy_to_user } from "../../../../kernel/include/string.ts";
import { DECLARE_COMPLETION, complete, wait_for_completion } from "../../../../kernel/include/completion.ts";
import { in_softirq } from "../../../../kernel/include/interrupt.ts";
import { IS_ERR } from "../../../../kernel/include/errno.ts";
import type { dma_addr_t, vaddr_t } from "../../../../kernel/include/types.ts";
import { sleep_until_ns } from "../../../../kernel/time/wait.ts";
import type { Kernel } from "../../../../kernel/core/kernel.ts";
import { dmacKernel, pattern } from "./dmaengine-setup.ts";

interface Bufs {
  src: vaddr_t;
  dst: vaddr_t;
  s: dma_addr_t;
  d: dma_addr_t;
  data: Uint8Array;
}

function mapPair(chan: dma_chan, len: number, seed = 1): Bufs {
  const dev = dmaengine_get_dma_device(chan);
  const src = kmalloc(len, GFP_KERNEL);
  const dst = kzalloc(len, GFP_KERNEL);
  const data = pattern(len, seed);
  copy_from_user(src, data);
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE);
  const d = dma_map_single(dev, dst, len, DMA_FROM_DEVICE);
  expect(dma_mapping_error(dev, s) || dma_mapping_error(dev, d)).toBe(0);
  return { src, dst, s, d, data };
}

function unmapCheck(chan: dma_chan, b: Bufs, len: number): boolean {
  const dev = dmaengine_get_dma_device(chan);
  dma_unmap_single(dev, b.s, len, DMA_TO_DEVICE);
  dma_unmap_single(dev, b.d, len, DMA_FROM_DEVICE);
  const out = new Uint8Array(len);
  copy_to_user(out, b.dst);
  kfree(b.src);
  kfree(b.dst);
  return out.every((v, i) => v === b.data[i]);
}

for (const profile of ["arm64-noncoherent", "x86-coherent"]) {
  describe(`dmaengine memcpy on ${profile}`, () => {
    it("copies intact, completes its cookie and calls back once, in softirq context", async () => {
      const t = await dmacKernel({ profile });
      const len = 64 * 1024;
      await t.thread(async () => {
        const chan = dma_request_chan(null, "ch0");
        if (IS_ERR(chan)) throw new Error(`dma_request_chan: ${chan}`);
        const b = mapPair(chan, len);
        const done = DECLARE_COMPLETION();
        const seen: { softirq: boolean; result: dmaengine_result | null; owner: string }[] = [];
        const tx = dmaengine_prep_dma_memcpy(chan, b.d, b.s, len, DMA_PREP_INTERRUPT)!;
        expect(tx).not.toBeNull();
        tx.callback_result = (param, result) => {
          seen.push({ softirq: in_softirq(), result: { ...result }, owner: t.k.exec.owner });
          complete(param as ReturnType<typeof DECLARE_COMPLETION>);
        };
        tx.callback_param = done;
        const cookie = dmaengine_submit(tx);
        expect(dma_submit_error(cookie)).toBe(0);
        expect(cookie).toBeGreaterThan(0);
        const st = new dma_tx_state();
        expect(dmaengine_tx_status(chan, cookie, st)).toBe(DMA_IN_PROGRESS);
        expect(st.residue).toBe(len); // submitted, not issued: nothing moved
        dma_async_issue_pending(chan);
        await wait_for_completion(done);
        expect(seen).toEqual([{ softirq: true, result: { result: DMA_TRANS_NOERROR, residue: 0 }, owner: "client" }]);
        expect(dmaengine_tx_status(chan, cookie, st)).toBe(DMA_COMPLETE);
        expect(st.residue).toBe(0);
        expect(unmapCheck(chan, b, len)).toBe(true);
        dma_release_channel(chan);
      });
      const s = t.dmac.channelStats(0);
      expect(s.bytes).toBe(len);
      expect(s.runEndNs - s.runStartNs).toBe(8 + (len / 64) * 16);
      await t.teardown();
    });
  });
}

describe("dmaengine memcpy: queues, flags, pause", () => {
  it("runs queued transactions in cookie order with one issue_pending", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch1") as dma_chan;
      const order: number[] = [];
      const done = DECLARE_COMPLETION();
      const bufs = [0, 1, 2].map((i) => mapPair(chan, 4096 * (i + 1), i + 5));
      const cookies = bufs.map((b, i) => {
        const tx = dmaengine_prep_dma_memcpy(chan, b.d, b.s, 4096 * (i + 1), DMA_PREP_INTERRUPT)!;
        tx.callback = () => {
          order.push(i);
          if (i === 2) complete(done);
        };
        return dmaengine_submit(tx);
      });
      expect(cookies[1]).toBe(cookies[0] + 1);
      expect(cookies[2]).toBe(cookies[1] + 1);
      dma_async_issue_pending(chan);
      await wait_for_completion(done);
      expect(order).toEqual([0, 1, 2]);
      for (const c of cookies) expect(dmaengine_tx_status(chan, c, null)).toBe(DMA_COMPLETE);
      bufs.forEach((b, i) => expect(unmapCheck(chan, b, 4096 * (i + 1))).toBe(true));
      dma_release_channel(chan);
    });
    await t.teardown();
  });

  it("without DMA_PREP_INTERRUPT completes silently", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch0") as dma_chan;
      const b = mapPair(chan, 8192);
      let called = 0;
      const tx = dmaengine_prep_dma_memcpy(chan, b.d, b.s, 8192, 0)!;
      tx.callback = () => called++;
      const cookie = dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      while (dmaengine_tx_status(chan, cookie, null) !== DMA_COMPLETE) await sleepAWhile(t.k);
      expect(called).toBe(0);
      expect(unmapCheck(chan, b, 8192)).toBe(true);
      dma_release_channel(chan);
    });
    await t.teardown();
  });

  it("pauses with an exact residue, resumes without losing a byte; resume when not paused is -EINVAL", async () => {
    const t = await dmacKernel();
    const len = 256 * 1024;
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch0") as dma_chan;
      const b = mapPair(chan, len, 3);
      const done = DECLARE_COMPLETION();
      const tx = dmaengine_prep_dma_memcpy(chan, b.d, b.s, len, DMA_PREP_INTERRUPT)!;
      tx.callback = () => complete(done);
      const cookie = dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      await sleepAWhile(t.k, 20_000);
      expect(dmaengine_pause(chan)).toBe(0);
      await sleepAWhile(t.k, 2_000);
      const st = new dma_tx_state();
      expect(dmaengine_tx_status(chan, cookie, st)).toBe(DMA_PAUSED);
      expect(st.residue).toBeGreaterThan(0);
      expect(st.residue).toBeLessThan(len);
      expect(st.residue % 512).toBe(0); // default burst: 16 beats, 512 bytes copied per tenure
      const first = st.residue;
      await sleepAWhile(t.k, 20_000);
      dmaengine_tx_status(chan, cookie, st);
      expect(st.residue).toBe(first);
      expect(dmaengine_resume(chan)).toBe(0);
      expect(dmaengine_resume(chan)).toBe(-22);
      await wait_for_completion(done);
      expect(unmapCheck(chan, b, len)).toBe(true);
      dma_release_channel(chan);
    });
    await t.teardown();
  });
});

/** Let virtual time pass in a kernel thread (the DMA runs meanwhile). */
async function sleepAWhile(k: Kernel, ns = 1000): Promise<void> {
  await sleep_until_ns(k, k.exec.now() + ns);
}
