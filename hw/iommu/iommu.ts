/**
 * The IOMMU model: a DMA remapping unit between the DMA ports and memory (datasheet: SPEC.md).
 *
 * Theory of operation
 * - `translate` is the seam the DMA port calls for every chunk of a transfer (one 4 KiB IOVA
 *   page at most). With translation off it is the identity; otherwise it takes the
 *   requester's context from the context cache or from the context table in RAM (sections 3,
 *   4.4), then consults the IOTLB and walks the page table on a miss (section 4), all with the
 *   IOMMU's own bus-master reads.
 * - A failed translation aborts the transaction (returns -1), is written to the ring of fault
 *   records or sets the overflow bit when the ring is full, and re-evaluates the level
 *   interrupt (section 6).
 * - The IOTLB changes only through invalidation commands (section 5): stale translations after
 *   a page-table change are the modelled hardware behaviour, not a bug.
 * - Nothing here throws on guest behaviour: bad registers and broken tables are guest errors.
 * - This file is the translation path and the model's own registers; the register decode, the
 *   fault log and the invalidation interface are in register-file.ts, fault-log.ts and
 *   invalidation.ts, the interface types in iommu-types.ts.
 */

import type { DeviceContext } from "../core/device-context.ts";
import type { MemorySystem } from "../cpu/memory-system.ts";
import type { IrqLine } from "../irq/intc.ts";
import { MmioRegion, type AccessSize, type MmioOps } from "../mem/mmio.ts";
import { FaultLog } from "./fault-log.ts";
import { IommuStats, type DmaTranslator, type IommuFault, type IommuOptions } from "./iommu-types.ts";
import { Invalidation } from "./invalidation.ts";
import { Iotlb, PagingStructureCache } from "./iotlb.ts";
import * as pageWalk from "./page-walk.ts";
import type { WalkResult } from "./page-walk.ts";
import * as regs from "./iommu-regs.ts";
import { hex, RegisterFile } from "./register-file.ts";

// Copied into module constants once: V8 loads and checks an imported binding on every use and
// never folds it, while a module constant folds into the code (this runs for every DMA page).
const {
  IOMMU_CAP_SP2M,
  IOMMU_CTX_ENTRY_SIZE,
  IOMMU_CTX_MODE_MASK,
  IOMMU_CTX_MODE_SHIFT,
  IOMMU_CTX_P,
  IOMMU_FR_ADDR_WIDTH,
  IOMMU_FR_BLOCKED,
  IOMMU_FR_CTX_INVALID,
  IOMMU_FR_CTX_NOT_PRESENT,
  IOMMU_FR_CTX_TABLE,
  IOMMU_FR_NEXT_LEVEL,
  IOMMU_FR_PTE_RESERVED,
  IOMMU_FR_READ,
  IOMMU_FR_WRITE,
  IOMMU_GCMD_TE,
  IOMMU_GSTS_TES,
  IOMMU_INV_DOMAIN,
  IOMMU_INV_GLOBAL,
  IOMMU_IOVA_BITS,
  IOMMU_LARGE_SHIFT,
  IOMMU_LEVELS,
  IOMMU_MMIO_SIZE,
  IOMMU_MODE_BLOCKED,
  IOMMU_MODE_PASSTHROUGH,
  IOMMU_PAGE_SIZE,
  IOMMU_PTE_ADDR_LIMIT,
  IOMMU_REG_CAP,
  IOMMU_REG_CTX_BASE,
  IOMMU_REG_GCMD,
  IOMMU_REG_GSTS,
  IOMMU_REG_VER,
  IOMMU_VERSION,
} = regs;
const { WALK_BAD_POINTER, WALK_OK, WALK_RESERVED, walkPageTable } = pageWalk;

const TWO32 = 0x100000000;
const IOVA_LIMIT = 2 ** IOMMU_IOVA_BITS;
const LARGE_PAGE = 2 ** IOMMU_LARGE_SHIFT;
const CONTEXT_CACHE_ENTRIES = 64; // a power of two: indexed by rid & (entries - 1)
const PSC_ENTRIES = 64;

export class Iommu implements DmaTranslator {
  readonly name: string;
  readonly region: MmioRegion;
  readonly iotlb: Iotlb;
  readonly stats = new IommuStats();
  /** The fault interrupt line (level), wired by the board. */
  irq: IrqLine | null = null;
  /** Sees every fault, recorded or dropped. */
  onFault: ((f: IommuFault) => void) | null = null;

