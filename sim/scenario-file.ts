/**
 * Scenario files: a YAML or JSON file that names a built-in scenario and the machine, seed and
 * options to run it with, so a run can be shared as one file:
 *
 *   scenario: edu-stale-read
 *   machine: arm64-noncoherent      # a profile name, or an inline machine description
 *   seed: 7
 *
 * Validated with zod; every error names the field and the line, like machine files, including
 * errors inside an inline machine description.
 */

import { z } from "zod";
import { MachineConfigError, parseMachineAt, parseYamlText, validateAt, type YamlText } from "../hw/machine/load.ts";
import { getProfile, isProfileName, listProfiles } from "../hw/machine/profiles.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";

const fileSchema = z.strictObject({
  scenario: z.string().min(1),
  machine: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
  seed: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

export interface ScenarioFile {
  readonly scenario: string;
  readonly machine?: MachineDesc;
  readonly seed?: number;
}

/** Parse a scenario file; throws MachineConfigError (with lines) on any problem. */
export function parseScenarioFile(text: string, fileName: string, knownScenarios: readonly string[]): ScenarioFile {
  const src = parseYamlText(text, fileName, "a scenario file (scenario, machine, seed)");
  const { scenario, machine, seed } = validateAt(fileSchema, src.value, fileName, src);
  if (!knownScenarios.includes(scenario)) {
    throw fieldError(fileName, src, "scenario", `unknown scenario "${scenario}" (built-in: ${knownScenarios.join(", ")})`);
  }
  let desc: MachineDesc | undefined;
  if (typeof machine === "string") {
    if (!isProfileName(machine)) {
      throw fieldError(fileName, src, "machine", `unknown machine profile "${machine}" (built-in: ${listProfiles().map((p) => p.name).join(", ")})`);
    }
    desc = getProfile(machine);
  } else if (machine) {
    desc = parseMachineAt(machine, fileName, src, ["machine"]);
  }
  return { scenario, machine: desc, seed };
}

function fieldError(fileName: string, src: YamlText, key: string, message: string): MachineConfigError {
  const node = src.doc.get(key, true) as { range?: [number, number] } | undefined;
  const pos = node?.range ? src.lc.linePos(node.range[0]) : undefined;
  return new MachineConfigError(fileName, [{ path: key, message, line: pos?.line, column: pos?.col }]);
}
