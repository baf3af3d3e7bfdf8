/**
 * IOMMU model tests, qtest style: registers, RAM tables and `translate` on hand-built hardware,
 * no kernel, no DMA port. Offsets and layouts are re-declared here from SPEC.md rather than
 * imported from the model, so a typo on either side shows.
 */

import { describe, expect, it } from "vitest";
import { Scheduler } from "../../hw/core/scheduler.ts";
import { GuestLog } from "../../hw/core/guest-log.ts";
import { Trace } from "../../hw/core/trace.ts";
import { Prng } from "../../hw/core/prng.ts";
import { PhysMap } from "../../hw/mem/phys-map.ts";
import type { AccessSize } from "../../hw/mem/mmio.ts";
import { MemorySystem } from "../../hw/cpu/memory-system.ts";
import { MEM_CACHED } from "../../hw/cpu/memory-types.ts";
import { InterruptController } from "../../hw/irq/intc.ts";
import { Iommu } from "../../hw/iommu/iommu.ts";
import type { IommuFault, IommuOptions } from "../../hw/iommu/iommu-types.ts";

// ---- SPEC.md sections 1-6
const VER = 0x000;
const CAP = 0x008;
const GCMD = 0x010;
const GSTS = 0x014;
const CTX_BASE = 0x018;
const FSTS = 0x020;
const FECTL = 0x024;
const INV_CMD = 0x040;
const INV_STATUS = 0x044;
const INV_DID = 0x048;
const INV_PAGES = 0x04c;
const INV_ADDR = 0x050;
const FRCD_ADDR = (i: number): number => 0x200 + 16 * i;
const FRCD_INFO = (i: number): number => 0x208 + 16 * i;
const TE = 1;
const IE = 1;
const IP = 1 << 30;
const PFO = 1;
const PPF = 2;
const F = 2 ** 31;
const IVT = 2 ** 31;
const GLOBAL = 1;
const DOMAIN = 2;
const RANGE = 3;
const P = 1;
const RD = 2;
const WR = 4;
const PS = 0x80;
const BLOCKED = 0;
const PASS = 1;
const XLATE = 2;

const BASE = 0xfed90000;
const IRQ = 20;
const CTX_TABLE = 0x10000;
const PT_POOL = 0x100000;
const KiB4 = 4096;

interface Rig {
  iommu: Iommu;
  log: GuestLog;
  mem: MemorySystem;
  intc: InterruptController;
  scheduler: Scheduler;
  faults: IommuFault[];
  rd(off: number, size?: AccessSize): number;
  wr(off: number, value: number, size?: AccessSize): void;
  put64(addr: number, v: number): void;
  get64(addr: number): number;
  /** Write context entry for `rid`. */
  ctx(rid: number, mode: number, did: number, root: number, present?: boolean): void;
  /** A fresh, empty page-table root. */
  newRoot(): number;
  /** Map one 4 KiB page (or a 2 MiB page with `large`) in the table at `root`; returns the leaf entry's address. */
  mapPage(root: number, iova: number, phys: number, perm: number, large?: boolean): number;
  invalidate(scope: number, did?: number, iova?: number, pages?: number): void;
  info(i: number): { sid: number; reason: number; write: boolean; pr: boolean; f: boolean; did: number };
  line(): number;
}

