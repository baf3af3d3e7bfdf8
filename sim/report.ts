/**
 * The run report: what `dmasim run --json` prints. Same seed, same bytes: everything in it is
 * derived from virtual time and the simulation, nothing from the host.
 */

import type { Finding } from "../kernel/core/findings.ts";
import type { iommu_report_t } from "../kernel/iommu/fault-report.ts";
import type { ScenarioCheck, CheckValue } from "./scenario.ts";

export interface RunStats {
  readonly cpuBusyNs: number[];
  /** Time device DMA engines spent transferring, summed over devices. */
  readonly dmaBusyNs: number;
  readonly interrupts: { irq: number; name: string; count: number }[];
  readonly dmaBytesRead: number;
  readonly dmaBytesWritten: number;
  readonly mmioReads: number;
  readonly mmioWrites: number;
  readonly cache: {
    l1Hits: number;
    l1Misses: number;
    llcHits: number;
    llcMisses: number;
    writebacks: number;
    cleanedLines: number;
    invalidatedLines: number;
  };
  readonly dma: Record<string, number>;
  /** Transactions the IOMMU aborted (all of them, including those its fault log dropped). */
  readonly iommuFaults: number;
  /**
   * The IOMMU, or null without one: the kernel's policy and fault counters (seen by the
   * simulator, recorded by the hardware, reported by the driver) and the hardware's counters
   * (`hw`: translations, IOTLB hits/misses, walks, invalidations).
   */
  readonly iommu: iommu_report_t | null;
  readonly events: number;
  readonly residentRamBytes: number;
}

export interface GuestErrorReport {
  readonly timeNs: number;
  readonly device: string;
  readonly message: string;
}

export interface RunReport {
  readonly scenario: string;
  readonly claim: string;
  readonly seed: number;
  readonly machine: string;
  readonly virtualTimeNs: number;
  readonly ok: boolean;
  readonly checks: ScenarioCheck[];
  readonly results: Record<string, CheckValue>;
  readonly findings: Finding[];
  readonly guestErrors: GuestErrorReport[];
  readonly stats: RunStats;
}

/** Stable JSON: two-space indent, keys in insertion order (which our code fixes). */
export function reportToJson(r: RunReport): string {
  return JSON.stringify(r, null, 2) + "\n";
}
