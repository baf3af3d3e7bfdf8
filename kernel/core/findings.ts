/**
 * Findings: the bug vocabulary of DESIGN.md. Each report has a stable kind, a severity, the
 * driver and device, a one-line message, what the driver should have done, and the details
 * (mapping, addresses, history) that explain it. Kinds are never renamed.
 */

export const FINDING_KINDS = [
  "unmap-not-mapped", "unmap-wrong-size", "unmap-wrong-type", "unmap-wrong-direction",
  "unmap-wrong-nents", "free-coherent-mismatch", "mapping-error-not-checked", "sync-not-mapped",
  "sync-out-of-range", "sync-wrong-direction", "map-stack-memory", "map-invalid-memory",
  "cacheline-overlap", "mapping-leak", "dma-mask-exceeded", "cpu-access-device-owned",
  "device-access-cpu-owned", "device-access-unmapped", "stale-cpu-read", "lost-device-write",
  "stale-device-read", "iommu-fault", "irq-storm", "oops", "memory-leak", "warn",
  "stale-iotlb-access",
] as const;

export type FindingKind = (typeof FINDING_KINDS)[number];
export type Severity = "error" | "warning";

export interface FindingHistoryEntry {
  readonly timeNs: number;
  readonly op: string;
  readonly detail: string;
}

export interface Finding {
  readonly kind: FindingKind;
  readonly severity: Severity;
  readonly timeNs: number;
  readonly driver: string;
  readonly device: string;
  readonly message: string;
  /** One sentence: what the driver should have done. */
  readonly fix: string;
  readonly details?: Record<string, string | number | boolean>;
  readonly history?: readonly FindingHistoryEntry[];
}

export class Findings {
  readonly list: Finding[] = [];

  add(f: Finding): void {
    this.list.push(f);
  }

  ofKind(kind: FindingKind): Finding[] {
    return this.list.filter((f) => f.kind === kind);
  }

  get count(): number {
    return this.list.length;
  }
}
