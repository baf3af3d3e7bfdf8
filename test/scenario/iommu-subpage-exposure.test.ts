/**
 * iommu-subpage-exposure: a trusted and an untrusted rogue device side by side, each with a
 * 256-byte buffer whose page holds a kernel secret. Behind a translating IOMMU the trusted one
 * reads the secret through its IOVA page, the untrusted one (bounced into a zero-padded swiotlb
 * slot) reads its buffer and zeros; without an IOMMU both read the secret. Deterministic for a
 * seed; clean teardown.
 */
import { describe, expect, it } from "vitest";
import { iommuSubpageExposureScenario } from "../../scenarios/iommu-subpage-exposure.ts";
import { findScenario } from "../../scenarios/index.ts";
import { cli } from "../fixtures/cli.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { expectSameReplay, machine, scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(iommuSubpageExposureScenario);
const T = "0000:00:05.0 (trusted)";
const U = "0000:00:06.0 (untrusted)";

describe("iommu-subpage-exposure scenario", () => {
  for (const profile of ["x86-iommu", "arm64-iommu"]) {
    it(`${profile}: the trusted device reads the neighbour's secret, the untrusted one only its buffer and zeros`, async () => {
      const r = await run(machine(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      const res = r.report.results;
      expect(res[`${T}: secret leaked`]).toBe(true);
      expect(res[`${U}: secret leaked`]).toBe(false);
      expect(res[`${U}: non-zero bytes outside the buffer`]).toBe(0);
      expect(res[`${T}: non-zero bytes outside the buffer`] as number).toBeGreaterThan(200);
      expect(r.report.findings.map((f) => [f.kind, f.device])).toEqual([
        ["device-access-unmapped", "0000:00:05.0"],
        ["device-access-unmapped", "0000:00:06.0"],
      ]);
      expect(r.report.stats.dma.swiotlb_maps).toBe(1); // the untrusted device's buffer, only
      expect(r.report.claim).toMatch(/the trusted device reads the secret, while the untrusted one's buffer is bounced/);
      expectCleanTeardown(r);
    });
  }

  it("--iommu strict: the same (untrusted devices are always strict and bounced)", async () => {
    const r = await run(machine("x86-iommu", (d) => (d.iommu!.policy = "strict")));
    expect(r.report.ok).toBe(true);
    expect(r.report.results[`${U}: secret leaked`]).toBe(false);
    expectCleanTeardown(r);
  });

  it("passthrough: the trusted device is identity-mapped and reads the secret; the untrusted one is still translated and bounced", async () => {
    const r = await run(machine("x86-iommu", (d) => (d.iommu!.policy = "passthrough")));
    expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.report.results[`${T}: secret leaked`]).toBe(true);
    expect(r.report.results[`${U}: secret leaked`]).toBe(false);
    expect(r.report.claim).toMatch(/the untrusted one still gets a strict translated domain/);
    expectCleanTeardown(r);
  });

  for (const [label, m] of [
    ["no IOMMU", machine("x86-coherent")],
    ["policy off", machine("x86-iommu", (d) => (d.iommu!.policy = "off"))],
  ] as const) {
    it(`${label}: bus addresses are physical, nothing bounces, both devices read the secret`, async () => {
      const r = await run(m);
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.results[`${T}: secret leaked`]).toBe(true);
      expect(r.report.results[`${U}: secret leaked`]).toBe(true);
      expect(r.report.claim).toMatch(/every device reads the secret/);
      expectCleanTeardown(r);
    });
  }

  it("machineFor adds two rogues, the second untrusted; a machine that lists rogues is kept", () => {
    const m = iommuSubpageExposureScenario.machineFor!(machine("x86-iommu"));
    expect(m.pci.devices.filter((d) => d.model === "rogue").map((d) => [d.slot, d.untrusted ?? false])).toEqual([[5, false], [6, true]]);
    expect(iommuSubpageExposureScenario.machineFor!(m)).toBe(m);
  });

  it("is deterministic for a seed, and holds for other seeds", async () => {
    const a = await run(machine("x86-iommu"), 7);
    const b = await run(machine("x86-iommu"), 7);
    expectSameReplay(a, b);
    for (const seed of [2, 42]) expect((await run(machine("arm64-iommu"), seed)).report.ok, `seed ${seed}`).toBe(true);
  });

  it("is registered, defaults to x86-iommu and runs from the CLI with exit 0", async () => {
    expect(findScenario("iommu-subpage-exposure")).toBe(iommuSubpageExposureScenario);
    expect(iommuSubpageExposureScenario.defaultMachine).toBe("x86-iommu");
    expect((await cli("run", "iommu-subpage-exposure", "--log-level", "silent")).code).toBe(0);
  });
});