function rig(opts: IommuOptions = {}, enable = true): Rig {
  const scheduler = new Scheduler();
  const log = new GuestLog(() => scheduler.now);
  const prng = new Prng(1);
  const map = new PhysMap();
  map.addRam(0, 64 << 20, 0);
  const mem = new MemorySystem(map, {
    cpus: 2,
    l1: { size: 4096, ways: 4 },
    llc: { size: 32768, ways: 8 },
    timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 200 },
    evictionRate: 0,
    prefetchRate: 0,
    prng: prng.fork("cache"),
  });
  const intc = new InterruptController({ lines: 64, msiVectors: 16, cpus: 2 }, log);
  const iommu = new Iommu({ scheduler, log, trace: new Trace(false), prng: prng.fork("iommu") }, mem, opts);
  map.addMmio(iommu.region, BASE);
  iommu.irq = intc.line(IRQ);
  const faults: IommuFault[] = [];
  iommu.onFault = (f) => faults.push(f);

  const scratch = new Uint8Array(8);
  const dv = new DataView(scratch.buffer);
  const put64 = (addr: number, v: number): void => {
    dv.setUint32(0, v % 2 ** 32, true);
    dv.setUint32(4, Math.floor(v / 2 ** 32), true);
    map.ram.write(addr, scratch, 0, 8);
  };
  const get64 = (addr: number): number => {
    map.ram.read(addr, scratch, 0, 8);
    return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  };
  let next = PT_POOL;
  const newRoot = (): number => {
    next += KiB4;
    return next - KiB4;
  };
  const rd = (off: number, size: AccessSize = 4): number => mem.mmioRead(0, BASE + off, size);
  const wr = (off: number, value: number, size: AccessSize = 4): void => mem.mmioWrite(0, BASE + off, value, size);
  const r: Rig = {
    iommu,
    log,
    mem,
    intc,
    scheduler,
    faults,
    rd,
    wr,
    put64,
    get64,
    ctx: (rid, mode, did, root, present = true) => {
      put64(CTX_TABLE + 16 * rid, root + (mode << 1) + (present ? P : 0));
      put64(CTX_TABLE + 16 * rid + 8, did);
    },
    newRoot,
    mapPage: (root, iova, phys, perm, large = false) => {
      let table = root;
      const lowest = large ? 2 : 1;
      for (let level = 4; level > lowest; level--) {
        const at = table + 8 * (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) & 0x1ff);
        let e = get64(at);
        if (!(e & P)) {
          e = newRoot() + P + RD + WR;
          put64(at, e);
        }
        table = e - (e % KiB4);
      }
      const at = table + 8 * (Math.floor(iova / 2 ** (12 + 9 * (lowest - 1))) & 0x1ff);
      put64(at, phys + perm + (large ? PS : 0));
      return at;
    },
    invalidate: (scope, did = 0, iova = 0, pages = 0) => {
      wr(INV_DID, did);
      wr(INV_ADDR, iova, 8);
      wr(INV_PAGES, pages);
      wr(INV_CMD, IVT + scope);
    },
    info: (i) => {
      const lo = rd(FRCD_INFO(i));
      return { sid: lo & 0xffff, reason: (lo >>> 16) & 0xff, write: (lo & (1 << 24)) !== 0, pr: (lo & (1 << 25)) !== 0, f: lo >= F, did: rd(FRCD_INFO(i) + 4) & 0xffff };
    },
    line: () => intc.input[IRQ]!,
  };
  if (enable) {
    wr(CTX_BASE, CTX_TABLE, 8);
    wr(GCMD, TE);
  }
  return r;
}

describe("iommu registers", () => {
  it("identifies itself and reports its capabilities", () => {
    const r = rig({ iotlbEntries: 128, iotlbWays: 8 }, false);
    expect(r.rd(VER)).toBe(0x00010000);
    const cap = r.rd(CAP);
    expect(cap & 0xff).toBe(8);
    expect((cap >>> 8) & 0xf).toBe(4);
    expect((cap >>> 12) & 0xff).toBe(48);
    expect(cap & (1 << 20)).not.toBe(0);
    expect(cap >>> 24).toBe(8);
    expect(r.rd(CAP + 4)).toBe(128);
    expect(r.rd(CAP, 8)).toBe(cap + 128 * 2 ** 32);
    expect(r.rd(GSTS)).toBe(0);
    r.wr(GCMD, TE);
    expect(r.rd(GSTS)).toBe(1);
    r.wr(CTX_BASE + 4, 0x12);
    r.wr(CTX_BASE, 0x345003);
    expect(r.rd(CTX_BASE, 8)).toBe(0x12_00345003);
    expect(r.log.entries).toEqual([]);
  });

  it("logs guest errors for bad sizes, offsets, read-only and reserved writes, and carries on", () => {
    const r = rig({}, false);
    expect(r.rd(GCMD, 8)).toBe(Number.MAX_SAFE_INTEGER);
    expect(r.rd(0x12, 4)).toBe(0xffffffff);
    expect(r.rd(VER, 2)).toBe(0xffff);
    r.wr(VER, 5);
    r.wr(0x800, 1);
    r.wr(GCMD, 0x80000001);
    expect(r.rd(GCMD)).toBe(TE);
    r.wr(CTX_BASE, 0x10ff0);
    expect(r.rd(CTX_BASE)).toBe(0x10000);
    expect(r.log.errors).toHaveLength(7);
    expect(r.rd(VER)).toBe(0x00010000);
  });
});

