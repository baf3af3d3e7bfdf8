/** The human-readable summary: findings capped per kind, and the IOMMU line when there is one. */

import { describe, expect, it } from "vitest";
import { formatSummary } from "../../cli/summary.ts";
import { runScenario } from "../../sim/run.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import { findScenario } from "../../scenarios/index.ts";

async function report(machine: string) {
  const s = findScenario("iommu-rogue-device")!;
  return (await runScenario(s, { machine: getProfile(machine), seed: 1, trace: false, logLevel: "silent" })).report;
}

describe("formatSummary", () => {
  it("shows at most five findings of a kind and says how many more --json holds", async () => {
    const r = await report("x86-iommu");
    const f = r.findings.find((x) => x.kind === "iommu-fault")!;
    const many = { ...r, findings: Array.from({ length: 8 }, () => f) };
    const text = formatSummary(many);
    expect(text).toContain("  findings: 8\n");
    expect(text.split("\n").filter((l) => l.startsWith("    [iommu-fault]"))).toHaveLength(5);
    expect(text).toContain("    ... and 3 more [iommu-fault] (all of them in --json)\n");
  });

  it("prints the IOMMU's policy, counters and faults on a machine with one, nothing on one without", async () => {
    const on = formatSummary(await report("x86-iommu"));
    expect(on).toMatch(/^ {2}iommu \(lazy\): \d+ translations, IOTLB \d+ hits \/ \d+ misses, \d+ walks \(\d+ B of tables read\), \d+ invalidations; 2 faults \(0 dropped by the full fault log\)$/m);
    expect(formatSummary(await report("x86-coherent"))).not.toMatch(/^ {2}iommu/m);
  });
});
