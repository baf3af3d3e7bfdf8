/**
 * The IOMMU's invalidation interface (SPEC.md section 5): the INV_* registers, the decoding of
 * an invalidation command, and its completion, during the INV_CMD write or after the configured
 * latency on the virtual clock.
 *
 * Kept apart from the model (iommu.ts) because it is cold: it runs when a driver writes the
 * registers. What a completed command drops from the IOMMU's caches is the model's business,
 * handed in as `apply`.
 */

import type { DeviceContext } from "../core/device-context.ts";
import type { ScheduledEvent } from "../core/scheduler.ts";
import {
  IOMMU_INV_IVT,
  IOMMU_INV_SCOPE_MASK,
  IOMMU_INV_STATUS_DONE,
  IOMMU_PAGE_SIZE,
  IOMMU_REG_INV_ADDR,
  IOMMU_REG_INV_CMD,
  IOMMU_REG_INV_DID,
  IOMMU_REG_INV_PAGES,
  IOMMU_REG_INV_STATUS,
} from "./iommu-regs.ts";
import { hex, type RegisterFile } from "./register-file.ts";

const TWO32 = 0x100000000;

/** Drop what a completed command names: `scope` (IOMMU_INV_*), domain, first IOVA page, page count. */
export type InvalidateFn = (scope: number, did: number, firstPage: number, pages: number) => void;

export class Invalidation {
  private invScope = 0;
  private invBusy: ScheduledEvent | null = null;
  private invStatus = 0;
  private invDid = 0;
  private invPages = 0;
  private invAddr = 0;

  constructor(
    private readonly ctx: DeviceContext,
    private readonly name: string,
    private readonly invalidateNs: number,
    private readonly apply: InvalidateFn,
  ) {}

  /** Reset values (SPEC.md section 8): an invalidation in progress is cancelled. */
  reset(): void {
    this.ctx.scheduler.cancel(this.invBusy);
    this.invBusy = null;
    this.invScope = this.invStatus = this.invDid = this.invPages = this.invAddr = 0;
  }

  /**
   * A register access happens at the accessing CPU's time, which may be past a pending
   * invalidation's completion while its event has not run yet (the CPU is mid-way through a
   * polling loop): the access then sees the invalidation done, as it would on hardware.
   */
  settle(): void {
    const ev = this.invBusy;
    if (ev !== null && ev.callback !== null && this.ctx.scheduler.now >= ev.time) {
      const done = ev.callback;
      this.ctx.scheduler.cancel(ev);
      done();
    }
  }

  defineRegisters(rf: RegisterFile): void {
    rf.set(IOMMU_REG_INV_CMD, {
      wide: false,
      read: () => [((this.invBusy ? IOMMU_INV_IVT : 0) + this.invScope) >>> 0, 0],
      write: (lo) => this.start(lo!),
    });
    rf.set(IOMMU_REG_INV_STATUS, {
      wide: false,
      read: () => [this.invStatus, 0],
      write: (lo) => {
        if (lo! & IOMMU_INV_STATUS_DONE) this.invStatus &= ~IOMMU_INV_STATUS_DONE;
      },
    });
    rf.set(IOMMU_REG_INV_DID, {
      wide: false,
      read: () => [this.invDid, 0],
      write: (lo) => {
        this.invDid = rf.reserved("INV_DID", lo!, 0xffff);
      },
    });
    rf.set(IOMMU_REG_INV_PAGES, {
      wide: false,
      read: () => [this.invPages, 0],
      write: (lo) => {
        this.invPages = lo! >>> 0;
      },
    });
    rf.set(IOMMU_REG_INV_ADDR, {
      wide: true,
      read: () => [this.invAddr % TWO32, Math.floor(this.invAddr / TWO32)],
      write: (lo, hi) => {
        const l = lo ?? this.invAddr % TWO32;
        const h = hi === null ? Math.floor(this.invAddr / TWO32) : rf.reserved("INV_ADDR (high)", hi, 0xffff) >>> 0;
        this.invAddr = (l >>> 0) + h * TWO32;
      },
    });
  }

  private start(cmd: number): void {
    if (this.invBusy) return this.ctx.log.error(this.name, "INV_CMD written while an invalidation is in progress: ignored");
    if (!(cmd & IOMMU_INV_IVT)) return this.ctx.log.error(this.name, `INV_CMD 0x${hex(cmd)} without IVT: ignored`);
    const scope = cmd & IOMMU_INV_SCOPE_MASK;
    if (scope === 0) return this.ctx.log.error(this.name, "INV_CMD with scope 0: ignored");
    if ((cmd & ~(IOMMU_INV_SCOPE_MASK | IOMMU_INV_IVT)) !== 0) this.ctx.log.error(this.name, `INV_CMD reserved bits 0x${hex(cmd >>> 0)} dropped`);
    this.invScope = scope;
    // Parameters are latched now: rewriting them during a slow invalidation changes nothing.
    const did = this.invDid;
    const first = Math.floor(this.invAddr / IOMMU_PAGE_SIZE);
    const pages = this.invPages;
    const complete = (): void => {
      this.invBusy = null;
      this.apply(scope, did, first, pages);
      this.invStatus |= IOMMU_INV_STATUS_DONE;
    };
    if (this.invalidateNs <= 0) complete();
    else this.invBusy = this.ctx.scheduler.after(this.invalidateNs, `${this.name}:invalidate`, complete);
  }
}
