/**
 * pio-vs-dma: 1 MiB by CPU memcpy versus by the DMA controller (scenarios/pio-vs-dma.ts).
 */

import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import { pioVsDmaScenario } from "../../scenarios/pio-vs-dma.ts";
import { findScenario } from "../../scenarios/index.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(pioVsDmaScenario);

describe("pio-vs-dma scenario", () => {
  it("is listed", () => {
    expect(findScenario("pio-vs-dma")).toBe(pioVsDmaScenario);
  });

  for (const profile of ["arm64-noncoherent", "x86-coherent"]) {
    it(`moves 1 MiB intact both ways, the DMA way for a fraction of the CPU time (${profile})`, async () => {
      const r = await run(getProfile(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(r.report.findings).toEqual([]);
      const res = r.report.results as Record<string, number>;
      expect(res.bytes).toBe(1 << 20);
      expect(res["dma: cpu-ns"] * 3).toBeLessThanOrEqual(res["pio: cpu-ns"]);
      // The controller alone on the bus: 8 ns fetch + 16384 x (read beat + write beat).
      expect(res["dma: transfer-ns"]).toBe(8 + 16384 * 16);
      // PIO keeps the CPU busy the whole time; DMA's elapsed time is mostly the transfer.
      expect(res["pio: elapsed-ns"]).toBe(res["pio: cpu-ns"]);
      expect(res["dma: elapsed-ns"]).toBeGreaterThanOrEqual(res["dma: transfer-ns"]);
      expectCleanTeardown(r);
    });
  }

  it("holds on a machine whose caches evict and prefetch at random", async () => {
    const m = getProfile("arm64-noncoherent");
    m.cpus.evictionRate = 0.3;
    m.cpus.prefetchRate = 0.3;
    for (const seed of [2, 3]) {
      const r = await run(m, seed);
      expect(r.report.checks.filter((c) => !c.ok), `seed ${seed}`).toEqual([]);
      expectCleanTeardown(r);
    }
  });

  it("on a coherent machine the DMA path needs no cache maintenance, so it costs the CPU almost nothing", async () => {
    const x86 = await run(getProfile("x86-coherent"));
    const arm = await run(getProfile("arm64-noncoherent"));
    const cpu = (r: typeof x86): number => r.report.results["dma: cpu-ns"] as number;
    expect(cpu(x86) * 20).toBeLessThan(cpu(arm));
    expect(arm.report.stats.cache.cleanedLines).toBeGreaterThan(x86.report.stats.cache.cleanedLines);
  });
});