describe("iommu modes", () => {
  it("is the identity while translation is off, whatever the context table says", () => {
    const r = rig({}, false);
    expect(r.iommu.translate(0x18, 0x123456, 4, true)).toBe(0x123456);
    expect(r.iommu.stats.faults).toBe(0);
  });

  it("passes through, blocks, and reports a missing context with the right record", () => {
    const r = rig();
    r.ctx(0x18, PASS, 1, 0);
    r.ctx(0x20, BLOCKED, 7, 0);
    expect(r.iommu.translate(0x18, 0x3000_0123, 8, true)).toBe(0x3000_0123);

    expect(r.iommu.translate(0x20, 0x5000, 4, false)).toBe(-1);
    expect(r.info(0)).toEqual({ sid: 0x20, reason: 0x0d, write: false, pr: false, f: true, did: 7 });
    expect(r.rd(FRCD_ADDR(0), 8)).toBe(0x5000);

    expect(r.iommu.translate(0x30, 0x6008, 4, true)).toBe(-1); // never written: P = 0
    expect(r.info(1)).toEqual({ sid: 0x30, reason: 0x02, write: true, pr: false, f: true, did: 0 });
    expect(r.iommu.translate(0x300, 0x6008, 4, true)).toBe(-1); // beyond a 256-entry table
    expect(r.info(2).reason).toBe(0x02);
    expect(r.rd(FSTS)).toBe(PPF | (3 << 8));
    expect(r.log.entries).toEqual([]);
  });

  it("treats mode 3 and a context table outside RAM as broken tables (guest errors)", () => {
    const r = rig();
    r.ctx(1, 3, 1, 0);
    expect(r.iommu.translate(1, 0, 4, false)).toBe(-1);
    expect(r.info(0).reason).toBe(0x03);
    r.wr(CTX_BASE, 0xf0000000, 8);
    expect(r.iommu.translate(1, 0, 4, false)).toBe(-1);
    expect(r.info(1).reason).toBe(0x09);
    expect(r.log.errors).toHaveLength(2);
  });
});

