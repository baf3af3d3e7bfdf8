import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { FQ_SIZE, FQ_TIMEOUT_MS, FlushQueue } from "../../../../kernel/iommu/flush-queue.ts";
import { IovaDomain } from "../../../../kernel/iommu/iova.ts";

function rig() {
  const { kernel, platform } = bareKernel();
  const iovad = new IovaDomain();
  const log: string[] = [];
  const fq = new FlushQueue({
    flush_all: () => log.push(`flush@${platform.now()}`),
    free: (pfn, pages, gather) => {
      log.push(`free ${pfn}+${pages} ${String(gather)}`);
      iovad.free_iova(pfn);
    },
  });
  return { kernel, platform, iovad, fq, log };
}

describe("FlushQueue", () => {
  it("flushes 10 ms of virtual time after the first entry, invalidating before freeing", async () => {
    const { kernel, platform, iovad, fq, log } = rig();
    let p1 = -1;
    kernel.exec.runOn(0, "process", "drv", "unmap", () => {
      p1 = iovad.alloc_iova(1, 0xfff);
      fq.queue_iova(p1, 1, "g1");
    });
    platform.at(3e6, "second", () => {
      kernel.exec.runOn(0, "softirq", "drv", "unmap2", () => fq.queue_iova(iovad.alloc_iova(1, 0xfff), 1, "g2"));
    });
    expect(fq.timer_armed).toBe(true);
    await kernel.run({ untilNs: 9.9e6 });
    expect(log).toEqual([]);
    expect(fq.holds(p1)).toBe(true);
    expect(iovad.count).toBe(2); // not reusable yet
    await kernel.run({ untilNs: 20e6 });
    expect(log[0]).toBe(`flush@${FQ_TIMEOUT_MS * 1e6}`);
    expect(log.slice(1)).toEqual([`free ${p1}+1 g1`, `free ${p1 - 1}+1 g2`]);
    expect(fq.length).toBe(0);
    expect(iovad.count).toBe(0);
    expect(fq.stats.flushes_timer).toBe(1);
  });

  it("flushes at once when it holds 256 entries, and the timer goes with it", () => {
    const { kernel, iovad, fq, log } = rig();
    kernel.exec.runOn(0, "process", "drv", "unmap", () => {
      for (let i = 0; i < FQ_SIZE - 1; i++) fq.queue_iova(iovad.alloc_iova(1, 0xffff), 1, null);
      expect(log).toEqual([]);
      fq.queue_iova(iovad.alloc_iova(1, 0xffff), 1, null);
    });
    expect(log.filter((l) => l.startsWith("flush"))).toHaveLength(1);
    expect(log.filter((l) => l.startsWith("free"))).toHaveLength(FQ_SIZE);
    expect(log[0].startsWith("flush")).toBe(true);
    expect(fq.timer_armed).toBe(false);
    expect(fq.stats.flushes_full).toBe(1);
    expect(iovad.count).toBe(0);
  });

  it("never lets a queued IOVA be allocated again before the flush", () => {
    const { kernel, iovad, fq } = rig();
    kernel.exec.runOn(0, "process", "drv", "unmap", () => {
      const seen = new Set<number>();
      for (let i = 0; i < 100; i++) {
        const p = iovad.alloc_iova(1, 0x3ff);
        expect(seen.has(p)).toBe(false);
        seen.add(p);
        fq.queue_iova(p, 1, null);
      }
      fq.flush();
      expect(iovad.alloc_iova(1, 0x3ff)).toBe(0x3ff);
    });
  });

  it("destroy (the domain is being freed) cancels the timer and drops the queue without a flush", async () => {
    const { kernel, iovad, fq, log } = rig();
    kernel.exec.runOn(0, "process", "drv", "unmap", () => fq.queue_iova(iovad.alloc_iova(1, 0xfff), 1, "g"));
    expect(fq.timer_armed).toBe(true);
    fq.destroy();
    expect(fq.timer_armed).toBe(false);
    expect(fq.length).toBe(0);
    await kernel.run({ untilNs: 20e6 });
    expect(log).toEqual([]);
    expect(fq.stats.flushes_timer).toBe(0);
  });

  it("an explicit flush of an empty queue does nothing", () => {
    const { kernel, fq, log } = rig();
    kernel.exec.runOn(0, "process", "drv", "x", () => fq.flush());
    expect(log).toEqual([]);
  });
});
