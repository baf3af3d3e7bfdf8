/** The built-in scenarios, in the order `dmasim list` shows them. */
import type { Scenario } from "../sim/scenario.ts";
import { eduScenario, eduStaleReadScenario } from "./edu.ts";
import { swiotlbBounceScenario } from "./swiotlb-bounce.ts";
import { coherenceMissingSyncForCpu } from "./coherence-missing-sync-for-cpu.ts";
import { coherenceMissingSyncForDevice } from "./coherence-missing-sync-for-device.ts";
import { coherenceSharedCacheline } from "./coherence-shared-cacheline.ts";
import { coherenceCpuWritesWhileMapped } from "./coherence-cpu-writes-while-mapped.ts";
import { dmaApiMisuseScenario } from "./dma-api-misuse.ts";
import { transferModesScenario } from "./transfer-modes.ts";
import { pioVsDmaScenario } from "./pio-vs-dma.ts";

export const SCENARIOS: readonly Scenario[] = [
  eduScenario,
  eduStaleReadScenario,
  swiotlbBounceScenario,
  coherenceMissingSyncForCpu,
  coherenceMissingSyncForDevice,
  coherenceSharedCacheline,
  coherenceCpuWritesWhileMapped,
  dmaApiMisuseScenario,
  transferModesScenario,
  pioVsDmaScenario,
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
