/** The built-in scenarios, in the order `dmasim list` shows them. */
import type { Scenario } from "../sim/scenario.ts";
import { eduScenario, eduStaleReadScenario } from "./edu.ts";
import { swiotlbBounceScenario } from "./swiotlb-bounce.ts";
import { coherenceMissingSyncForCpu } from "./coherence-missing-sync-for-cpu.ts";
import { coherenceMissingSyncForDevice } from "./coherence-missing-sync-for-device.ts";
import { coherenceSharedCacheline } from "./coherence-shared-cacheline.ts";
import { coherenceCpuWritesWhileMapped } from "./coherence-cpu-writes-while-mapped.ts";
import { coherencePartialSync } from "./coherence-partial-sync.ts";
import { dmaApiMisuseScenario } from "./dma-api-misuse.ts";
import { transferModesScenario } from "./transfer-modes.ts";
import { pioVsDmaScenario } from "./pio-vs-dma.ts";
import { iommuRogueDeviceScenario } from "./iommu-rogue-device.ts";
import { iommuCrossDeviceScenario } from "./iommu-cross-device.ts";
import { iommuReadonlyMappingScenario } from "./iommu-readonly-mapping.ts";
import { iommuSubpageExposureScenario } from "./iommu-subpage-exposure.ts";
import { iommuLazyFlushWindowScenario } from "./iommu-lazy-flush-window.ts";
import { iommuStaleIotlbScenario } from "./iommu-stale-iotlb.ts";

export const SCENARIOS: readonly Scenario[] = [
  eduScenario,
  eduStaleReadScenario,
  swiotlbBounceScenario,
  coherenceMissingSyncForCpu,
  coherenceMissingSyncForDevice,
  coherenceSharedCacheline,
  coherenceCpuWritesWhileMapped,
  coherencePartialSync,
  dmaApiMisuseScenario,
  transferModesScenario,
  pioVsDmaScenario,
  iommuRogueDeviceScenario,
  iommuCrossDeviceScenario,
  iommuReadonlyMappingScenario,
  iommuSubpageExposureScenario,
  iommuLazyFlushWindowScenario,
  iommuStaleIotlbScenario,
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