  private readonly coherentWalk: boolean;
  private readonly regs: RegisterFile;
  private readonly faultLog = new FaultLog(() => this.updateIrq());
  private readonly inv: Invalidation;
  private readonly buf = new Uint8Array(16);
  private readonly view = new DataView(this.buf.buffer);
  /** Context cache (section 4.4): direct-mapped by requester id; tag -1 = empty. */
  private readonly ccRid = new Int32Array(CONTEXT_CACHE_ENTRIES).fill(-1);
  private readonly ccMode = new Uint8Array(CONTEXT_CACHE_ENTRIES);
  private readonly ccDid = new Uint16Array(CONTEXT_CACHE_ENTRIES);
  private readonly ccRoot = new Float64Array(CONTEXT_CACHE_ENTRIES);
  private readonly psc = new PagingStructureCache(PSC_ENTRIES);
  private readonly walk = new pageWalk.WalkResult();
  private readonly pscPerm = new Uint8Array(1);
  private readonly readPteFn = (addr: number): number | null => this.readPte(addr);
  /** The context readContext found (valid when it returned 0). */
  private curMode = 0;
  private curDid = 0;
  private curRoot = 0;

  private gcmd = 0;
  private ctxBase = 0;

  constructor(
    private readonly ctx: DeviceContext,
    private readonly mem: MemorySystem,
    opts: IommuOptions = {},
  ) {
    this.name = opts.name ?? "iommu";
    const ways = opts.iotlbWays ?? 4;
    const entries = opts.iotlbEntries ?? 64;
    if (ways > 255 || entries > 0xffff) throw new RangeError(`${this.name}: IOTLB of ${entries} entries / ${ways} ways does not fit CAP`);
    this.iotlb = new Iotlb(entries, ways);
    this.coherentWalk = opts.coherentWalk ?? true;
    this.regs = new RegisterFile(ctx.log, this.name);
    this.inv = new Invalidation(ctx, this.name, opts.invalidateNs ?? 0, (scope, did, first, pages) => this.invalidate(scope, did, first, pages));
    this.defineRegisters();
    const ops: MmioOps = {
      read: (off, size) => this.mmioRead(off, size, false),
      write: (off, value, size) => this.mmioWrite(off, value, size),
      peek: (off, size) => this.mmioRead(off, size, true),
    };
    this.region = new MmioRegion(`${this.name}-mmio`, IOMMU_MMIO_SIZE, ops, [4, 8]);
  }

  /** Is translation on (GSTS.TES)? */
  get enabled(): boolean {
    return (this.gcmd & IOMMU_GCMD_TE) !== 0;
  }

  /**
   * translate - translate one device access (SPEC.md sections 3 and 4).
   * Context: called by a DMA port for each chunk of a transfer, never across a 4 KiB IOVA page.
   * Returns: the physical address, or -1 when the access is aborted (fault recorded or dropped).
   */
  translate(requesterId: number, iova: number, len: number, isWrite: boolean): number {
    const n = Math.max(len, 1);
    // No `%` on addresses here: above 2^31 they are doubles, and a double modulo is a slow
    // library call in V8 (this runs for every page a device touches).
    if (iova - Math.floor(iova / IOMMU_PAGE_SIZE) * IOMMU_PAGE_SIZE + n > IOMMU_PAGE_SIZE) {
      throw new RangeError(`${this.name}: translate of ${len} bytes at 0x${iova.toString(16)} crosses a 4 KiB IOVA page (the port must split)`);
    }
    const stats = this.stats;
    stats.translations++;
    if ((this.gcmd & IOMMU_GCMD_TE) === 0) return iova;

    // The context cache's hit path inline (it runs for every page a device touches).
    const slot = requesterId & (CONTEXT_CACHE_ENTRIES - 1);
    let mode: number;
    let did: number;
    if (this.ccRid[slot] === requesterId) {
      stats.contextHits++;
      mode = this.ccMode[slot]!;
      did = this.ccDid[slot]!;
      this.curRoot = this.ccRoot[slot]!;
    } else {
      const why = this.readContext(requesterId);
      if (why !== 0) return this.fault(requesterId, iova, isWrite, why, false, 0);
      mode = this.curMode;
      did = this.curDid;
    }
    if (mode === IOMMU_MODE_PASSTHROUGH) return iova;
    if (mode === IOMMU_MODE_BLOCKED) return this.fault(requesterId, iova, isWrite, IOMMU_FR_BLOCKED, false, did);
    if (iova + n > IOVA_LIMIT) return this.fault(requesterId, iova, isWrite, IOMMU_FR_ADDR_WIDTH, false, did);

    let e = this.iotlb.lookup(did, iova);
    if (e) {
      this.stats.hits++;
    } else {
      this.stats.misses++;
      this.stats.walks++;
      const w = this.walkFor(did, iova);
      if (w.status !== WALK_OK) {
        if (w.status === WALK_BAD_POINTER) {
          this.ctx.log.error(this.name, `RID 0x${hex(requesterId)}: level-${w.level} page table at 0x${hex(w.addr)} is not RAM`);
          return this.fault(requesterId, iova, isWrite, IOMMU_FR_NEXT_LEVEL, false, did);
        }
        if (w.status === WALK_RESERVED) {
          this.ctx.log.error(this.name, `RID 0x${hex(requesterId)}: PS set in a level-${w.level} entry (0x${hex(w.entry)})`);
          return this.fault(requesterId, iova, isWrite, IOMMU_FR_PTE_RESERVED, false, did);
        }
        return this.fault(requesterId, iova, isWrite, isWrite ? IOMMU_FR_WRITE : IOMMU_FR_READ, false, did);
      }
      e = this.iotlb.insert(did, Math.floor(iova / (w.shift === 12 ? 4096 : LARGE_PAGE)), w.shift, w.phys, w.canRead, w.canWrite);
    }
    if (isWrite ? !e.canWrite : !e.canRead) {
      return this.fault(requesterId, iova, isWrite, isWrite ? IOMMU_FR_WRITE : IOMMU_FR_READ, true, did);
    }
    const size = e.shift === 12 ? 4096 : LARGE_PAGE;
    return e.phys + (iova - Math.floor(iova / size) * size);
  }

