/**
 * swiotlb-bounce: a DMA engine with a narrow mask moves data that lives above 4 GiB.
 *
 * The edu's engine drives 28 address lines (32 on a board that says `dmaBits: 32`); the
 * edu_bounce driver sets that mask. Its data buffers come from high memory, above 4 GiB, as an
 * upper layer would hand them over (on x86-64, GFP_KERNEL prefers memory above 4 GiB). The
 * device cannot reach them, so the DMA layer bounces every mapping through the swiotlb pool
 * the kernel carved from low RAM at boot, and copies exactly when §6.3 says. The scenario
 * shows:
 *   1. a send / receive round trip (TO_DEVICE then FROM_DEVICE) arrives intact;
 *   2. one BIDIRECTIONAL mapping used for two passes with full and partial syncs stays intact;
 *   3. a low buffer the device could reach maps directly, unless the machine forces bouncing
 *      (`swiotlb: {force: true}`), in which case it bounces too;
 *   4. a TX ring of 8 x 64 KiB buffers: with the default 64 MiB pool all map at once; with a
 *      tiny pool (`swiotlb: {size: 256KiB}`) the pool fills, the map fails with "swiotlb
 *      buffer is full", the driver sends what it mapped and resubmits the rest, and every
 *      buffer is delivered;
 * with zero findings and every slot back in the pool after removal. Bounced bytes per event
 * and direction, and the pool's high water mark, are reported. Without a pool
 * (`swiotlb: {size: 0}`) the high buffers cannot be mapped at all: each map fails with a
 * dma-mask-exceeded finding and the driver returns -ENOMEM, which is what the scenario then
 * claims.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import { bindDriver, inProcessContext, unbindDriver } from "../sim/driver-harness.ts";
import { edu_bounce_devices, edu_bounce_driver, edu_bounce_params, type edu_bounce_device } from "../drivers/misc/edu_bounce/edu_bounce_main.ts";
import { edu_bounce_bidi, edu_bounce_receive, edu_bounce_send, edu_bounce_tx_ring } from "../drivers/misc/edu_bounce/edu_bounce_ops.ts";
import { copy_from_user, copy_to_user } from "../kernel/mm/access.ts";
import { kfree, kmalloc } from "../kernel/mm/slab-api.ts";
import { PAGE_OFFSET } from "../kernel/mm/layout.ts";
import { orderFor } from "../kernel/mm/slab.ts";
import { dma_stats } from "../kernel/dma/state.ts";
import { swiotlb_info } from "../kernel/dma/swiotlb.ts";
import { IO_TLB_SEGSIZE, IO_TLB_SIZE } from "../kernel/dma/swiotlb-pool.ts";
import { ENOMEM } from "../kernel/include/errno.ts";

const GiB4 = 2 ** 32;
const XFER = 4096;
const BIDI_HALF = 3000; // 6000 bytes: three slots, the second half starting mid-slot
const RING = 8;
const RING_LEN = 64 * 1024; // 32 slots each
const RING_SLOTS = RING * (RING_LEN / IO_TLB_SIZE);
const EDU_DEFAULT_BITS = 28; // hw/dev/edu/SPEC.md §6

/** Pool slots the kernel will carve for this machine (size rounded up to whole segments). */
function poolSlots(m: MachineDesc): number {
  const size = m.swiotlb?.size ?? 64 << 20;
  return size <= 0 ? 0 : Math.ceil(Math.ceil(size / IO_TLB_SIZE) / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE;
}

/** The mask the driver is loaded with: the engine's wired width, at most 32 bits. */
function maskBits(m: MachineDesc): number {
  const edu = m.pci.devices.find((d) => d.model === "edu");
  return Math.min(32, edu?.dmaBits ?? EDU_DEFAULT_BITS);
}

/** The ring maps whole in one round when the pool clearly holds it, not when it clearly cannot. */
function ringExpectation(m: MachineDesc): boolean | null {
  const slots = poolSlots(m);
  if (slots >= 2 * RING_SLOTS) return true;
  if (slots < RING_SLOTS) return false;
  return null; // fragmentation decides: not claimed
}

function bytesOf(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 0x9e3779b1 + 0x7f4a7c15) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * Page-allocator blocks above 4 GiB. The allocator hands out the lowest free block first, so
 * for the moment of these allocations every free block below 4 GiB is held back (as if low
 * memory were busy, the usual state of a long-running machine), then given back.
 */
function allocHigh(k: Kernel, sizes: readonly number[]): number[] {
  const held: number[] = [];
  for (let order = 18; order >= 0; order--) {
    for (let p = k.pages.alloc(order, 0, GiB4); p >= 0; p = k.pages.alloc(order, 0, GiB4)) held.push(p);
  }
  const out = sizes.map((s) => k.pages.alloc(orderFor(s), 0));
  for (const p of held) k.pages.free(p);
  return out;
}

interface Buffers {
  tx: number;
  rx: number;
  bidi: number;
  ring: number[];
}

async function exercise(ctx: ScenarioContext, eb: edu_bounce_device, b: Buffers, pool: boolean): Promise<void> {
  const k = ctx.kernel;
  const va = (phys: number): number => PAGE_OFFSET + phys;
  // 1. send / receive round trip through high memory
  const data = bytesOf(XFER, ctx.seed);
  copy_from_user(va(b.tx), data, XFER);
  copy_from_user(va(b.rx), new Uint8Array(XFER), XFER);
  const sent = await edu_bounce_send(eb, va(b.tx), XFER);
  ctx.check("send-err", pool ? 0 : -ENOMEM, sent);
  if (!pool) return;
  const rx = await edu_bounce_receive(eb, va(b.rx), XFER);
  ctx.check("receive-err", 0, rx.err);
  const back = new Uint8Array(XFER);
  copy_to_user(back, va(b.rx), XFER);
  ctx.check("roundtrip-intact", true, same(back, data));
  ctx.check("receive-header", new DataView(data.buffer).getUint32(0, true), rx.header);

  // 2. one bidirectional mapping, two passes
  const first = bytesOf(BIDI_HALF, ctx.seed + 1);
  copy_from_user(va(b.bidi), first, BIDI_HALF);
  copy_from_user(va(b.bidi) + BIDI_HALF, new Uint8Array(BIDI_HALF), BIDI_HALF);
  const bidi = await edu_bounce_bidi(eb, va(b.bidi), BIDI_HALF);
  ctx.check("bidi-err", 0, bidi.err);
  ctx.check("bidi-first-pass-intact", true, bidi.first_pass_ok);
  ctx.check("bidi-second-pass-intact", true, same(bidi.data, first.map((v) => v ^ 0xff)));

  // 3. a low buffer the device can reach: direct unless bouncing is forced
  const low = kmalloc(XFER, 0);
  const before = dma_stats(k).swiotlb_maps;
  const lowData = bytesOf(XFER, ctx.seed + 2);
  copy_from_user(low, lowData, XFER);
  const lowErr = (await edu_bounce_send(eb, low, XFER)) || (await edu_bounce_receive(eb, low, XFER)).err;
  copy_to_user(back, low, XFER);
  kfree(low);
  ctx.check("low-buffer-err", 0, lowErr);
  ctx.check("low-buffer-intact", true, same(back, lowData));
  ctx.check("low-buffer-bounced", ctx.machine.swiotlb?.force ?? false, dma_stats(k).swiotlb_maps > before);
  ctx.result("low-buffer-phys", hex(low - PAGE_OFFSET));

  // 4. a TX ring larger than a tiny pool
  const ringData = b.ring.map((p, i) => {
    const d = bytesOf(RING_LEN, ctx.seed + 10 + i);
    copy_from_user(va(p), d, RING_LEN);
    return d;
  });
  let next = 0;
  let rounds = 0;
  let firstRound = 0;
  while (next < RING && rounds < RING) {
    const r = await edu_bounce_tx_ring(eb, b.ring.slice(next).map(va), RING_LEN);
    if (r.err) {
      ctx.check("ring-err", 0, r.err);
      break;
    }
    if (rounds === 0) firstRound = r.sent;
    next += r.sent;
    rounds++;
  }
  ctx.check("ring-all-sent", RING, next);
  const expectWhole = ringExpectation(ctx.machine);
  if (expectWhole !== null) ctx.check("ring-mapped-in-one-round", expectWhole, firstRound === RING);
  ctx.result("ring-rounds", rounds);
  ctx.result("ring-first-round", firstRound);
  // The engine now holds the last 4 KiB the ring sent: read it back and compare.
  const tail = await edu_bounce_receive(eb, va(b.rx), XFER);
  copy_to_user(back, va(b.rx), XFER);
  ctx.check("ring-tail-intact", true, tail.err === 0 && same(back, ringData[RING - 1].subarray(RING_LEN - XFER)));
}

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  const pool = poolSlots(ctx.machine) > 0;
  const saved = edu_bounce_params.dma_bits;
  edu_bounce_params.dma_bits = maskBits(ctx.machine);
  let bufs: number[] = [];
  try {
    const bound = await bindDriver(k, edu_bounce_driver);
    ctx.check("probe", 1, bound);
    if (bound !== 1) return;
    const eb = edu_bounce_devices[0];
    ctx.result("dma-mask-bits", eb.dma_bits);
    ctx.result("max-mapping-size", eb.max_mapping);
    if (!pool) ctx.expectFindings("dma-mask-exceeded");
    bufs = allocHigh(k, [XFER, XFER, 2 * BIDI_HALF, ...Array<number>(RING).fill(RING_LEN)]);
    ctx.check("buffers-above-4GiB", true, bufs.every((p) => p >= GiB4));
    ctx.result("tx-buffer-phys", hex(bufs[0]));
    if (bufs.some((p) => p < GiB4)) return;
    const [tx, rx, bidi, ...ring] = bufs;
    await inProcessContext(k, "swiotlb-bounce", () => exercise(ctx, eb, { tx, rx, bidi, ring }, pool), edu_bounce_driver.name);
    await unbindDriver(k, edu_bounce_driver);
  } finally {
    for (const p of bufs) if (p >= 0) k.pages.free(p);
    edu_bounce_params.dma_bits = saved;
  }
  report(ctx);
}

