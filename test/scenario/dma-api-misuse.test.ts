import { describe, expect, it } from "vitest";
import { DMA_API_MISUSE_KINDS, dmaApiMisuseScenario } from "../../scenarios/dma-api-misuse.ts";
import { findScenario } from "../../scenarios/index.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { machine, scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(dmaApiMisuseScenario);

describe("dma-api-misuse scenario", () => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"]) {
    it(`reports each of the 15 dma-debug classes exactly once, with its fix, on ${profile}`, async () => {
      const r = await run(machine(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(DMA_API_MISUSE_KINDS).toHaveLength(15);
      expect(r.report.findings.map((f) => f.kind)).toEqual([...DMA_API_MISUSE_KINDS]);
      for (const f of r.report.findings) {
        expect(f).toMatchObject({ severity: "error", driver: "dmatour", device: "0000:00:03.0" });
        expect(f.message).toMatch(/^DMA-API: dmatour 0000:00:03\.0: /);
        expect(f.fix).toMatch(/^[A-Z][^\n]*\.$/);
      }
      expectCleanTeardown(r);
    });
  }

  it("moves data correctly through sg mappings before the tour", async () => {
    const r = await run(machine("arm64-noncoherent"));
    expect(r.report.checks.find((c) => c.name === "sg-roundtrip-intact")).toMatchObject({ ok: true, actual: true });
    expect(r.report.stats.dmaBytesRead).toBe(3000);
    expect(r.report.stats.dmaBytesWritten).toBe(3000);
  });

  it("prints a DMA-API line for every error (all_errors on), each followed by where the mapping was made", async () => {
    const r = await run(machine("x86-coherent"));
    const lines = r.dmesg.filter((l) => l.includes("DMA-API: dmatour 0000:00:03.0: "));
    expect(lines).toHaveLength(15);
    expect(r.dmesg.some((l) => l.includes("DMA-API: Mapped at: "))).toBe(true);
    expect(r.dmesg.join("\n")).toMatch(/dmatour 0000:00:03\.0: tour step 14: maps a buffer beyond its DMA mask/);
  });

  it("is deterministic for a seed and holds for other seeds", async () => {
    const a = await run(machine("arm64-noncoherent"), 5);
    const b = await run(machine("arm64-noncoherent"), 5);
    expect(b.report.findings).toEqual(a.report.findings);
    expect(b.dmesg).toEqual(a.dmesg);
    for (const seed of [2, 99]) expect((await run(machine("arm64-noncoherent"), seed)).report.ok).toBe(true);
  });

  it("still reports dma-mask-exceeded on a machine without a bounce pool (the direct path refuses)", async () => {
    const r = await run(machine("arm64-noncoherent", (d) => (d.swiotlb = { size: 0, force: false })));
    expect(r.report.ok).toBe(true);
    expect(r.report.findings.find((f) => f.kind === "dma-mask-exceeded")!.message).toMatch(/DMA addr 0x[0-9a-f]+\+4096 overflow/);
    expectCleanTeardown(r);
  });

  it("is registered for the CLI", () => {
    expect(findScenario("dma-api-misuse")).toBe(dmaApiMisuseScenario);
  });
});
