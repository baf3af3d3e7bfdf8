/**
 * Providers and channels: registration by the simdmac driver, requesting channels by name
 * and by capability, exclusivity, release, slave caps, configuration checks, and what
 * happens when a provider goes away under a client or a client oopses.
 */

import { describe, expect, it } from "vitest";
import {
  DMA_CYCLIC, DMA_DEV_TO_MEM, DMA_MEM_TO_DEV, DMA_MEM_TO_MEM, DMA_MEMCPY, DMA_RESIDUE_GRANULARITY_BURST, DMA_SLAVE,
  DMA_XFER_CYCLE_STEAL, dma_cap_set, dma_release_channel, dma_request_chan, dma_request_chan_by_mask, dma_slave_caps,
  dma_get_slave_caps, dmaengine_get_dma_device, dmaengine_prep_slave_single, dmaengine_slave_config, type dma_chan,
  type dma_cap_mask_t,
} from "../../../../kernel/include/dmaengine.ts";
import { EBUSY, EINVAL, ENODEV, EPROBE_DEFER, IS_ERR, PTR_ERR } from "../../../../kernel/include/errno.ts";
import { dma_devices } from "../../../../kernel/dmaengine/core.ts";
import type { dma_addr_t } from "../../../../kernel/include/types.ts";
import { dmacKernel, portAddr } from "./dmaengine-setup.ts";

const err = (p: unknown): number => (IS_ERR(p as never) ? PTR_ERR(p as never) : 0);

describe("dmaengine: providers and channel requests", () => {
  it("defers requests until a controller registers", async () => {
    const t = await dmacKernel({ bind: false });
    await t.thread(async () => {
      expect(err(dma_request_chan(null, "ch0"))).toBe(-EPROBE_DEFER);
    });
    expect(dma_devices(t.k)).toEqual([]);
  });

  it("names the controller dma0 and its channels dma0chan0..3; the controller's device is the one to map against", async () => {
    const t = await dmacKernel();
    const [dd] = dma_devices(t.k);
    expect(dd.channels.map((c) => c._name)).toEqual(["dma0chan0", "dma0chan1", "dma0chan2", "dma0chan3"]);
    expect(dd.dev.name).toBe("dmac0");
    await t.thread(async () => {
      const c = dma_request_chan(null, "ch2") as dma_chan;
      expect(dmaengine_get_dma_device(c)).toBe(dd.dev);
      expect(dd.dev.dma_mask).toBeGreaterThanOrEqual(2 ** 48); // the controller drives every address line
      dma_release_channel(c);
    });
    await t.teardown();
  });

  it("hands out channels exclusively: by name, 'any', and by capability", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const c0 = dma_request_chan(null, "ch0") as dma_chan;
      expect(c0.chan_id).toBe(0);
      expect(err(dma_request_chan(null, "ch0"))).toBe(-EBUSY);
      expect(err(dma_request_chan(null, "ch4"))).toBe(-ENODEV);
      expect(err(dma_request_chan(null, "rx"))).toBe(-ENODEV);
      const any = dma_request_chan(null, "any") as dma_chan;
      expect(any.chan_id).toBe(1);
      const mask: dma_cap_mask_t = { bits: 0 };
      dma_cap_set(DMA_MEMCPY, mask);
      dma_cap_set(DMA_CYCLIC, mask);
      const byMask = dma_request_chan_by_mask(mask) as dma_chan;
      expect(byMask.chan_id).toBe(2);
      const c3 = dma_request_chan(null, "any") as dma_chan;
      expect(err(dma_request_chan(null, "any"))).toBe(-EBUSY);
      for (const c of [c0, any, byMask, c3]) dma_release_channel(c);
      expect((dma_request_chan(null, "ch0") as dma_chan).chan_id).toBe(0);
      dma_release_channel(dma_devices(t.k)[0].channels[0]);
    });
    await t.teardown();
  });

  it("warns on a double release", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const c = dma_request_chan(null, "ch0") as dma_chan;
      dma_release_channel(c);
      dma_release_channel(c);
    });
    expect(t.k.findings.list.map((f) => f.message)).toEqual([expect.stringMatching(/dma_release_channel: dma0chan0 is not requested/)]);
    await t.teardown({ findings: false });
  });

  it("reports slave capabilities", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const c = dma_request_chan(null, "ch0") as dma_chan;
      const caps = new dma_slave_caps();
      expect(dma_get_slave_caps(c, caps)).toBe(0);
      expect(caps).toMatchObject({
        directions: (1 << DMA_MEM_TO_MEM) | (1 << DMA_MEM_TO_DEV) | (1 << DMA_DEV_TO_MEM),
        residue_granularity: DMA_RESIDUE_GRANULARITY_BURST,
        cmd_pause: true,
        cmd_resume: true,
        cmd_terminate: true,
        max_burst: 256,
      });
      expect(caps.dst_addr_widths & (1 << 4)).not.toBe(0);
      expect(dma_get_slave_caps(null, caps)).toBe(-EINVAL);
      expect(dma_devices(t.k)[0].cap_mask.bits & (1 << DMA_SLAVE)).not.toBe(0);
      dma_release_channel(c);
    });
    await t.teardown();
  });

  it("checks slave configurations: a FIFO address of this controller, a known transfer mode", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      const c = dma_request_chan(null, "ch0") as dma_chan;
      expect(dmaengine_prep_slave_single(c, 0x1000 as dma_addr_t, 64, DMA_MEM_TO_DEV, 0)).toBeNull(); // no config yet
      expect(dmaengine_slave_config(c, { dst_addr: 0x1234 as dma_addr_t })).toBe(-EINVAL);
      expect(dmaengine_slave_config(c, { dst_addr: (portAddr(0) + 4) as dma_addr_t })).toBe(-EINVAL);
      expect(dmaengine_slave_config(c, { dst_addr: portAddr(4) as dma_addr_t })).toBe(-EINVAL);
      expect(dmaengine_slave_config(c, { peripheral_config: { xfer_mode: 7 } })).toBe(-EINVAL);
      expect(dmaengine_slave_config(c, { peripheral_config: { xfer_mode: 0, burst_beats: 3 } })).toBe(-EINVAL);
      expect(dmaengine_slave_config(c, { dst_addr: portAddr(3) as dma_addr_t, peripheral_config: { xfer_mode: DMA_XFER_CYCLE_STEAL } })).toBe(0);
      expect(dmaengine_prep_slave_single(c, 0x1000 as dma_addr_t, 64, DMA_MEM_TO_MEM, 0)).toBeNull(); // not a slave direction
      dma_release_channel(c);
    });
    expect(t.k.printk.dmesg().some((l) => l.includes("dma0chan0: no dst_addr configured: call dmaengine_slave_config() first"))).toBe(true);
    await t.teardown();
  });

  it("warns when the provider is unbound while a client still holds a channel", async () => {
    const t = await dmacKernel();
    await t.thread(async () => {
      dma_request_chan(null, "ch1");
    });
    await t.teardown({ findings: false });
    expect(t.k.findings.list.map((f) => f.message)).toEqual([expect.stringMatching(/dma_async_device_unregister called while 1 client hold a reference \(dma0chan1 by client\)/)]);
    expect(dma_devices(t.k)).toEqual([]);
  });
});
