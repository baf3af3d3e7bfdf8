/**
 * IOMMU fault findings and counters for the run report.
 *
 * The kernel's fault interrupt only sees what the hardware recorded; when its eight records
 * are full, further faults are dropped (overflow) and dmesg can only say that some were lost.
 * The report must still be complete, so findings come from the simulator's checker view
 * (`observeIommuFaults`), which sees every aborted transaction, recorded or dropped. Each one
 * becomes an `iommu-fault` finding naming the device, its driver, the access, the IOVA and
 * the reason, with a fix that depends on the reason.
 */

import type { Kernel } from "../core/kernel.ts";
import type { IommuFault } from "../platform/platform.ts";
import { dmar_fault_reason } from "./dmar.ts";
import { iommu_device_by_rid, iommu_state } from "./iommu.ts";

/** Counters of every fault the IOMMU raised (checker view). */
export interface IommuFaultCounters {
  seen: number;
  recorded: number;
  dropped: number;
}

export function iommu_fault_counters(k: Kernel): IommuFaultCounters {
  return k.state("iommu-faults", () => ({ seen: 0, recorded: 0, dropped: 0 }));
}

/** Interrupt-side counters the hardware driver keeps (set by init). */
export interface IommuIrqCounters {
  faultInterrupts: number;
  faultsReported: number;
  overflows: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** What went wrong and what the driver should do, by VT-d reason code and the PR flag. */
function explain(f: IommuFault): { what: string; fix: string } {
  switch (f.reason) {
    case 0x05:
    case 0x06:
      if (f.pagePresent) {
        return f.isWrite
          ? { what: "the page is mapped read-only for the device", fix: "Map the buffer DMA_FROM_DEVICE or DMA_BIDIRECTIONAL if the device must write it." }
          : { what: "the page is mapped write-only for the device", fix: "Map the buffer DMA_TO_DEVICE or DMA_BIDIRECTIONAL if the device must read it." };
      }
      // The same fault is a driver bug (an unmapped or already-unmapped buffer) or a hostile
      // device being contained; the IOMMU cannot tell which, so the fix covers both.
      return { what: "no mapping", fix: "If the driver gave the device this address, map the buffer with the DMA API first and keep it mapped until the device is done; if it did not, the device acted on its own and the IOMMU contained it." };
    case 0x02:
      return { what: "the device has no context entry (not attached to any domain)", fix: "Let the device be probed by the IOMMU core (device_add) before it does DMA, and do not start DMA after the device was released." };
    case 0x0d:
      return { what: "the device's domain blocks all DMA", fix: "Attach the device to a paging or DMA domain before starting DMA, and stop its DMA before detaching it." };
    case 0x04:
      return { what: "the address is beyond the IOMMU's 48-bit address width", fix: "Give the device only addresses returned by the DMA API (a bus address, never a kernel virtual address)." };
    default:
      return { what: `the IOMMU tables are broken (${dmar_fault_reason(f.reason)})`, fix: "Fix the IOMMU driver: its context or page-table entries point outside RAM or have reserved bits set." };
  }
}

/**
 * iommu_fault_reporting_init - turn every aborted transaction into an iommu-fault finding
 * Context: boot, once (the checker view has a single observer).
 */
export function iommu_fault_reporting_init(k: Kernel): void {
  const c = iommu_fault_counters(k);
  k.platform.observeIommuFaults((f) => {
    c.seen++;
    if (f.recorded) c.recorded++;
    else c.dropped++;
    const dev = iommu_device_by_rid(k, f.requesterId);
    const access = f.isWrite ? "write" : "read";
    const { what, fix } = explain(f);
    k.findings.add({
      kind: "iommu-fault",
      severity: "error",
      timeNs: f.timeNs,
      driver: dev?.driver?.name ?? "",
      device: dev?.name ?? `requester ${hex(f.requesterId)}`,
      message: `DMA ${access} ${f.isWrite ? "to" : "from"} ${hex(f.iova)} blocked: ${what}`,
      fix,
      details: {
        iova: hex(f.iova),
        access,
        reason: `0x${f.reason.toString(16).padStart(2, "0")} ${dmar_fault_reason(f.reason)}`,
        reason_code: f.reason,
        page_present: f.pagePresent,
        domain_id: f.did,
        requester_id: hex(f.requesterId),
        recorded: f.recorded,
      },
    });
  });
}

/** Numbers for the run report. */
export interface iommu_report_t {
  policy: string;
  faultsSeen: number;
  faultsRecorded: number;
  faultsDropped: number;
  faultInterrupts: number;
  faultsReportedByDriver: number;
  overflows: number;
  domains: number;
  pgtablePages: number;
  hw: Record<string, number> | null;
}

/**
 * iommu_report - IOMMU counters for the run report
 * Returns: null when the machine has no IOMMU.
 */
export function iommu_report(k: Kernel): iommu_report_t | null {
  if (!k.platform.iommuFirmware()) return null;
  const c = iommu_fault_counters(k);
  const st = iommu_state(k);
  const irq = k.subsys.get("iommu-irq") as IommuIrqCounters | undefined;
  return {
    policy: st.policy,
    faultsSeen: c.seen,
    faultsRecorded: c.recorded,
    faultsDropped: c.dropped,
    faultInterrupts: irq?.faultInterrupts ?? 0,
    faultsReportedByDriver: irq?.faultsReported ?? 0,
    overflows: irq?.overflows ?? 0,
    domains: st.domains.size,
    pgtablePages: st.pgtables.pages,
    hw: k.platform.iommuStats(),
  };
}
