/**
 * IOMMU faults: the fault interrupt prints VT-d's report (rate limited), a domain's fault
 * handler takes its faults, the overflow of the eight hardware records is reported, and the
 * findings stay complete (one per aborted transaction, recorded or dropped).
 */

import { describe, expect, it } from "vitest";
import { iommuRig } from "./helpers.ts";
import {
  IOMMU_FAULT_WRITE, IOMMU_READ, IOMMU_WRITE, iommu_attach_device, iommu_domain, iommu_map, iommu_paging_domain_alloc,
  iommu_set_fault_handler,
} from "../../../../kernel/include/iommu.ts";
import { iommu_report } from "../../../../kernel/iommu/fault-report.ts";
import { IS_ERR } from "../../../../kernel/include/errno.ts";

const P = 4096;

function attached(r: ReturnType<typeof iommuRig>): iommu_domain {
  const d = iommu_paging_domain_alloc(r.dev);
  if (IS_ERR(d)) throw new Error("alloc");
  expect(iommu_attach_device(d, r.dev)).toBe(0);
  return d;
}

describe("fault interrupt and findings", () => {
  it("an unmapped read: VT-d lines in dmesg and one iommu-fault finding", async () => {
    const r = iommuRig("x86-iommu");
    const d = attached(r);
    expect(r.devRead(0x5008)).toBeNull();
    await r.k.run();
    const log = r.dmesg().join("\n");
    expect(log).toContain("DMAR: DRHD: handling fault status reg 102");
    expect(log).toContain("DMAR: [DMA Read] Request device [00:03.0] fault addr 0x5008 [fault reason 0x06] PTE Read access is not set");
    const f = r.k.findings.ofKind("iommu-fault");
    expect(f).toHaveLength(1);
    expect(f[0]!.severity).toBe("error");
    expect(f[0]!.device).toBe("0000:00:03.0");
    expect(f[0]!.driver).toBe("");
    expect(f[0]!.message).toBe("DMA read from 0x5008 blocked: no mapping");
    expect(f[0]!.fix).toMatch(/map the buffer with the DMA API/i);
    expect(f[0]!.details).toMatchObject({ iova: "0x5008", access: "read", reason: "0x06 PTE Read access is not set", domain_id: d.did, requester_id: "0x18", recorded: true });
    expect(iommu_report(r.k)).toMatchObject({ faultsSeen: 1, faultsRecorded: 1, faultsDropped: 0, faultInterrupts: 1, faultsReportedByDriver: 1 });
  });

  it("a write to a read-only mapping: reason 0x05, page present, the direction fix", async () => {
    const r = iommuRig("arm64-iommu");
    const d = attached(r);
    expect(iommu_map(d, 0x10000, r.page(), P, IOMMU_READ, 0)).toBe(0);
    expect(r.devRead(0x10000)).not.toBeNull();
    expect(r.devWrite(0x10010, 5)).toBe(false);
    await r.k.run();
    expect(r.dmesg().join("\n")).toContain("DMAR: [DMA Write] Request device [00:03.0] fault addr 0x10010 [fault reason 0x05] PTE Write access is not set");
    const f = r.k.findings.ofKind("iommu-fault");
    expect(f).toHaveLength(1);
    expect(f[0]!.message).toBe("DMA write to 0x10010 blocked: the page is mapped read-only for the device");
    expect(f[0]!.fix).toMatch(/DMA_FROM_DEVICE or DMA_BIDIRECTIONAL/);
    expect(f[0]!.details).toMatchObject({ page_present: true, reason_code: 5 });
    void IOMMU_WRITE;
  });

  it("a domain's fault handler takes the fault: no default report, finding still made", async () => {
    const r = iommuRig("x86-iommu");
    const d = attached(r);
    const seen: [number, number, unknown][] = [];
    iommu_set_fault_handler(d, (_dom, dev, iova, flags, token) => {
      expect(dev).toBe(r.dev);
      seen.push([iova, flags, token]);
      return 0;
    }, "tok");
    expect(r.devWrite(0x7000, 1)).toBe(false);
    await r.k.run();
    expect(seen).toEqual([[0x7000, IOMMU_FAULT_WRITE, "tok"]]);
    expect(r.dmesg().join("\n")).not.toContain("Request device");
    expect(r.k.findings.ofKind("iommu-fault")).toHaveLength(1);
  });

  it("overflow: more than eight faults before the handler runs; findings complete, dmesg says so", async () => {
    const r = iommuRig("x86-iommu");
    attached(r);
    for (let i = 0; i < 12; i++) expect(r.devRead(0x100000 + i * P)).toBeNull();
    await r.k.run();
    const f = r.k.findings.ofKind("iommu-fault");
    expect(f).toHaveLength(12);
    expect(f.filter((x) => x.details!.recorded === false)).toHaveLength(4);
    const log = r.dmesg().join("\n");
    expect(log).toContain("DMAR: DRHD: primary fault overflow: fault records were lost");
    expect(log.match(/Request device \[00:03.0\]/g)).toHaveLength(8);
    expect(iommu_report(r.k)).toMatchObject({ faultsSeen: 12, faultsRecorded: 8, faultsDropped: 4, overflows: 1 });
    // The log is clear again: the next fault is recorded and reported.
    expect(r.devRead(0x900000)).toBeNull();
    await r.k.run();
    expect(r.dmesg().join("\n")).toContain("fault addr 0x900000");
  });

  it("reports are rate limited; the count of suppressed ones follows", async () => {
    const r = iommuRig("x86-iommu");
    attached(r);
    for (let i = 0; i < 40; i++) {
      expect(r.devRead(0x200000 + i * P)).toBeNull();
      await r.k.run();
    }
    const lines = r.dmesg().filter((l) => l.includes("Request device"));
    expect(lines.length).toBe(10);
    expect(r.k.findings.ofKind("iommu-fault")).toHaveLength(40);
    // After the interval (virtual time), the next fault reports how many were suppressed.
    r.k.platform.after(6e9, "later", () => undefined);
    await r.k.run();
    expect(r.devRead(0x900000)).toBeNull();
    await r.k.run();
    expect(r.dmesg().join("\n")).toContain("dmar_fault: 30 callbacks suppressed");
  });

  it("a device with no domain at all (context blocked) names the reason", async () => {
    const r = iommuRig("x86-iommu");
    expect(r.devWrite(0x3000, 1)).toBe(false); // default DMA domain, nothing mapped
    await r.k.run();
    expect(r.k.findings.ofKind("iommu-fault")[0]!.message).toBe("DMA write to 0x3000 blocked: no mapping");
  });
});
