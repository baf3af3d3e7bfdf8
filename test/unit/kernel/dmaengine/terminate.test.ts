/**
 * Stopping transfers (§10.2): terminate_sync from process context, terminate_async from a
 * callback followed by synchronize, the misuse of terminate_sync from a callback, and cyclic
 * transfers with one callback per period and a residue counting down the ring.
 */

import { describe, expect, it } from "vitest";
import {
  DMA_ERROR, DMA_IN_PROGRESS, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT, dma_async_issue_pending, dma_release_channel,
  dma_request_chan, dma_tx_state, dmaengine_get_dma_device, dmaengine_prep_dma_cyclic, dmaengine_prep_dma_memcpy,
  dmaengine_slave_config, dmaengine_submit, dmaengine_synchronize, dmaengine_terminate_async, dmaengine_terminate_sync,
  dmaengine_tx_status, DMA_XFER_CYCLE_STEAL, type dma_chan,
} from "../../../../kernel/include/dmaengine.ts";
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_single } from "../../../../kernel/include/dma-mapping.ts";
import { GFP_KERNEL, kfree, kmalloc, kzalloc } from "../../../../kernel/include/slab.ts";
import { copy_from_user } from "../../../../kernel/include/string.ts";
import { DECLARE_COMPLETION, complete, wait_for_completion } from "../../../../kernel/include/completion.ts";
import { irq_stats } from "../../../../kernel/irq/irqdesc.ts";
import { sleep_until_ns } from "../../../../kernel/time/wait.ts";
import type { Kernel } from "../../../../kernel/core/kernel.ts";
import type { dma_addr_t } from "../../../../kernel/include/types.ts";
import { dmacKernel, fnv, pattern, portAddr, pp } from "./dmaengine-setup.ts";

const PP_CTRL = 0x04;
const PP_RATE = 0x08;
const PP_COUNT = 0x10;
const PP_SUM = 0x14;

async function sleepNs(k: Kernel, ns: number): Promise<void> {
  await sleep_until_ns(k, k.exec.now() + ns);
}

describe("dmaengine: terminating", () => {
  it("terminate_sync stops a memcpy mid-way: no callback, DMA_ERROR with its residue, the channel works again", async () => {
    const t = await dmacKernel();
    const len = 1 << 20;
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch0") as dma_chan;
      const dev = dmaengine_get_dma_device(chan);
      const src = kzalloc(len, GFP_KERNEL);
      const dst = kzalloc(len, GFP_KERNEL);
      const s = dma_map_single(dev, src, len, DMA_TO_DEVICE);
      const d = dma_map_single(dev, dst, len, DMA_FROM_DEVICE);
      expect(dma_mapping_error(dev, s) || dma_mapping_error(dev, d)).toBe(0);
      let called = 0;
      const tx = dmaengine_prep_dma_memcpy(chan, d, s, len, DMA_PREP_INTERRUPT)!;
      tx.callback = () => called++;
      const cookie = dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      await sleepNs(t.k, 30_000);
      expect(await dmaengine_terminate_sync(chan)).toBe(0);
      const st = new dma_tx_state();
      expect(dmaengine_tx_status(chan, cookie, st)).toBe(DMA_ERROR);
      expect(st.residue).toBe(len);
      await sleepNs(t.k, 200_000);
      expect(called).toBe(0);
      expect(t.dmac.channelStats(0).bytes).toBeLessThan(len);
      // A new transaction on the same channel runs to completion.
      const done = DECLARE_COMPLETION();
      const tx2 = dmaengine_prep_dma_memcpy(chan, d, s, 4096, DMA_PREP_INTERRUPT)!;
      tx2.callback = () => complete(done);
      dmaengine_submit(tx2);
      dma_async_issue_pending(chan);
      await wait_for_completion(done);
      dma_unmap_single(dev, s, len, DMA_TO_DEVICE);
      dma_unmap_single(dev, d, len, DMA_FROM_DEVICE);
      kfree(src);
      kfree(dst);
      dma_release_channel(chan);
    });
    await t.teardown();
  });
});

/** A cyclic playback of 4 x 960-byte periods into port 0 at 192000 bytes/s (48 kHz, 16-bit stereo). */
async function cyclicSetup(t: Awaited<ReturnType<typeof dmacKernel>>, rate = 192000, period = 960) {
  t.mmioWrite(pp(0, PP_RATE), rate);
  t.mmioWrite(pp(0, PP_CTRL), 1);
  const chan = dma_request_chan(null, "ch0") as dma_chan;
  expect(dmaengine_slave_config(chan, { dst_addr: portAddr(0) as dma_addr_t, dst_addr_width: 4, peripheral_config: { xfer_mode: DMA_XFER_CYCLE_STEAL } })).toBe(0);
  const dev = dmaengine_get_dma_device(chan);
  const ring = kmalloc(4 * period, GFP_KERNEL);
  const data = pattern(4 * period, 11);
  copy_from_user(ring, data);
  const r = dma_map_single(dev, ring, 4 * period, DMA_TO_DEVICE);
  expect(dma_mapping_error(dev, r)).toBe(0);
  const release = (): void => {
    dma_unmap_single(dev, r, 4 * period, DMA_TO_DEVICE);
    kfree(ring);
    dma_release_channel(chan);
  };
  return { chan, r, data, release, period };
}