  /** Walk for (did, iova) from the current context's root, resuming at a cached level-1 table when there is one. */
  private walkFor(did: number, iova: number): WalkResult {
    const frame = Math.floor(iova / 2 ** IOMMU_LARGE_SHIFT);
    const l1 = this.psc.lookup(did, frame, this.pscPerm);
    if (l1 >= 0) {
      this.stats.pscHits++;
      const p = this.pscPerm[0]!;
      return walkPageTable(this.readPteFn, l1, iova, this.walk, 1, (p & 1) !== 0, (p & 2) !== 0);
    }
    const w = walkPageTable(this.readPteFn, this.curRoot, iova, this.walk);
    if (w.l1Table >= 0 && (w.status === WALK_OK || w.level === 1)) this.psc.insert(did, frame, w.l1Table, w.upperRead, w.upperWrite);
    return w;
  }

  /** Reset (SPEC.md section 8). */
  reset(): void {
    this.inv.reset();
    this.gcmd = this.ctxBase = 0;
    this.faultLog.reset();
    this.iotlb.invalidateAll();
    this.psc.invalidateAll();
    this.flushContextCache();
    this.updateIrq();
  }

  // ---------------------------------------------------------------- context and walk reads

  /**
   * Load the requester's context into curMode / curDid / curRoot: from the context cache, or
   * from RAM (then cached; entries that fault are not cached). Returns 0, or the fault reason.
   */
  private readContext(rid: number): number {
    const slot = rid & (CONTEXT_CACHE_ENTRIES - 1);
    if (this.ccRid[slot] === rid) {
      this.stats.contextHits++;
      this.curMode = this.ccMode[slot]!;
      this.curDid = this.ccDid[slot]!;
      this.curRoot = this.ccRoot[slot]!;
      return 0;
    }
    const entries = 256 << Math.min(this.ctxBase % 16, 8);
    if (!(Number.isInteger(rid) && rid >= 0 && rid < entries)) return IOMMU_FR_CTX_NOT_PRESENT;
    const base = this.ctxBase - (this.ctxBase % IOMMU_PAGE_SIZE);
    const addr = base + rid * IOMMU_CTX_ENTRY_SIZE;
    this.stats.contextReads++;
    if (!this.mem.walkerRead(addr, this.buf, 0, 16, this.coherentWalk)) {
      this.ctx.log.error(this.name, `RID 0x${hex(rid)}: context entry at 0x${hex(addr)} is not RAM (CTX_BASE 0x${hex(this.ctxBase)})`);
      return IOMMU_FR_CTX_TABLE;
    }
    this.stats.walkReadBytes += 16;
    const lo = this.view.getUint32(0, true);
    const q0 = lo + this.view.getUint32(4, true) * TWO32;
    const did = this.view.getUint32(8, true) & 0xffff;
    if (!(lo & IOMMU_CTX_P)) return IOMMU_FR_CTX_NOT_PRESENT;
    const mode = (lo >>> IOMMU_CTX_MODE_SHIFT) & IOMMU_CTX_MODE_MASK;
    if (mode === 3) {
      this.ctx.log.error(this.name, `RID 0x${hex(rid)}: context entry has reserved mode 3`);
      return IOMMU_FR_CTX_INVALID;
    }
    this.curMode = mode;
    this.curDid = did;
    this.curRoot = (q0 % IOMMU_PTE_ADDR_LIMIT) - (lo % IOMMU_PAGE_SIZE);
    this.ccRid[slot] = rid;
    this.ccMode[slot] = mode;
    this.ccDid[slot] = did;
    this.ccRoot[slot] = this.curRoot;
    return 0;
  }

