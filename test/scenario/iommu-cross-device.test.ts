/**
 * iommu-cross-device: device A's firmware goes after device B's buffers; with per-device
 * domains it reaches nothing of B's, without an IOMMU it reads and overwrites them.
 */

import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import { iommuCrossDeviceScenario as scenario } from "../../scenarios/iommu-cross-device.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(scenario);

describe("iommu-cross-device", () => {
  for (const profile of ["x86-coherent", "arm64-noncoherent"]) {
    it(`without an IOMMU, A reads and overwrites B's buffers on ${profile}`, async () => {
      const r = await run(getProfile(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.results["b-bytes-leaked-reads"]).toBe(4);
      expect(r.report.results["writes-accepted"]).toBe(4);
      expect(r.report.checks.find((c) => c.name === "b-data-intact")).toMatchObject({ expected: false, actual: false });
      expect(new Set(r.report.findings.map((f) => f.kind))).toEqual(new Set(["device-access-unmapped"]));
      expectCleanTeardown(r);
    });
  }

  for (const profile of ["x86-iommu", "arm64-iommu"]) {
    it(`with the IOMMU translating on ${profile}, A reaches nothing of B's and B's data is intact`, async () => {
      const r = await run(getProfile(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.results["b-bytes-leaked-reads"]).toBe(0);
      expect(r.report.checks.find((c) => c.name === "b-data-intact")).toMatchObject({ expected: true, actual: true });
      const faults = r.report.findings.filter((f) => f.kind === "iommu-fault");
      expect(faults.length).toBe(r.report.results.faulted);
      expect(faults.every((f) => f.device === "0000:00:05.0")).toBe(true);
      expectCleanTeardown(r);
    });
  }

  it("is deterministic for a seed", async () => {
    const a = await run(getProfile("arm64-iommu"), 3);
    const b = await run(getProfile("arm64-iommu"), 3);
    expect(JSON.stringify(a.report)).toBe(JSON.stringify(b.report));
  });
});
