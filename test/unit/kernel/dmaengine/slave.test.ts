/**
 * Slave transfers between memory and a peripheral FIFO (the dmac's built-in ports): a mapped
 * scatterlist to a sink, passing the MAPPED count, and a single buffer filled from a rate-paced
 * source, with residue counting down while it runs.
 */

import { describe, expect, it } from "vitest";
import {
  DMA_COMPLETE, DMA_DEV_TO_MEM, DMA_IN_PROGRESS, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT, dma_async_issue_pending,
  dma_release_channel, dma_request_chan, dma_tx_state, dmaengine_get_dma_device, dmaengine_prep_slave_sg,
  dmaengine_prep_slave_single, dmaengine_slave_config, dmaengine_submit, dmaengine_tx_status, type dma_chan,
} from "../../../../kernel/include/dmaengine.ts";
import {
  DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_sg, dma_map_single, dma_mapping_error, dma_unmap_sg, dma_unmap_single,
} from "../../../../kernel/include/dma-mapping.ts";
import { sg_array, sg_init_table, sg_set_buf } from "../../../../kernel/include/scatterlist.ts";
import { GFP_KERNEL, kfree, kmalloc, kzalloc } from "../../../../kernel/include/slab.ts";
import { copy_from_user, copy_to_user } from "../../../../kernel/include/string.ts";
import { DECLARE_COMPLETION, complete, wait_for_completion } from "../../../../kernel/include/completion.ts";
import { sleep_until_ns } from "../../../../kernel/time/wait.ts";
import type { dma_addr_t } from "../../../../kernel/include/types.ts";
import { dmacKernel, fnv, pattern, portAddr, pp } from "./dmaengine-setup.ts";

const PP_CTRL = 0x04;
const PP_RATE = 0x08;
const PP_COUNT = 0x10;
const PP_SUM = 0x14;

describe("dmaengine slave transfers", () => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"]) {
    it(`send a mapped scatterlist to a peripheral FIFO, in order (${profile})`, async () => {
      const t = await dmacKernel({ profile });
      t.mmioWrite(pp(2, PP_CTRL), 1); // port 2: an unlimited sink
      const sizes = [1000, 4096, 333];
      await t.thread(async () => {
        const chan = dma_request_chan(null, "ch3") as dma_chan;
        expect(dmaengine_slave_config(chan, { dst_addr: portAddr(2) as dma_addr_t, dst_addr_width: 4, dst_maxburst: 16 })).toBe(0);
        const dev = dmaengine_get_dma_device(chan);
        const sg = sg_array(3);
        sg_init_table(sg, 3);
        const bufs = sizes.map((n, i) => {
          const p = kmalloc(n, GFP_KERNEL);
          copy_from_user(p, pattern(n, i + 1));
          sg_set_buf(sg[i], p, n);
          return p;
        });
        const mapped = dma_map_sg(dev, sg, 3, DMA_TO_DEVICE);
        expect(mapped).toBeGreaterThan(0);
        const done = DECLARE_COMPLETION();
        const tx = dmaengine_prep_slave_sg(chan, sg, mapped, DMA_MEM_TO_DEV, DMA_PREP_INTERRUPT)!;
        expect(tx).not.toBeNull();
        tx.callback = () => complete(done);
        const cookie = dmaengine_submit(tx);
        dma_async_issue_pending(chan);
        await wait_for_completion(done);
        expect(dmaengine_tx_status(chan, cookie, null)).toBe(DMA_COMPLETE);
        dma_unmap_sg(dev, sg, 3, DMA_TO_DEVICE); // the original nents, not the mapped count
        bufs.forEach((p) => kfree(p));
        dma_release_channel(chan);
      });
      const all = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
      let off = 0;
      sizes.forEach((n, i) => {
        all.set(pattern(n, i + 1), off);
        off += n;
      });
      expect(t.mmioRead(pp(2, PP_COUNT))).toBe(all.length);
      expect(t.mmioRead(pp(2, PP_SUM))).toBe(fnv(all));
      await t.teardown();
    });
  }

  it("fill a buffer from a rate-paced source, with residue counting down meanwhile", async () => {
    const t = await dmacKernel();
    t.mmioWrite(pp(1, PP_RATE), 10_000_000); // 10 bytes per microsecond
    t.mmioWrite(pp(1, PP_CTRL), 3); // source
    const len = 2000;
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch0") as dma_chan;
      expect(dmaengine_slave_config(chan, { src_addr: portAddr(1) as dma_addr_t, src_addr_width: 1 })).toBe(0);
      const dev = dmaengine_get_dma_device(chan);
      const buf = kzalloc(len, GFP_KERNEL);
      const b = dma_map_single(dev, buf, len, DMA_FROM_DEVICE);
      expect(dma_mapping_error(dev, b)).toBe(0);
      const done = DECLARE_COMPLETION();
      const tx = dmaengine_prep_slave_single(chan, b, len, DMA_DEV_TO_MEM, DMA_PREP_INTERRUPT)!;
      tx.callback = () => complete(done);
      const cookie = dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      const st = new dma_tx_state();
      const seen: number[] = [];
      for (let i = 0; i < 4; i++) {
        await sleep_until_ns(t.k, t.k.exec.now() + 40_000);
        expect(dmaengine_tx_status(chan, cookie, st)).toBe(DMA_IN_PROGRESS);
        seen.push(st.residue);
      }
      expect(seen).toEqual([...seen].sort((a, b2) => b2 - a));
      expect(seen[0]).toBeLessThan(len);
      expect(seen[3]).toBeGreaterThan(0);
      await wait_for_completion(done);
      dma_unmap_single(dev, b, len, DMA_FROM_DEVICE);
      const out = new Uint8Array(len);
      copy_to_user(out, buf);
      expect([...out]).toEqual(Array.from({ length: len }, (_, i) => i & 0xff));
      kfree(buf);
      dma_release_channel(chan);
    });
    // 2000 bytes at 10 bytes/us: about 200 us.
    const s = t.dmac.channelStats(0);
    expect(s.runEndNs - s.runStartNs).toBeGreaterThan(170_000);
    expect(s.runEndNs - s.runStartNs).toBeLessThan(230_000);
    await t.teardown();
  });
});