describe("iommu translation", () => {
  it("translates mapped 4 KiB pages, keeping the offset", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(0x18, XLATE, 1, root);
    r.mapPage(root, 0x1_0000_0000, 0x200000, P | RD | WR);
    r.mapPage(root, 0x1_0000_1000, 0x7000, P | RD);
    expect(r.iommu.translate(0x18, 0x1_0000_0010, 16, true)).toBe(0x200010);
    expect(r.iommu.translate(0x18, 0x1_0000_1ffc, 4, false)).toBe(0x7ffc);
    expect(r.iommu.stats.faults).toBe(0);
    expect(r.log.entries).toEqual([]);
  });

  it("faults a write to a read-only page and a read of a write-only page as permission faults", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(5, XLATE, 3, root);
    r.mapPage(root, 0x4000, 0x9000, P | RD);
    r.mapPage(root, 0x5000, 0xa000, P | WR);
    expect(r.iommu.translate(5, 0x4100, 4, true)).toBe(-1);
    expect(r.info(0)).toEqual({ sid: 5, reason: 0x05, write: true, pr: true, f: true, did: 3 });
    expect(r.iommu.translate(5, 0x5100, 4, false)).toBe(-1);
    expect(r.info(1)).toEqual({ sid: 5, reason: 0x06, write: false, pr: true, f: true, did: 3 });
    expect(r.iommu.translate(5, 0x4100, 4, false)).toBe(0x9100);
    expect(r.iommu.translate(5, 0x5100, 4, true)).toBe(0xa100);
  });

  it("ANDs permissions over the levels of the walk", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(5, XLATE, 3, root);
    r.mapPage(root, 0x4000, 0x9000, P | RD | WR);
    r.put64(root, r.get64(root) - WR); // the level-4 entry loses W
    expect(r.iommu.translate(5, 0x4000, 4, true)).toBe(-1);
    expect(r.info(0).pr).toBe(true);
  });

  it("records non-present faults with the requester, address, access and reason", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(0x0a, XLATE, 9, root);
    r.mapPage(root, 0x10000, 0x20000, P | RD | WR);
    expect(r.iommu.translate(0x0a, 0x11234, 2, false)).toBe(-1); // same L1 table, empty slot
    expect(r.iommu.translate(0x0a, 0x7f_0000_0000, 8, true)).toBe(-1); // empty L4 slot
    expect(r.info(0)).toEqual({ sid: 0x0a, reason: 0x06, write: false, pr: false, f: true, did: 9 });
    expect(r.rd(FRCD_ADDR(0), 8)).toBe(0x11234);
    expect(r.info(1)).toEqual({ sid: 0x0a, reason: 0x05, write: true, pr: false, f: true, did: 9 });
    expect(r.rd(FRCD_ADDR(1))).toBe(0);
    expect(r.rd(FRCD_ADDR(1) + 4)).toBe(0x7f);
    expect(r.faults.map((f) => [f.iova, f.isWrite, f.reason, f.recorded])).toEqual([
      [0x11234, false, 6, true],
      [0x7f_0000_0000, true, 5, true],
    ]);
    expect(r.log.entries).toEqual([]);
  });

  it("faults addresses beyond 48 bits and broken tables, never throwing", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    expect(r.iommu.translate(1, 2 ** 48, 4, false)).toBe(-1);
    expect(r.info(0).reason).toBe(0x04);
    r.put64(root, 0xf000_0000 + P + RD + WR); // level-3 table outside RAM
    expect(r.iommu.translate(1, 0x1000, 4, false)).toBe(-1);
    expect(r.info(1).reason).toBe(0x07);
    r.put64(root, 0x20_0000 + P + RD + WR + PS); // PS at level 4 is reserved
    expect(r.iommu.translate(1, 0x1000, 4, false)).toBe(-1);
    expect(r.info(2).reason).toBe(0x0c);
    r.ctx(2, XLATE, 2, 0xf000_0000); // root outside RAM
    expect(r.iommu.translate(2, 0x1000, 4, false)).toBe(-1);
    expect(r.info(3).reason).toBe(0x07);
    expect(r.log.errors).toHaveLength(3);
  });

  it("refuses (throws at the port) a chunk crossing a 4 KiB IOVA page", () => {
    const r = rig();
    expect(() => r.iommu.translate(1, 0xffe, 4, false)).toThrow(RangeError);
  });

  it("maps 2 MiB pages at level 2 and caches them as one IOTLB entry", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(3, XLATE, 4, root);
    r.mapPage(root, 0x4000_0000, 0x60_0000, P | RD | WR, true);
    expect(r.iommu.translate(3, 0x4000_0000, 8, false)).toBe(0x60_0000);
    expect(r.iommu.translate(3, 0x401f_f008, 8, true)).toBe(0x7f_f008);
    expect(r.iommu.translate(3, 0x4012_3456, 1, false)).toBe(0x72_3456);
    expect(r.iommu.stats.walks).toBe(1);
    expect(r.iommu.stats.walkReads).toBe(3);
    expect(r.iommu.iotlb.occupancy).toBe(1);
    // A RANGE invalidation of one 4 KiB page inside drops the whole 2 MiB entry.
    r.invalidate(RANGE, 4, 0x4010_0000, 1);
    expect(r.iommu.iotlb.occupancy).toBe(0);
    expect(r.iommu.translate(3, 0x4040_0000, 8, false)).toBe(-1);
  });
});

