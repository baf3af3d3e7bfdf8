/**
 * transfer-modes: one DMA copy per bus mode beside a cache-missing CPU (scenarios/transfer-modes.ts).
 */

import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import { transferModesScenario } from "../../scenarios/transfer-modes.ts";
import { findScenario } from "../../scenarios/index.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(transferModesScenario);
const num = (r: Awaited<ReturnType<typeof run>>, key: string): number => r.report.results[key] as number;

describe("transfer-modes scenario", () => {
  it("is listed", () => {
    expect(findScenario("transfer-modes")).toBe(transferModesScenario);
  });

  for (const profile of ["arm64-noncoherent", "x86-coherent"]) {
    it(`orders the modes as the datasheet says, data intact, no findings, clean teardown (${profile})`, async () => {
      const r = await run(getProfile(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(r.report.findings).toEqual([]);
      const dma = (m: string): number => num(r, `${m}: dma-ns`);
      const stall = (m: string): number => num(r, `${m}: cpu-stall-ns`);
      // Alone on the bus: 8 ns fetch + 4096 x (read beat + write beat).
      expect(num(r, "alone: dma-ns")).toBe(8 + 4096 * 16);
      expect(dma("burst")).toBeLessThan(dma("cycle-stealing"));
      expect(dma("cycle-stealing")).toBeLessThan(dma("transparent"));
      expect(stall("burst")).toBeGreaterThan(stall("cycle-stealing"));
      expect(stall("cycle-stealing")).toBeGreaterThan(0);
      expect(stall("transparent")).toBe(0);
      // Burst starves the CPU: it walks far fewer lines per microsecond than beside the other modes.
      const rate = (m: string): number => num(r, `${m}: cpu-lines-walked`) / dma(m);
      expect(rate("burst") * 2).toBeLessThan(rate("cycle-stealing"));
      expect(rate("transparent")).toBeGreaterThan(rate("cycle-stealing"));
      for (const m of ["burst", "cycle-stealing", "transparent"]) expect(num(r, `${m}: bus-utilisation`)).toBeGreaterThan(0.9);
      expectCleanTeardown(r);
    });
  }

  it("uses a dmac the machine file lists instead of plugging one", async () => {
    const m = getProfile("x86-coherent");
    m.platform = [{ name: "dmac7", model: "dmac", base: 0xd4000000, size: 0x1000, irq: 30 }];
    const r = await run(m);
    expect(r.report.ok).toBe(true);
    expect(r.board.platformDevices.map((d) => d.name)).toEqual(["dmac7"]);
    expect(r.dmesg.join("\n")).toMatch(/dmac7: dmac: 4 channels, 4 peripheral ports, IRQ 30/);
    expectCleanTeardown(r);
  });

  it("hot-plugs a dmac into a copy of the profile, leaving the profile itself unchanged", async () => {
    const m = getProfile("arm64-noncoherent");
    const r = await run(m);
    expect(r.board.platformDevices.map((d) => [d.name, d.base])).toEqual([["dmac", 0xd1000000]]);
    expect(getProfile("arm64-noncoherent").platform).toEqual([]);
    expect(r.report.stats.interrupts.find((i) => i.name === "dmac")?.count).toBe(4);
  });

  it("holds on a machine whose caches evict and prefetch at random", async () => {
    const m = getProfile("arm64-noncoherent");
    m.cpus.evictionRate = 0.3;
    m.cpus.prefetchRate = 0.3;
    const r = await run(m, 2);
    expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
    expectCleanTeardown(r);
  });

  it("gives the same report for the same seed", async () => {
    const a = await run(getProfile("arm64-noncoherent"), 5);
    const b = await run(getProfile("arm64-noncoherent"), 5);
    expect(JSON.stringify(a.report)).toBe(JSON.stringify(b.report));
  });
});
