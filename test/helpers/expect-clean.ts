/**
 * The check every scenario test ends with: the driver was removed, no DMA mappings are live,
 * nothing leaked, no finding or guest error the scenario did not expect.
 */
import { expect } from "vitest";
import type { RunResult } from "../../sim/run.ts";
import { driver_core_summary } from "../../kernel/base/driver.ts";
import { dma_debug_live } from "../../kernel/dma/debug.ts";

export function expectCleanTeardown(r: RunResult): void {
  const teardown = r.report.checks.filter((c) => c.name.startsWith("teardown: "));
  expect(teardown.length).toBeGreaterThanOrEqual(6);
  for (const c of teardown) expect(c, c.name).toMatchObject({ ok: true });
  r.kernel.enter();
  const summary = driver_core_summary(r.kernel);
  expect(summary.devices.filter((d) => d.driver !== null)).toEqual([]);
  expect(summary.devices.every((d) => d.devres === 0)).toBe(true);
  expect(summary.pending).toBe(0);
  expect(dma_debug_live()).toEqual([]);
  expect([...r.kernel.slab.live.values()].filter((o) => o.owner !== "")).toEqual([]);
  expect(r.board.log.errors).toEqual([]);
}