describe("iommu fault log and interrupt", () => {
  it("overflows when all eight records are pending: PFO set, faults dropped, FRI ring order", () => {
    const r = rig();
    for (let i = 0; i < 10; i++) r.iommu.translate(0x40 + i, i * KiB4, 4, false);
    expect(r.iommu.stats.faults).toBe(10);
    expect(r.iommu.stats.faultsDropped).toBe(2);
    expect(r.rd(FSTS)).toBe(PFO | PPF | (0 << 8));
    expect([...Array(8).keys()].map((i) => r.info(i).sid)).toEqual([0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47]);
    expect(r.faults.filter((f) => !f.recorded).map((f) => f.requesterId)).toEqual([0x48, 0x49]);
    // Freeing the record at FRI lets the next fault in there.
    r.wr(FRCD_INFO(0), F);
    r.iommu.translate(0x50, 0, 4, false);
    expect(r.info(0).sid).toBe(0x50);
    expect(r.rd(FSTS) >>> 8).toBe(1);
    r.iommu.translate(0x51, 0, 4, false); // record 1 still pending
    expect(r.iommu.stats.faultsDropped).toBe(3);
  });

  it("asserts the level line only with IE set, until every record and PFO are cleared (W1C)", () => {
    const r = rig();
    r.iommu.translate(1, 0, 4, false);
    expect(r.line()).toBe(0);
    expect(r.rd(FECTL)).toBe(IP);
    r.wr(FECTL, IE);
    expect(r.line()).toBe(1);
    expect(r.rd(FECTL)).toBe((IP | IE) >>> 0);
    for (let i = 0; i < 9; i++) r.iommu.translate(2, 0, 4, true);
    expect(r.rd(FSTS) & PFO).toBe(PFO);
    // Writing back what was read clears only W1C bits; read-only fields ignore it.
    for (let i = 0; i < 8; i++) r.wr(FRCD_INFO(i), r.rd(FRCD_INFO(i)));
    expect(r.rd(FSTS)).toBe(PFO);
    expect(r.line()).toBe(1); // overflow still unacknowledged
    r.wr(FSTS, r.rd(FSTS));
    expect(r.rd(FSTS)).toBe(0);
    expect(r.line()).toBe(0);
    expect(r.rd(FECTL)).toBe(IE);
    // A high-half write to a record does not clear F.
    r.iommu.translate(3, 0, 4, false);
    r.wr(FRCD_INFO(0) + 4, 0xffffffff);
    expect(r.info(0).f).toBe(true);
    r.wr(FECTL, 0);
    expect(r.line()).toBe(0);
    expect(r.log.entries).toEqual([]);
  });
});

