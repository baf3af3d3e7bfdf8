/**
 * The flush queue of lazy (IOMMU_DOMAIN_DMA_FQ) domains: dma-iommu.c's queue_iova,
 * fq_flush_iotlb, fq_ring_free and fq_flush_timeout (spec §9.4).
 *
 * Theory of operation
 * - In lazy mode an unmap clears the page-table entries (iommu_unmap_fast) but does not wait
 *   for the IOTLB invalidation: the IOVA range, with the gather of that unmap (page-table pages
 *   to free, in Linux), goes into this queue instead. Until the queue is flushed the IOTLB may
 *   still translate those IOVAs, so the device can still reach the old physical pages: the
 *   security window of §9.4, which is why untrusted devices never use a flush queue.
 * - The queue is flushed, one full IOTLB invalidation (iommu_flush_iotlb_all) and then every
 *   queued IOVA handed back to the allocator, when it holds FQ_SIZE (256) entries, or when the
 *   kernel timer armed by the first entry after a flush fires FQ_TIMEOUT_MS (10 ms) of virtual
 *   time later. IOVAs therefore never return to the allocator before the invalidation that
 *   makes them unreachable, so no live mapping ever aliases a stale translation.
 * - One queue per domain (Linux has one ring per CPU; nothing here runs in parallel, and the
 *   newer single-queue mode is the same thing with other sizes). The queue knows nothing of the
 *   IOMMU API: its owner passes the flush and the free as callbacks.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { del_timer, mod_timer, timer_list, timer_pending, timer_setup } from "../time/timer.ts";
import { jiffies, msecs_to_jiffies } from "../time/jiffies.ts";

/** IOVA_DEFAULT_FQ_SIZE: entries that force a flush. */
export const FQ_SIZE = 256;
/** IOVA_FQ_TIMEOUT: ms of virtual time from the first queued entry to the timed flush. */
export const FQ_TIMEOUT_MS = 10;

/** What an owner does at a flush: invalidate everything, then release each queued range. */
export interface flush_queue_ops {
  /** One full IOTLB invalidation of the domain (iommu_flush_iotlb_all). */
  flush_all(): void;
  /** Give a range back to the IOVA allocator (and its gather's freelist to the page allocator). */
  free(pfn: number, pages: number, gather: unknown): void;
}

export class FlushQueue {
  /** Queued ranges: parallel arrays of FQ_SIZE slots, used as a simple stack. */
  private readonly pfn = new Float64Array(FQ_SIZE);
  private readonly pages = new Float64Array(FQ_SIZE);
  private readonly gathers: unknown[] = new Array<unknown>(FQ_SIZE).fill(null);
  private n = 0;
  private readonly timer = new timer_list();
  private timerReady = false;
  /** Counters: flushes by cause and ranges freed. */
  readonly stats = { queued: 0, flushes_full: 0, flushes_timer: 0, flushes_other: 0, freed: 0 };

  constructor(
    private readonly ops: flush_queue_ops,
    readonly size: number = FQ_SIZE,
    readonly timeout_ms: number = FQ_TIMEOUT_MS,
  ) {
    if (!(size >= 1 && size <= FQ_SIZE)) throw new RangeError(`FlushQueue: size ${size} outside 1..${FQ_SIZE}`);
  }

  /** Entries waiting for the next flush. */
  get length(): number {
    return this.n;
  }

  /** Is a timed flush armed? */
  get timer_armed(): boolean {
    return this.timerReady && timer_pending(this.timer);
  }

  /** Is IOVA pfn @pfn waiting in the queue (unmapped, not yet invalidated)? */
  holds(pfn: number): boolean {
    for (let i = 0; i < this.n; i++) if (pfn >= this.pfn[i] && pfn < this.pfn[i] + this.pages[i]) return true;
    return false;
  }

  /**
   * queue_iova - defer the release of @pages granules at @pfn until the next flush
   * @gather: the unmap's gather, handed back to ops.free after the flush
   * Context: any (as dma_unmap_*). Arms the timer if none is pending; flushes at once when the
   * queue reaches its size.
   */
  queue_iova(pfn: number, pages: number, gather: unknown, k: Kernel = current_kernel()): void {
    this.pfn[this.n] = pfn;
    this.pages[this.n] = pages;
    this.gathers[this.n] = gather;
    this.n++;
    this.stats.queued++;
    if (this.n >= this.size) {
      this.stats.flushes_full++;
      this.flush_now(k);
      return;
    }
    if (!this.timer_armed) this.arm(k);
  }

  private arm(k: Kernel): void {
    void k;
    if (!this.timerReady) {
      timer_setup(this.timer, () => this.on_timer(), 0);
      // The queue belongs to the domain, not to the driver that happened to unmap: a crashing
      // driver's timer cleanup must not strand queued IOVAs.
      this.timer._internal = true;
      this.timer._name = "timer:iommu_dma_fq_flush_timeout";
      this.timerReady = true;
    }
    mod_timer(this.timer, jiffies() + msecs_to_jiffies(this.timeout_ms));
  }

  /** fq_flush_timeout. */
  private on_timer(): void {
    this.stats.flushes_timer++;
    this.drain();
  }

  /**
   * flush_now - flush the IOTLB and release everything queued (also used at domain teardown).
   * Context: any.
   */
  flush_now(k: Kernel = current_kernel()): void {
    void k;
    if (this.timer_armed) del_timer(this.timer);
    this.drain();
  }

  /** Force a flush for a reason other than size or time (teardown, tests). */
  flush(k: Kernel = current_kernel()): void {
    if (this.n === 0) {
      if (this.timer_armed) del_timer(this.timer);
      return;
    }
    this.stats.flushes_other++;
    this.flush_now(k);
  }

  /**
   * destroy - the owning domain is being freed (iommu_dma_free_fq): cancel the timer and drop
   * the queued ranges. No flush: the domain's IOTLB entries went with it, and so does the IOVA
   * allocator the ranges would return to.
   * Context: any.
   */
  destroy(): void {
    if (this.timer_armed) del_timer(this.timer);
    for (let i = 0; i < this.n; i++) this.gathers[i] = null;
    this.n = 0;
  }

  /** fq_flush_iotlb + fq_ring_free: invalidate first, only then release the IOVAs. */
  private drain(): void {
    const n = this.n;
    this.ops.flush_all();
    this.n = 0;
    for (let i = 0; i < n; i++) {
      const g = this.gathers[i];
      this.gathers[i] = null;
      this.ops.free(this.pfn[i], this.pages[i], g);
      this.stats.freed++;
    }
  }
}
