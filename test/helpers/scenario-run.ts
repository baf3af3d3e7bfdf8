/**
 * What the scenario tests share: a built-in machine, edited; a scenario run quietly on it; and
 * the replay check (a seed gives byte-identical reports and dmesg).
 */
import { expect } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../hw/machine/schema.ts";
import { runScenario, type RunResult } from "../../sim/run.ts";
import { reportToJson } from "../../sim/report.ts";
import type { Scenario } from "../../sim/scenario.ts";

/** The built-in profile @name (a fresh copy), edited by @edit. */
export function machine(name: string, edit?: (d: MachineDesc) => void): MachineDesc {
  const d = getProfile(name);
  edit?.(d);
  return d;
}

/** A runner of @s: on a machine and a seed (1 unless given), untraced, with the kernel log silent. */
export function scenarioRunner(s: Scenario): (m: MachineDesc, seed?: number) => Promise<RunResult> {
  return (m, seed = 1) => runScenario(s, { machine: m, seed, trace: false, logLevel: "silent" });
}

/** Two runs of one seed: the same report, byte for byte, and the same dmesg. */
export function expectSameReplay(a: RunResult, b: RunResult): void {
  expect(reportToJson(a.report)).toBe(reportToJson(b.report));
  expect(a.dmesg).toEqual(b.dmesg);
}