function report(ctx: ScenarioContext): void {
  const s = dma_stats(ctx.kernel);
  const info = swiotlb_info(ctx.kernel);
  ctx.result("pool", info ? `${hex(info.start)}-${hex(info.end)} (${info.nslabs} slots)` : "none");
  ctx.result("bounced-maps", s.swiotlb_maps);
  ctx.result("bounce-map-failures", s.swiotlb_map_failures);
  ctx.result("bounced-bytes-to-device", s.swiotlb_bytes_to_bounce);
  ctx.result("bounced-bytes-from-device", s.swiotlb_bytes_from_bounce);
  ctx.result("bounced-bytes-map", s.swiotlb_bytes_map);
  ctx.result("bounced-bytes-sync-for-device", s.swiotlb_bytes_sync_for_device);
  ctx.result("bounced-bytes-sync-for-cpu", s.swiotlb_bytes_sync_for_cpu);
  ctx.result("bounced-bytes-unmap", s.swiotlb_bytes_unmap);
  ctx.result("slots-high-water", s.swiotlb_slots_hiwater);
  if (info) ctx.check("slots-in-use-after-remove", 0, info.used);
  if (info) ctx.check("bounced", true, s.swiotlb_maps > 0 && s.swiotlb_bytes_to_bounce > 0 && s.swiotlb_bytes_from_bounce > 0);
}