describe("iommu IOTLB", () => {
  it("hits on the second access to a page and counts hits, misses and walks", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    r.mapPage(root, 0x8000, 0x30000, P | RD | WR);
    r.iommu.translate(1, 0x8000, 64, false);
    r.iommu.translate(1, 0x8040, 64, true);
    r.iommu.translate(1, 0x8ff0, 16, false);
    expect(r.iommu.stats).toMatchObject({ translations: 3, hits: 2, misses: 1, walks: 1, walkReads: 4, contextReads: 1, contextHits: 2, faults: 0 });
  });

  it("serves a stale translation after a page-table change until a global invalidation", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    const pte = r.mapPage(root, 0x8000, 0x30000, P | RD | WR);
    expect(r.iommu.translate(1, 0x8000, 4, true)).toBe(0x30000);
    r.put64(pte, 0x50000 + P + RD + WR); // remapped in RAM, not invalidated
    expect(r.iommu.translate(1, 0x8000, 4, true)).toBe(0x30000);
    r.invalidate(GLOBAL);
    expect(r.rd(INV_STATUS)).toBe(1);
    expect(r.iommu.translate(1, 0x8000, 4, true)).toBe(0x50000);
    r.put64(pte, 0); // unmapped in RAM: still reachable until invalidated
    expect(r.iommu.translate(1, 0x8000, 4, true)).toBe(0x50000);
    r.invalidate(GLOBAL);
    expect(r.iommu.translate(1, 0x8000, 4, true)).toBe(-1);
    r.wr(INV_STATUS, 1);
    expect(r.rd(INV_STATUS)).toBe(0);
    expect(r.iommu.stats.invalidations).toBe(2);
    expect(r.log.entries).toEqual([]);
  });

  it("keeps stale permissions too, and does not cache failed walks", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    const pte = r.mapPage(root, 0x8000, 0x30000, P | RD);
    expect(r.iommu.translate(1, 0x9000, 4, false)).toBe(-1);
    r.mapPage(root, 0x9000, 0x31000, P | RD);
    expect(r.iommu.translate(1, 0x9000, 4, false)).toBe(0x31000); // new mapping used at once
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(0x30000);
    r.put64(pte, 0x30000 + P + RD + WR);
    expect(r.iommu.translate(1, 0x8000, 4, true)).toBe(-1); // cached read-only
    r.invalidate(RANGE, 1, 0x8000, 1);
    expect(r.iommu.translate(1, 0x8000, 4, true)).toBe(0x30000);
  });

  it("invalidates by domain and by domain + page range, leaving the rest", () => {
    const r = rig();
    const rootA = r.newRoot();
    const rootB = r.newRoot();
    r.ctx(1, XLATE, 1, rootA);
    r.ctx(2, XLATE, 2, rootB);
    const ptes = [0, 1, 2, 3].map((i) => r.mapPage(rootA, 0x10000 + i * KiB4, 0x40000 + i * KiB4, P | RD | WR));
    const pteB = r.mapPage(rootB, 0x10000, 0x80000, P | RD | WR);
    for (let i = 0; i < 4; i++) r.iommu.translate(1, 0x10000 + i * KiB4, 4, false);
    r.iommu.translate(2, 0x10000, 4, false);
    for (const p of ptes) r.put64(p, 0);
    r.put64(pteB, 0);

    r.invalidate(RANGE, 1, 0x11000, 2); // pages 1 and 2 of domain 1
    expect([0, 1, 2, 3].map((i) => r.iommu.translate(1, 0x10000 + i * KiB4, 4, false))).toEqual([0x40000, -1, -1, 0x43000]);
    expect(r.iommu.translate(2, 0x10000, 4, false)).toBe(0x80000);

    r.invalidate(DOMAIN, 2);
    expect(r.iommu.translate(2, 0x10000, 4, false)).toBe(-1);
    expect(r.iommu.translate(1, 0x10000, 4, false)).toBe(0x40000);
    r.invalidate(DOMAIN, 1);
    expect(r.iommu.translate(1, 0x13000, 4, false)).toBe(-1);
  });

  it("completes a slow invalidation later: IVT busy, old entries live until then", () => {
    const r = rig({ invalidateNs: 500 });
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    const pte = r.mapPage(root, 0x8000, 0x30000, P | RD | WR);
    r.iommu.translate(1, 0x8000, 4, false);
    r.put64(pte, 0);
    r.invalidate(GLOBAL);
    expect(r.rd(INV_CMD)).toBe((IVT + GLOBAL) >>> 0);
    expect(r.rd(INV_STATUS)).toBe(0);
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(0x30000);
    r.wr(INV_CMD, IVT + GLOBAL); // while busy: ignored
    expect(r.log.errors).toHaveLength(1);
    r.scheduler.runFor(500);
    expect(r.rd(INV_CMD)).toBe(GLOBAL);
    expect(r.rd(INV_STATUS)).toBe(1);
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(-1);
    r.wr(INV_CMD, GLOBAL); // no IVT
    r.wr(INV_CMD, IVT); // scope 0
    expect(r.log.errors).toHaveLength(3);
  });

  it("a register read at a CPU time past the completion sees a slow invalidation done before its event ran", () => {
    const r = rig({ invalidateNs: 500 });
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    r.mapPage(root, 0x8000, 0x30000, P | RD | WR);
    r.iommu.translate(1, 0x8000, 4, false);
    r.invalidate(GLOBAL);
    // A polling driver: its CPU clock runs ahead of the event queue.
    expect(r.scheduler.runAt(r.scheduler.now + 499, () => r.rd(INV_STATUS))).toBe(0);
    expect(r.scheduler.runAt(r.scheduler.now + 500, () => r.rd(INV_STATUS))).toBe(1);
    expect(r.rd(INV_CMD)).toBe(GLOBAL); // IVT clear
    expect(r.iommu.iotlb.occupancy).toBe(0);
    r.scheduler.runFor(1000); // the cancelled event does nothing more
    expect(r.iommu.stats.invalidations).toBe(1);
    expect(r.log.errors).toHaveLength(0);
  });

  it("evicts LRU within a small set-associative IOTLB", () => {
    const r = rig({ iotlbEntries: 4, iotlbWays: 2 });
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    for (let i = 0; i < 16; i++) r.mapPage(root, i * KiB4, 0x100000 + i * KiB4, P | RD);
    for (let i = 0; i < 16; i++) expect(r.iommu.translate(1, i * KiB4, 4, false)).toBe(0x100000 + i * KiB4);
    expect(r.iommu.iotlb.occupancy).toBe(4);
    expect(r.iommu.stats.misses).toBe(16);
  });
});

