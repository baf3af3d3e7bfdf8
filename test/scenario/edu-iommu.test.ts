import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import { runScenario } from "../../sim/run.ts";
import { eduScenario } from "../../scenarios/edu.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import type { Scenario } from "../../sim/scenario.ts";
import type { DmaObserver } from "../../kernel/platform/platform.ts";

interface Seen {
  phys: number;
  bus: number;
  len: number;
  write: boolean;
}

/** edu, with every DMA access of its port recorded (physical and bus address) on the way. */
function recorded(seen: Seen[]): Scenario {
  return {
    ...eduScenario,
    run: async (ctx) => {
      const port = ctx.board.pciDevices[0].device.dma;
      const prev = port.observer;
      const spy: DmaObserver = {
        onDeviceAccess(p, phys, len, write, bus) {
          seen.push({ phys, bus, len, write });
          prev?.onDeviceAccess(p, phys, len, write, bus);
        },
      };
      port.observer = spy;
      await eduScenario.run(ctx);
    },
  };
}

describe("edu behind the IOMMU", () => {
  for (const profile of ["x86-iommu", "arm64-iommu"]) {
    it(`runs unchanged on ${profile} with zero findings, through IOVAs below its 28-bit mask`, async () => {
      const seen: Seen[] = [];
      const machine = getProfile(profile);
      const r = await runScenario(recorded(seen), { machine, seed: 1, trace: false, logLevel: "silent" });
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(r.report.findings).toEqual([]);
      expect(r.report.results["dma-irqs"]).toBe(4);
      expectCleanTeardown(r);
      // Memory accesses (not the MSI doorbell writes) went through IOVAs, not physical addresses.
      const msi = machine.interrupts.msiBase;
      const mem = seen.filter((s) => !(s.bus >= msi && s.bus < msi + 4096));
      expect(mem.length).toBeGreaterThan(0);
      for (const s of mem) {
        expect(s.bus).not.toBe(s.phys);
        expect(s.bus + s.len).toBeLessThanOrEqual(2 ** 28);
        expect(s.bus).toBeGreaterThan(0);
      }
      expect(r.board.iommu!.stats.faults ?? 0).toBe(0);
      // the report's DMA bytes are the device's, as without an IOMMU; its table walks are its own
      expect(r.report.stats.dmaBytesRead).toBe(4096 + 2048);
      const walks = r.board.iommu!.stats;
      expect(walks.walkReadBytes).toBe(16 * walks.contextReads + 8 * walks.walkReads);
      expect(walks.walkReadBytes).toBeGreaterThan(0);
      expect(r.report.stats.iommu?.hw).toMatchObject({ walkReadBytes: walks.walkReadBytes });
    });
  }
});
