/**
 * Every built-in scenario, on its default machine, twice in one process with the same seed:
 * the same report, byte for byte (the dmesg too). New scenarios are covered by being listed.
 */

import { describe, expect, it } from "vitest";
import { SCENARIOS } from "../../scenarios/index.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import { runScenario } from "../../sim/run.ts";
import { reportToJson } from "../../sim/report.ts";

describe("every built-in scenario replays identically for a seed", () => {
  for (const s of SCENARIOS) {
    it(`${s.name} (${s.defaultMachine}, seed 11)`, async () => {
      const run = () => runScenario(s, { machine: getProfile(s.defaultMachine), seed: 11, trace: false, logLevel: "info" });
      const a = await run();
      const b = await run();
      expect(reportToJson(b.report)).toBe(reportToJson(a.report));
      expect(b.dmesg).toEqual(a.dmesg);
      expect(a.report.ok, `${s.name} holds on its default machine`).toBe(true);
    });
  }
});
