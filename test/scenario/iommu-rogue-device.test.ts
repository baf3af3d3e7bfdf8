/**
 * iommu-rogue-device: the compromised firmware's read of a kernel secret and write of a kernel
 * structure get through without an IOMMU and are stopped, logged and reported with one.
 */

import { describe, expect, it } from "vitest";
import { iommuRogueDeviceScenario as scenario } from "../../scenarios/iommu-rogue-device.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { machine, scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(scenario);

describe("iommu-rogue-device without isolation", () => {
  for (const profile of ["x86-coherent", "arm64-noncoherent"]) {
    it(`leaks the secret and corrupts the structure on ${profile}, and the report shows both`, async () => {
      const r = await run(machine(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.claim).toMatch(/^no IOMMU: /);
      const res = r.report.results;
      expect(res.leaked).toBe(res.secret);
      expect(res["struct-after"]).not.toBe(res["struct-before"]);
      expect((res["struct-after"] as string).slice(0, 16)).toBe((res["struct-before"] as string).slice(0, 16)); // only the pointer changed
      expect(res["iommu-faults"]).toBe(0);
      expect(r.report.findings.map((f) => f.kind)).toEqual(["device-access-unmapped", "device-access-unmapped"]);
      expectCleanTeardown(r);
    });
  }

  it("an IOMMU with policy passthrough isolates nothing either", async () => {
    const r = await run(machine("x86-iommu", (d) => (d.iommu!.policy = "passthrough")));
    expect(r.report.claim).toMatch(/policy passthrough: no isolation/);
    expect(r.report.ok).toBe(true);
    expect(r.report.results.leaked).toBe(r.report.results.secret);
    expectCleanTeardown(r);
  });
});

describe("iommu-rogue-device with the IOMMU translating", () => {
  for (const profile of ["x86-iommu", "arm64-iommu"]) {
    it(`every attempt faults, is logged and reported on ${profile}; nothing leaks or changes`, async () => {
      const r = await run(machine(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      const res = r.report.results;
      expect(res.leaked).toBe("(nothing)");
      expect(res["struct-after"]).toBe(res["struct-before"]);
      expect(res["device-errors"]).toBe(2);
      const faults = r.report.findings.filter((f) => f.kind === "iommu-fault");
      expect(faults.length).toBe(2);
      expect(faults.every((f) => f.device === "0000:00:05.0")).toBe(true);
      expect(r.report.findings.every((f) => f.kind === "iommu-fault")).toBe(true);
      const dmesg = r.dmesg.join("\n");
      expect(dmesg).toMatch(/DMAR: \[DMA Read[^\]]*\] Request device \[00:05\.0\] fault addr/);
      expect(dmesg).toMatch(/DMAR: \[DMA Write[^\]]*\] Request device \[00:05\.0\] fault addr/);
      expect(dmesg).toMatch(/rogue 0000:00:05\.0: device reported a refused DMA/);
      expectCleanTeardown(r);
    });
  }

  it("is deterministic for a seed", async () => {
    const a = await run(machine("x86-iommu"), 7);
    const b = await run(machine("x86-iommu"), 7);
    expect(JSON.stringify(a.report)).toBe(JSON.stringify(b.report));
    expect(a.dmesg).toEqual(b.dmesg);
  });
});
