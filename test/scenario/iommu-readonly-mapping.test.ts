/**
 * iommu-readonly-mapping: device writes into a DMA_TO_DEVICE mapping fault with reason 0x05
 * behind a translating IOMMU and land without one.
 */

import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import { iommuReadonlyMappingScenario as scenario } from "../../scenarios/iommu-readonly-mapping.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(scenario);

describe("iommu-readonly-mapping", () => {
  for (const profile of ["x86-coherent", "arm64-noncoherent"]) {
    it(`without an IOMMU the writes land on ${profile}, and the claim says so`, async () => {
      const r = await run(getProfile(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.claim).toMatch(/writes land/);
      expect(r.report.results["engine-write-result"]).toBe(0);
      expect(r.report.results["firmware-write-accepted"]).toBe(true);
      expect(r.report.results.findings).toBe("(none)");
      expectCleanTeardown(r);
    });
  }

  for (const profile of ["x86-iommu", "arm64-iommu"]) {
    it(`with the IOMMU translating on ${profile} both writes fault with reason 0x05 and the buffer is unchanged`, async () => {
      const r = await run(getProfile(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.results["engine-write-result"]).toBe(-5);
      expect(r.report.results["firmware-write-accepted"]).toBe(false);
      expect(r.report.results.findings).toBe("iommu-fault");
      expect(r.report.results["iommu-faults"]).toBe(2);
      expect(r.dmesg.join("\n")).toMatch(/\[DMA Write[^\]]*\] Request device \[00:05\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x05\] PTE Write access is not set/);
      expectCleanTeardown(r);
    });
  }

  it("is deterministic for a seed", async () => {
    const a = await run(getProfile("x86-iommu"), 5);
    const b = await run(getProfile("x86-iommu"), 5);
    expect(JSON.stringify(a.report)).toBe(JSON.stringify(b.report));
  });
});
