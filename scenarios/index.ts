/** The built-in scenarios, in the order `dmasim list` shows them. */
import type { Scenario } from "../sim/scenario.ts";
import { eduScenario, eduStaleReadScenario } from "./edu.ts";

export const SCENARIOS: readonly Scenario[] = [eduScenario, eduStaleReadScenario];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
