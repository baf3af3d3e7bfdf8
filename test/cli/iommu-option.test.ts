/** `dmasim run --iommu POLICY`: the kernel's IOMMU policy as a boot parameter. */

import { describe, expect, it } from "vitest";
import { cli, cliJson } from "../fixtures/cli.ts";

describe("dmasim run --iommu", () => {
  it("overrides the machine's policy and the run reports the IOMMU's counters", async () => {
    const { code, report } = await cliJson("run", "edu", "--machine", "x86-iommu", "--iommu", "passthrough");
    expect(code).toBe(0);
    expect(report.stats.iommu).not.toBeNull();
    expect(report.stats.iommuFaults).toBe(0);
  });

  it("on a machine without an IOMMU is a usage error naming the flag and the profiles that have one", async () => {
    const { code, err } = await cli("run", "edu", "--machine", "x86-coherent", "--iommu", "strict");
    expect(code).toBe(2);
    expect(err).toContain('--iommu: machine "x86-coherent" has no IOMMU');
    expect(err).toContain("x86-iommu, arm64-iommu");
  });

  it("an unknown policy lists the allowed ones", async () => {
    const { code, err } = await cli("run", "edu", "--machine", "x86-iommu", "--iommu", "sometimes");
    expect(code).toBe(2);
    expect(err).toContain("off, passthrough, strict, lazy");
  });

  it("without an IOMMU the report says so (null counters, zero faults)", async () => {
    const { report } = await cliJson("run", "edu");
    expect(report.stats.iommu).toBeNull();
    expect(report.stats.iommuFaults).toBe(0);
  });
});
