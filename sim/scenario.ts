/**
 * Scenarios: a workload on a machine that states what it expects and checks it.
 *
 * A scenario gets a booted kernel on a board, registers its driver(s), exercises them, records
 * checks (`{name, ok, expected, actual}`) and says which finding kinds it expects. The harness
 * then adds the teardown checks every scenario shares: drivers removed, no live DMA mappings,
 * no leaked allocations, no unexpected findings, no guest errors.
 */

import type { Board } from "../hw/machine/board.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import type { FindingKind } from "../kernel/core/findings.ts";

export type CheckValue = string | number | boolean | null;

export interface ScenarioCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly expected: CheckValue;
  readonly actual: CheckValue;
}

export interface ScenarioContext {
  readonly kernel: Kernel;
  readonly board: Board;
  readonly machine: MachineDesc;
  readonly seed: number;
  /** Record a check: it holds when `actual` equals `expected`. */
  check(name: string, expected: CheckValue, actual: CheckValue): void;
  /** Findings of these kinds are what the scenario demonstrates, not failures. */
  expectFindings(...kinds: FindingKind[]): void;
  /** A scenario-specific result for the report (`results` object). */
  result(key: string, value: CheckValue): void;
}

export interface Scenario {
  readonly name: string;
  /** One line for `dmasim list`. */
  readonly summary: string;
  readonly defaultMachine: string;
  /**
   * The machine the scenario runs on, given the one asked for: e.g. the same machine plus a
   * device the scenario needs. Default: the machine as given.
   */
  machineFor?(machine: MachineDesc): MachineDesc;
  /** What the scenario claims on this machine, in one sentence (shown in reports). */
  claim(machine: MachineDesc): string;
  run(ctx: ScenarioContext): Promise<void>;
}