describe("dmaengine: cyclic transfers", () => {
  it("call back once per period, count residue down the ring, and stop cleanly with terminate_sync", async () => {
    const t = await dmacKernel();
    const periodNs = 5_000_000;
    await t.thread(async () => {
      const c = await cyclicSetup(t);
      const done = DECLARE_COMPLETION();
      const times: number[] = [];
      const tx = dmaengine_prep_dma_cyclic(c.chan, c.r, 4 * c.period, c.period, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT)!;
      tx.callback = () => {
        times.push(t.k.exec.now());
        if (times.length === 10) complete(done);
      };
      const cookie = dmaengine_submit(tx);
      dma_async_issue_pending(c.chan);
      await sleepNs(t.k, periodNs / 2);
      const st = new dma_tx_state();
      expect(dmaengine_tx_status(c.chan, cookie, st)).toBe(DMA_IN_PROGRESS);
      expect(st.residue).toBeGreaterThan(0);
      expect(st.residue).toBeLessThanOrEqual(4 * c.period);
      const r1 = st.residue;
      await sleepNs(t.k, periodNs / 4);
      dmaengine_tx_status(c.chan, cookie, st);
      expect(st.residue).toBeLessThan(r1); // counting down toward the end of the ring
      await wait_for_completion(done);
      // Periods arrive every 5 ms once the FIFO is primed.
      for (let i = 1; i < times.length; i++) expect(Math.abs(times[i] - times[i - 1] - periodNs)).toBeLessThan(50_000);
      expect(await dmaengine_terminate_sync(c.chan)).toBe(0);
      const n = times.length;
      await sleepNs(t.k, 3 * periodNs);
      expect(times.length).toBe(n);
      const count = t.mmioRead(pp(0, PP_COUNT));
      const stream = new Uint8Array(count);
      for (let i = 0; i < count; i++) stream[i] = c.data[i % c.data.length];
      expect(t.mmioRead(pp(0, PP_SUM))).toBe(fnv(stream));
      c.release();
    });
    await t.teardown();
  });

  it("a callback may terminate_async its own channel; synchronize then makes it quiet", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const c = await cyclicSetup(t, 0, 256); // an unlimited sink: periods complete back to back
      const done = DECLARE_COMPLETION();
      let calls = 0;
      const tx = dmaengine_prep_dma_cyclic(c.chan, c.r, 4 * 256, 256, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT)!;
      tx.callback = () => {
        calls++;
        if (calls === 3) {
          expect(dmaengine_terminate_async(c.chan)).toBe(0);
          complete(done);
        }
      };
      dmaengine_submit(tx);
      dma_async_issue_pending(c.chan);
      await wait_for_completion(done);
      await dmaengine_synchronize(c.chan);
      await sleepNs(t.k, 100_000);
      expect(calls).toBe(3); // later periods, even coalesced ones, get no callback
      c.release();
    });
    await t.teardown();
  });

  it("coalesced period interrupts still give one callback per period", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const c = await cyclicSetup(t, 0, 64); // 64-byte periods: several complete per interrupt
      let calls = 0;
      const tx = dmaengine_prep_dma_cyclic(c.chan, c.r, 4 * 64, 64, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT)!;
      tx.callback = () => calls++;
      dmaengine_submit(tx);
      dma_async_issue_pending(c.chan);
      await sleepNs(t.k, 50_000);
      await dmaengine_terminate_sync(c.chan);
      const irqs = irq_stats(t.k).find((s) => s.names.includes("dmac"))!.count;
      const periods = t.mmioRead(0xd1000000 + 0x100 + 0x34); // DONE_COUNT
      expect(calls).toBeGreaterThan(irqs);
      expect(calls).toBeLessThanOrEqual(periods);
      expect(periods - calls).toBeLessThan(periods / 4);
      c.release();
    });
    await t.teardown();
  });

  it("terminate_sync from a callback is reported and only terminates", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const c = await cyclicSetup(t, 0, 256);
      const done = DECLARE_COMPLETION();
      const tx = dmaengine_prep_dma_cyclic(c.chan, c.r, 4 * 256, 256, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT)!;
      let calls = 0;
      tx.callback = () => {
        if (++calls === 1) {
          void dmaengine_terminate_sync(c.chan);
          complete(done);
        }
      };
      dmaengine_submit(tx);
      dma_async_issue_pending(c.chan);
      await wait_for_completion(done);
      await dmaengine_synchronize(c.chan);
      expect(calls).toBe(1);
      c.release();
    });
    const warns = t.k.findings.list.filter((f) => f.kind === "warn");
    expect(warns.map((f) => f.message)).toEqual([expect.stringMatching(/dmaengine_terminate_sync\(dma0chan0\) called from its own completion callback/)]);
    expect(warns[0].driver).toBe("client");
    await t.teardown({ findings: false });
  });
});