  /** Forget every cached context (DOMAIN and GLOBAL invalidations, CTX_BASE and TE changes, reset). */
  private flushContextCache(): void {
    this.ccRid.fill(-1);
  }

  private readPte(addr: number): number | null {
    this.stats.walkReads++;
    if (!this.mem.walkerRead(addr, this.buf, 0, 8, this.coherentWalk)) return null;
    this.stats.walkReadBytes += 8;
    return this.view.getUint32(0, true) + this.view.getUint32(4, true) * TWO32;
  }

  // ---------------------------------------------------------------- faults (section 6)

  private fault(rid: number, iova: number, isWrite: boolean, reason: number, pr: boolean, did: number): number {
    this.stats.faults++;
    const recorded = this.faultLog.record(rid, iova, isWrite, reason, pr, did);
    if (!recorded) this.stats.faultsDropped++;
    this.updateIrq();
    this.onFault?.({ timeNs: this.ctx.scheduler.now, requesterId: rid, iova, isWrite, reason, pagePresent: pr, did, recorded });
    return -1;
  }

  private updateIrq(): void {
    this.irq?.set(this.faultLog.irqLevel);
  }

  // ---------------------------------------------------------------- invalidation (section 5)

  /** Drop what a completed invalidation command names from the IOMMU's caches. */
  private invalidate(scope: number, did: number, first: number, pages: number): void {
    if (scope === IOMMU_INV_GLOBAL) {
      this.iotlb.invalidateAll();
      this.psc.invalidateAll();
      this.flushContextCache();
    } else if (scope === IOMMU_INV_DOMAIN) {
      this.iotlb.invalidateDomain(did);
      this.psc.invalidateDomain(did);
      // Context entries name domains; a domain-wide invalidation is when drivers change them.
      this.flushContextCache();
    } else {
      this.iotlb.invalidateRange(did, first, pages);
      this.psc.invalidateRange(did, first, pages);
    }
    this.stats.invalidations++;
  }

  // ---------------------------------------------------------------- registers (section 1)

  /** The model's own registers, then those of its fault log and invalidation interface. */
  private defineRegisters(): void {
    const rf = this.regs;
    const cap = 0x8 | (IOMMU_LEVELS << 8) | (IOMMU_IOVA_BITS << 12) | IOMMU_CAP_SP2M;
    const capLo = (cap | (this.iotlb.ways << 24)) >>> 0;
    rf.set(IOMMU_REG_VER, rf.ro("VER", () => IOMMU_VERSION));
    rf.set(IOMMU_REG_CAP, rf.ro("CAP", () => capLo, true, () => this.iotlb.entries));
    rf.set(IOMMU_REG_GCMD, {
      wide: false,
      read: () => [this.gcmd, 0],
      write: (lo) => {
        this.gcmd = rf.reserved("GCMD", lo!, IOMMU_GCMD_TE);
        this.flushContextCache();
      },
    });
    rf.set(IOMMU_REG_GSTS, rf.ro("GSTS", () => this.gcmd & IOMMU_GSTS_TES));
    rf.set(IOMMU_REG_CTX_BASE, {
      wide: true,
      read: () => [this.ctxBase % TWO32, Math.floor(this.ctxBase / TWO32)],
      write: (lo, hi) => {
        const l = lo === null ? this.ctxBase % TWO32 : rf.reserved("CTX_BASE", lo, 0xfffff00f) >>> 0;
        const h = hi === null ? Math.floor(this.ctxBase / TWO32) : rf.reserved("CTX_BASE (high)", hi, 0xfffff) >>> 0;
        this.ctxBase = l + h * TWO32;
        this.flushContextCache();
      },
    });
    this.faultLog.defineRegisters(rf);
    this.inv.defineRegisters(rf);
  }

  private mmioRead(off: number, size: AccessSize, quiet: boolean): number {
    if (!quiet) this.inv.settle();
    return this.regs.read(off, size, quiet);
  }

  private mmioWrite(off: number, value: number, size: AccessSize): void {
    this.inv.settle();
    this.regs.write(off, value, size);
  }
}