function claim(m: MachineDesc): string {
  const bits = maskBits(m);
  if (poolSlots(m) === 0) {
    return `a ${bits}-bit DMA engine and buffers above 4 GiB on a machine without a bounce pool: every map fails (dma-mask-exceeded) and the driver reports -ENOMEM`;
  }
  const ring = ringExpectation(m);
  const parts = [
    `a ${bits}-bit DMA engine moves buffers above 4 GiB intact through swiotlb bounce buffers (send/receive, bidirectional with partial syncs), with no findings`,
    m.swiotlb?.force ? "force mode bounces even a reachable low buffer" : "a reachable low buffer maps directly",
    ring === false
      ? "the tiny pool fills up mid-ring: the map fails with \"swiotlb buffer is full\", the driver resubmits and every buffer goes out"
      : ring === true
        ? "the whole 8 x 64 KiB TX ring maps at once"
        : "the 8 x 64 KiB TX ring goes out, in as many rounds as the pool allows",
  ];
  return parts.join("; ");
}

export const swiotlbBounceScenario: Scenario = {
  name: "swiotlb-bounce",
  summary: "narrow-mask DMA engine, buffers above 4 GiB: swiotlb bounce buffers, bounced bytes counted, full pool handled",
  defaultMachine: "x86-coherent",
  claim,
  run,
};