describe("iommu isolation", () => {
  it("keeps two requesters in different domains out of each other's pages", () => {
    const r = rig();
    const rootA = r.newRoot();
    const rootB = r.newRoot();
    r.ctx(0x08, XLATE, 1, rootA);
    r.ctx(0x10, XLATE, 2, rootB);
    r.mapPage(rootA, 0x1000, 0x300000, P | RD | WR);
    r.mapPage(rootB, 0x1000, 0x400000, P | RD | WR);
    r.mapPage(rootB, 0x2000, 0x401000, P | RD | WR);
    expect(r.iommu.translate(0x08, 0x1000, 4, true)).toBe(0x300000);
    expect(r.iommu.translate(0x10, 0x1000, 4, true)).toBe(0x400000); // same IOVA, own page
    expect(r.iommu.translate(0x08, 0x2000, 4, false)).toBe(-1); // B's IOVA is not A's
    expect(r.iommu.translate(0x08, 0x401000, 4, false)).toBe(-1); // nor B's physical address
    expect(r.iommu.translate(0x10, 0x300000, 4, true)).toBe(-1);
    expect(r.faults.map((f) => [f.requesterId, f.did])).toEqual([[0x08, 1], [0x08, 1], [0x10, 2]]);
  });
});

describe("iommu walk coherency", () => {
  const cpuWrittenPte = (coherentWalk: boolean): number => {
    const r = rig({ coherentWalk });
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    const pte = r.mapPage(root, 0x8000, 0x30000, P | RD);
    // The driver updates the entry through the CPU cache, without cleaning it.
    r.mem.cpuStore(0, pte, 0x50000 + P + RD, 8, MEM_CACHED);
    return r.iommu.translate(1, 0x8000, 4, false);
  };

  it("sees CPU-cached table updates only when its walks snoop", () => {
    expect(cpuWrittenPte(true)).toBe(0x50000);
    expect(cpuWrittenPte(false)).toBe(0x30000);
  });
});

describe("iommu reset", () => {
  it("returns registers to reset values, empties the IOTLB and drops the line", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    r.mapPage(root, 0x8000, 0x30000, P | RD);
    r.iommu.translate(1, 0x8000, 4, false);
    r.wr(FECTL, IE);
    r.iommu.translate(1, 0x9000, 4, false);
    expect(r.line()).toBe(1);
    r.iommu.reset();
    expect(r.line()).toBe(0);
    expect([GCMD, GSTS, FSTS, FECTL, INV_STATUS].map((o) => r.rd(o))).toEqual([0, 0, 0, 0, 0]);
    expect(r.rd(CTX_BASE, 8)).toBe(0);
    expect(r.iommu.iotlb.occupancy).toBe(0);
    expect(r.info(0).f).toBe(false);
  });
});

describe("iommu context and paging-structure caches (SPEC.md sections 3 and 4.4)", () => {
  it("a new context entry is used at once, a changed one only after a DOMAIN or GLOBAL invalidation", () => {
    const r = rig();
    const a = r.newRoot();
    const b = r.newRoot();
    r.mapPage(a, 0x8000, 0x30000, P | RD | WR);
    r.mapPage(b, 0x8000, 0x50000, P | RD | WR);
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(-1); // no context: faults, not cached
    r.ctx(1, XLATE, 1, a);
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(0x30000);
    r.ctx(1, XLATE, 2, b); // moved to domain 2 in RAM only
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(0x30000);
    r.invalidate(DOMAIN, 1);
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(0x50000);
    r.ctx(1, BLOCKED, 2, b);
    r.invalidate(RANGE, 2, 0x8000, 1); // drops the IOTLB entry but leaves the cached context
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(0x50000); // walked again, still translated
    r.invalidate(GLOBAL);
    const before = r.iommu.stats.faults;
    expect(r.iommu.translate(1, 0x8000, 4, false)).toBe(-1);
    expect(r.iommu.stats.faults).toBe(before + 1);
  });

  it("an IOTLB miss under a known level-1 table reads one entry; a range invalidation forgets the table", () => {
    const r = rig();
    const root = r.newRoot();
    r.ctx(1, XLATE, 1, root);
    r.mapPage(root, 0x200000, 0x30000, P | RD | WR);
    r.mapPage(root, 0x201000, 0x31000, P | RD | WR);
    r.iommu.translate(1, 0x200000, 4, false);
    expect(r.iommu.stats.walkReads).toBe(4);
    expect(r.iommu.translate(1, 0x201000, 4, false)).toBe(0x31000);
    expect(r.iommu.stats).toMatchObject({ walkReads: 5, pscHits: 1 });
    r.invalidate(RANGE, 1, 0x3ff000, 1); // the frame's last page: drops the cached table
    r.invalidate(RANGE, 1, 0x201000, 1);
    expect(r.iommu.translate(1, 0x201000, 4, false)).toBe(0x31000);
    expect(r.iommu.stats).toMatchObject({ walkReads: 9, pscHits: 1 });
  });
});
