/**
 * Scenario files: a YAML or JSON file that names a built-in scenario and the machine, seed and
 * options to run it with, so a run can be shared as one file:
 *
 *   scenario: edu-stale-read
 *   machine: arm64-noncoherent      # a profile name, or an inline machine description
 *   seed: 7
 *
 * Validated with zod; errors name the field and the line, like machine files.
 */

import { z } from "zod";
import { LineCounter, parseDocument } from "yaml";
import { parseMachineObject, MachineConfigError } from "../hw/machine/load.ts";
import { getProfile, isProfileName } from "../hw/machine/profiles.ts";
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
export function parseScenarioFile(text: string, fileName: string): ScenarioFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const pos = lc.linePos(e.pos[0]);
    throw new MachineConfigError(fileName, [{ path: "", message: e.message.split("\n")[0], line: pos.line, column: pos.col }]);
  }
  const raw = doc.toJS() as unknown;
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new MachineConfigError(
      fileName,
      parsed.error.issues.map((i) => {
        const node = doc.getIn(i.path as (string | number)[], true) as { range?: [number, number] } | undefined;
        const pos = node?.range ? lc.linePos(node.range[0]) : undefined;
        const path = i.path.join(".");
        return { path, message: i.message, line: pos?.line, column: pos?.col };
      }),
    );
  }
  const { scenario, machine, seed } = parsed.data;
  let desc: MachineDesc | undefined;
  if (typeof machine === "string") {
    if (!isProfileName(machine)) {
      const node = doc.get("machine", true) as { range?: [number, number] } | undefined;
      const pos = node?.range ? lc.linePos(node.range[0]) : undefined;
      throw new MachineConfigError(fileName, [{ path: "machine", message: `unknown machine profile "${machine}"`, line: pos?.line, column: pos?.col }]);
    }
    desc = getProfile(machine);
  } else if (machine) {
    desc = parseMachineObject(machine, `${fileName} (machine)`);
  }
  return { scenario, machine: desc, seed };
}
