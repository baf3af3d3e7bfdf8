/**
 * When things go wrong: a transfer the controller cannot finish (bus error) reaches the
 * client as callback_result with the failure and DMA_ERROR from tx_status; a callback that
 * oopses is blamed on the client; a client that maps against its own device instead of the
 * controller's is caught by the sanitizer; a provider that runs callbacks in hardirq context
 * is reported.
 */

import { describe, expect, it } from "vitest";
import {
  DMA_ERROR, DMA_PREP_INTERRUPT, DMA_TRANS_WRITE_FAILED, dma_async_issue_pending, dma_async_tx_descriptor, dma_chan,
  dma_release_channel, dma_request_chan, dma_tx_state, dmaengine_desc_get_callback_invoke, dmaengine_get_dma_device,
  dmaengine_prep_dma_memcpy, dmaengine_submit, dmaengine_tx_status, type dmaengine_result,
} from "../../../../kernel/include/dmaengine.ts";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_single } from "../../../../kernel/include/dma-mapping.ts";
import { GFP_KERNEL, kfree, kzalloc } from "../../../../kernel/include/slab.ts";
import { DECLARE_COMPLETION, complete, wait_for_completion } from "../../../../kernel/include/completion.ts";
import { device } from "../../../../kernel/include/device.ts";
import { sleep_until_ns } from "../../../../kernel/time/wait.ts";
import type { dma_addr_t } from "../../../../kernel/include/types.ts";
import { dmacKernel } from "./dmaengine-setup.ts";

