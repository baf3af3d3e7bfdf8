/**
 * iommu-lazy-flush-window: lazy invalidation lets a device write through an unmapped IOVA into
 * a page the kernel reused until the flush queue drains (stale-iotlb-access), then the write
 * faults; strict (arm64-iommu, --iommu strict) faults at once; without an IOMMU there is no
 * window to close. Deterministic for a seed; clean teardown.
 */
import { describe, expect, it } from "vitest";
import { iommuLazyFlushWindowScenario } from "../../scenarios/iommu-lazy-flush-window.ts";
import { findScenario } from "../../scenarios/index.ts";
import { cli } from "../fixtures/cli.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { expectSameReplay, machine, scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(iommuLazyFlushWindowScenario);
const kinds = (r: Awaited<ReturnType<typeof run>>) => [...new Set(r.report.findings.map((f) => f.kind))].sort();

describe("iommu-lazy-flush-window scenario", () => {
  it("x86-iommu (lazy): the write 1 ms after unmap corrupts the reused page; after the flush it faults", async () => {
    const r = await run(machine("x86-iommu"));
    expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.report.ok).toBe(true);
    expect(kinds(r)).toEqual(["device-access-unmapped", "iommu-fault", "stale-iotlb-access"]);
    const [stale] = r.report.findings.filter((f) => f.kind === "stale-iotlb-access");
    expect(stale).toMatchObject({ driver: "iommu_demo", device: "0000:00:05.0" });
    expect(stale.details).toMatchObject({ access: "write", domain_type: "DMA_FQ", table_maps_to: "none", page_state: "reallocated", unmapped_by: "dma_unmap_single", window_ns: 1_000_000 });
    expect(stale.fix).toBe(
      "Lazy invalidation leaves unmapped IOVAs reachable until the flush queue drains (up to 10 ms): boot with iommu.strict=1 (--iommu strict) or mark the device untrusted.",
    );
    expect(stale.message).toContain("unmapped by dma_unmap_single() at");
    expect(stale.message).toContain("its invalidation still waits in the flush queue");
    expect(stale.message).toMatch(/page now: kmalloc\(4096\) object 0x[0-9a-f]+ of the kernel/);
    const window = r.report.results["window (ns)"] as number;
    expect(window).toBeGreaterThan(1_000_000);
    expect(window).toBeLessThanOrEqual(10_000_000);
    expect(r.report.results["corrupted"]).toMatch(/^64 byte\(s\) at offset 0 of the kernel's kmalloc\(4096\) object/);
    const faults = r.report.findings.filter((f) => f.kind === "iommu-fault");
    expect(faults.length).toBe(1);
    expect(faults[0].timeNs).toBeGreaterThanOrEqual(window);
    expect(r.dmesg.some((l) => l.includes("IOMMU-STALE: iommu_demo 0000:00:05.0: device write of 64 byte(s) through a stale IOTLB entry"))).toBe(true);
    expect(r.report.claim).toMatch(/^IOMMU translating \(lazy invalidation\).*corrupts the kernel object/);
    expectCleanTeardown(r);
  });

  for (const [label, m] of [
    ["arm64-iommu (strict)", machine("arm64-iommu")],
    ["x86-iommu --iommu strict", machine("x86-iommu", (d) => (d.iommu!.policy = "strict"))],
  ] as const) {
    it(`${label}: both writes fault, nothing corrupted, window 0`, async () => {
      const r = await run(m);
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(kinds(r)).toEqual(["iommu-fault"]);
      expect(r.report.findings.length).toBe(2);
      expect(r.report.results["corrupted"]).toBe("nothing");
      expect(r.report.results["window (ns)"]).toBe(0);
      expect(r.report.claim).toMatch(/strict invalidation closed the window/);
      expectCleanTeardown(r);
    });
  }

  it("no IOMMU: both writes land, the sanitizer names the use after unmap", async () => {
    const r = await run(machine("x86-coherent"));
    expect(r.report.ok).toBe(true);
    expect(kinds(r)).toEqual(["device-access-unmapped"]);
    expect(r.report.results["corrupted"]).toMatch(/^64 byte\(s\)/);
    expect(r.report.claim).toMatch(/^no IOMMU: .*no window to close/);
    expectCleanTeardown(r);
  });

  it("is deterministic for a seed, and holds for other seeds", async () => {
    const a = await run(machine("x86-iommu"), 7);
    const b = await run(machine("x86-iommu"), 7);
    expectSameReplay(a, b);
    for (const seed of [2, 42]) expect((await run(machine("x86-iommu"), seed)).report.ok, `seed ${seed}`).toBe(true);
  });

  it("is registered, defaults to x86-iommu; the CLI exits 0 lazy and with --iommu strict", async () => {
    expect(findScenario("iommu-lazy-flush-window")).toBe(iommuLazyFlushWindowScenario);
    expect(iommuLazyFlushWindowScenario.defaultMachine).toBe("x86-iommu");
    expect((await cli("run", "iommu-lazy-flush-window", "--log-level", "silent")).code).toBe(0);
    expect((await cli("run", "iommu-lazy-flush-window", "--iommu", "strict", "--log-level", "silent")).code).toBe(0);
  });
});
