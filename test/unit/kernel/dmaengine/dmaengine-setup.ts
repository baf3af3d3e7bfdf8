/**
 * A booted kernel on a profile with a dmac on the platform bus and the simdmac driver bound,
 * plus helpers to run client code in a kernel thread, for the dmaengine unit tests.
 */

import { expect } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import type { DmacDevice } from "../../../../hw/dev/dmac/dmac.ts";
import { boot } from "../../../../kernel/platform/boot.ts";
import type { Kernel } from "../../../../kernel/core/kernel.ts";
import { platform_driver_register, platform_driver_unregister } from "../../../../kernel/include/platform_device.ts";
import { simdmac_driver } from "../../../../drivers/dma/simdmac/simdmac_main.ts";
import { inProcessContext } from "../../../../sim/driver-harness.ts";
import { dma_debug_live } from "../../../../kernel/dma/debug.ts";

export const BASE = 0xd1000000;
export const IRQ = 20;
/** PP_DATA of peripheral port p: the FIFO address a slave config names. */
export const portAddr = (p: number): number => BASE + 0x800 + 0x20 * p;
export const pp = (p: number, r: number): number => BASE + 0x800 + 0x20 * p + r;

export interface DmacKernel {
  board: Board;
  k: Kernel;
  dmac: DmacDevice;
  /** Run `fn` in a kernel thread (process context) owned by `owner`, and drive the machine until it is done. */
  thread(fn: () => Promise<void>, owner?: string): Promise<void>;
  /** Register write as a test bench would (peripheral port setup). */
  mmioWrite(addr: number, v: number): void;
  mmioRead(addr: number): number;
  /** Unbind the driver and check nothing is left behind. */
  teardown(opts?: { findings?: boolean; guestErrors?: boolean }): Promise<void>;
}

export async function dmacKernel(opts: { profile?: string; seed?: number; bind?: boolean } = {}): Promise<DmacKernel> {
  const desc = getProfile(opts.profile ?? "arm64-noncoherent");
  desc.pci.devices = [];
  desc.platform = [{ name: "dmac0", model: "dmac", base: BASE, size: 0x1000, irq: IRQ }];
  const board = new Board(desc, { seed: opts.seed ?? 1 });
  const k = boot(board, { logLevel: "silent" });
  if (opts.bind !== false) {
    k.enter();
    const done = platform_driver_register(simdmac_driver);
    await k.run();
    expect(await done).toBe(0);
  }
  const dmac = board.platformDevices[0].device as DmacDevice;
  return {
    board,
    k,
    dmac,
    thread: (fn, owner = "client") => inProcessContext(k, "test", fn, owner),
    mmioWrite: (addr, v) => board.mem.mmioWrite(0, addr, v, 4),
    mmioRead: (addr) => board.mem.mmioRead(0, addr, 4),
    teardown: async (t = {}) => {
      k.enter();
      const done = platform_driver_unregister(simdmac_driver);
      await k.run();
      await done;
      expect(dma_debug_live()).toEqual([]);
      expect([...k.slab.live.values()].filter((o) => o.owner !== "")).toEqual([]);
      if (t.findings !== false) expect(k.findings.list).toEqual([]);
      if (t.guestErrors !== false) expect(board.log.errors).toEqual([]);
    },
  };
}

/** A payload different at every position. */
export function pattern(n: number, seed = 1): Uint8Array {
  const a = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    a[i] = x >>> 24;
  }
  return a;
}

/** FNV-1a 32 (SPEC.md section 5: what PP_SUM reads). */
export function fnv(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of data) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}