describe("dmaengine: failures", () => {
  it("a write into a hole fails the transaction: WRITE_FAILED to the callback, DMA_ERROR after", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch0") as dma_chan;
      const dev = dmaengine_get_dma_device(chan);
      const src = kzalloc(4096, GFP_KERNEL);
      const s = dma_map_single(dev, src, 4096, DMA_TO_DEVICE);
      expect(dma_mapping_error(dev, s)).toBe(0);
      const done = DECLARE_COMPLETION();
      const results: dmaengine_result[] = [];
      // A bus address where nothing is: what a driver gets from using a stale or made-up handle.
      const tx = dmaengine_prep_dma_memcpy(chan, 0xf0000000 as dma_addr_t, s, 4096, DMA_PREP_INTERRUPT)!;
      tx.callback_result = (_p, r) => {
        results.push({ ...r });
        complete(done);
      };
      const cookie = dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      await wait_for_completion(done);
      expect(results).toEqual([{ result: DMA_TRANS_WRITE_FAILED, residue: 4096 }]);
      const st = new dma_tx_state();
      expect(dmaengine_tx_status(chan, cookie, st)).toBe(DMA_ERROR);
      expect(st.residue).toBe(4096);
      dma_unmap_single(dev, s, 4096, DMA_TO_DEVICE);
      kfree(src);
      dma_release_channel(chan);
    });
    expect(t.board.log.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/hit no memory/),
      expect.stringMatching(/channel 0: data write of .* at 0xf0000000 failed .*halted with error 5/),
    ]);
    expect(t.k.printk.dmesg().some((l) => /dma0chan0: transfer failed \(controller error 5\), 4096 bytes not transferred/.test(l))).toBe(true);
    await t.teardown({ guestErrors: false });
  });

  it("an oops in a completion callback is the client's: its channels are released, the controller keeps serving", async () => {
    const t = await dmacKernel();
    let held: dma_chan | null = null;
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch0") as dma_chan;
      held = chan;
      const dev = dmaengine_get_dma_device(chan);
      const buf = kzalloc(8192, GFP_KERNEL);
      const b = dma_map_single(dev, buf, 4096, DMA_TO_DEVICE);
      const d = dma_map_single(dev, buf + 4096, 4096, DMA_FROM_DEVICE);
      expect(dma_mapping_error(dev, b) || dma_mapping_error(dev, d)).toBe(0);
      const tx = dmaengine_prep_dma_memcpy(chan, d, b, 64, DMA_PREP_INTERRUPT)!;
      tx.callback = () => {
        throw new Error("client bug in callback");
      };
      dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      await sleep_until_ns(t.k, t.k.exec.now() + 50_000);
      dma_unmap_single(dev, b, 4096, DMA_TO_DEVICE);
      dma_unmap_single(dev, d, 4096, DMA_FROM_DEVICE);
      kfree(buf);
    }, "mydrv");
    const oops = t.k.findings.list.filter((f) => f.kind === "oops");
    expect(oops).toHaveLength(1);
    expect(oops[0]).toMatchObject({ driver: "mydrv" });
    expect(oops[0].message).toMatch(/dma completion callback \(dma0chan0\): client bug in callback/);
    expect(held!.client_count).toBe(0); // released for the crashed client
    await t.thread(async () => {
      const chan = dma_request_chan(null, "ch0") as dma_chan;
      const dev = dmaengine_get_dma_device(chan);
      const buf = kzalloc(128, GFP_KERNEL);
      const b = dma_map_single(dev, buf, 128, DMA_BIDIRECTIONAL);
      expect(dma_mapping_error(dev, b)).toBe(0);
      const done = DECLARE_COMPLETION();
      const tx = dmaengine_prep_dma_memcpy(chan, (b + 64) as dma_addr_t, b, 64, DMA_PREP_INTERRUPT)!;
      tx.callback = () => complete(done);
      dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      await wait_for_completion(done);
      dma_unmap_single(dev, b, 128, DMA_BIDIRECTIONAL);
      kfree(buf);
      dma_release_channel(chan);
    }, "otherdrv");
    expect(t.k.findings.list).toHaveLength(1);
    await t.teardown({ findings: false });
  });

  it("buffers mapped against the client's own device, not the controller's, are caught", async () => {
    const t = await dmacKernel();
    const client = new device("client0", "platform");
    client.dma_coherent = t.board.desc.dma.coherent;
    await t.thread(async () => {
      const chan = dma_request_chan(client, "ch0") as dma_chan;
      const src = kzalloc(4096, GFP_KERNEL);
      const dst = kzalloc(4096, GFP_KERNEL);
      // The bug: mapping with the peripheral's device. §10: map against chan->device->dev.
      const s = dma_map_single(client, src, 4096, DMA_TO_DEVICE);
      const d = dma_map_single(client, dst, 4096, DMA_FROM_DEVICE);
      expect(dma_mapping_error(client, s) || dma_mapping_error(client, d)).toBe(0);
      const done = DECLARE_COMPLETION();
      const tx = dmaengine_prep_dma_memcpy(chan, d, s, 4096, DMA_PREP_INTERRUPT)!;
      tx.callback = () => complete(done);
      dmaengine_submit(tx);
      dma_async_issue_pending(chan);
      await wait_for_completion(done);
      dma_unmap_single(client, s, 4096, DMA_TO_DEVICE);
      dma_unmap_single(client, d, 4096, DMA_FROM_DEVICE);
      kfree(src);
      kfree(dst);
      dma_release_channel(chan);
    });
    const kinds = new Set(t.k.findings.list.map((f) => f.kind));
    expect(kinds.has("device-access-unmapped")).toBe(true);
    expect(t.k.findings.list.find((f) => f.kind === "device-access-unmapped")!.device).toBe("dmac0");
    await t.teardown({ findings: false });
  });

  it("a provider invoking a callback in hardirq context is reported", async () => {
    const t = await dmacKernel();
    const chan = new dma_chan();
    chan._name = "fake0chan0";
    const tx = new dma_async_tx_descriptor(chan);
    let ran = 0;
    tx.callback = () => ran++;
    t.k.enter();
    t.k.exec.runOn(0, "hardirq", "fakedma", "irq", () => dmaengine_desc_get_callback_invoke(tx, null));
    expect(ran).toBe(1);
    expect(t.k.findings.list.map((f) => f.message)).toEqual([expect.stringMatching(/fake0chan0 invoked in hardirq context/)]);
  });
});
