/**
 * iommu-stale-iotlb: a driver using the IOMMU API directly unmaps with iommu_unmap_fast() and
 * never syncs. Behind a translating IOMMU (lazy x86, strict arm64: an UNMANAGED domain ignores
 * the policy) the device reads and corrupts the page the kernel reused and the finding names
 * iommu_iotlb_sync(); iommu_unmap() makes the same accesses fault. Without a translating IOMMU
 * the driver gets -ENODEV. Deterministic for a seed; clean teardown.
 */
import { describe, expect, it } from "vitest";
import { iommuStaleIotlbScenario } from "../../scenarios/iommu-stale-iotlb.ts";
import { findScenario } from "../../scenarios/index.ts";
import { cli } from "../fixtures/cli.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { expectSameReplay, machine, scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(iommuStaleIotlbScenario);

describe("iommu-stale-iotlb scenario", () => {
  for (const profile of ["x86-iommu", "arm64-iommu"]) {
    it(`${profile}: the forgotten sync leaks and corrupts the reused page, the finding names iommu_iotlb_sync(); iommu_unmap() faults`, async () => {
      const r = await run(machine(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect([...new Set(r.report.findings.map((f) => f.kind))].sort()).toEqual(["iommu-fault", "stale-iotlb-access"]);
      const [stale] = r.report.findings.filter((f) => f.kind === "stale-iotlb-access");
      expect(stale).toMatchObject({ driver: "iommu_demo", device: "0000:00:05.0", severity: "error" });
      expect(stale.details).toMatchObject({ access: "read", iova_page: "0x100000", domain_type: "UNMANAGED", table_maps_to: "none", page_state: "page block" });
      expect(stale.fix).toBe("Call iommu_iotlb_sync() (or use iommu_unmap()) before the pages are reused: iommu_unmap_fast() only clears the page table, the IOTLB keeps translating.");
      expect(stale.message).toMatch(/^device read of 64 byte\(s\) through a stale IOTLB entry: IOVA 0x100000 reached phys 0x[0-9a-f]+, but the UNMANAGED domain's page table no longer maps it/);
      // strict unmap: both accesses fault at the second IOVA, nothing else does
      const faults = r.report.findings.filter((f) => f.kind === "iommu-fault");
      expect(faults.map((f) => [f.details!.access, f.details!.iova])).toEqual([["read", "0x200000"], ["write", "0x200040"]]);
      expect(r.dmesg.some((l) => l.includes("IOMMU-STALE: iommu_demo 0000:00:05.0: device read"))).toBe(true);
      expect(r.dmesg.some((l) => /DMAR: \[DMA Read\] Request device \[00:05\.0\] fault addr 0x200000/.test(l))).toBe(true);
      expect(r.report.results["nosync: corrupted bytes"] as number).toBeGreaterThan(0);
      expect(r.report.claim).toMatch(/UNMANAGED domain \(the policy does not apply to it\)/);
      expectCleanTeardown(r);
    });
  }

  for (const policy of ["strict", "passthrough"] as const) {
    it(`the policy makes no difference to an UNMANAGED domain: --iommu ${policy} shows the same`, async () => {
      const r = await run(machine("x86-iommu", (d) => (d.iommu!.policy = policy)));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.findings.filter((f) => f.kind === "stale-iotlb-access").length).toBe(1);
      expect(r.report.claim).toMatch(new RegExp(`^IOMMU up \\(policy ${policy}\\)`));
      expectCleanTeardown(r);
    });
  }

  for (const [label, m] of [
    ["no IOMMU", machine("x86-coherent")],
    ["policy off", machine("x86-iommu", (d) => (d.iommu!.policy = "off"))],
  ] as const) {
    it(`${label}: no paging domain for the driver (-ENODEV), no findings`, async () => {
      const r = await run(m);
      expect(r.report.ok).toBe(true);
      expect(r.report.checks.find((c) => c.name === "domain")).toMatchObject({ expected: -19, actual: -19 });
      expect(r.report.findings).toEqual([]);
      expect(r.report.claim).toMatch(/iommu_paging_domain_alloc\(\) fails with -ENODEV/);
      expectCleanTeardown(r);
    });
  }

  it("is deterministic for a seed, and holds for other seeds", async () => {
    const a = await run(machine("x86-iommu"), 7);
    const b = await run(machine("x86-iommu"), 7);
    expectSameReplay(a, b);
    for (const seed of [2, 42]) expect((await run(machine("x86-iommu"), seed)).report.ok, `seed ${seed}`).toBe(true);
  });

  it("is registered, defaults to x86-iommu and runs from the CLI with exit 0", async () => {
    expect(findScenario("iommu-stale-iotlb")).toBe(iommuStaleIotlbScenario);
    expect(iommuStaleIotlbScenario.defaultMachine).toBe("x86-iommu");
    expect((await cli("run", "iommu-stale-iotlb", "--log-level", "silent")).code).toBe(0);
  });
});
