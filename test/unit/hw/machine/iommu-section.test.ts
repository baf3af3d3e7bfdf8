import { describe, expect, it } from "vitest";
import { MachineConfigError, parseMachineText } from "../../../../hw/machine/load.ts";
import { describeMachine, getProfile } from "../../../../hw/machine/profiles.ts";

const machine = (kind: "x86" | "arm64", extra: string) => `name: t
arch:
  kind: ${kind}
memory:
  ram:
    - { base: 0, size: 1GiB }
${extra}`;

function issues(text: string): string[] {
  try {
    parseMachineText(text, "m.yaml");
  } catch (e) {
    if (e instanceof MachineConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

describe("machine description: the iommu section", () => {
  it("is absent (null) unless given, and defaults follow Linux per architecture", () => {
    expect(parseMachineText(machine("x86", ""), "m.yaml").iommu).toBeNull();
    const x86 = parseMachineText(machine("x86", "iommu: { irq: 9 }\n"), "m.yaml").iommu;
    expect(x86).toEqual({ base: 0xfed90000, irq: 9, iotlb: { entries: 64, ways: 4 }, invalidateNs: 0, policy: "lazy" });
    expect(parseMachineText(machine("arm64", "iommu: { irq: 9 }\n"), "m.yaml").iommu?.policy).toBe("strict");
    const off = parseMachineText(machine("arm64", "iommu: { irq: 9, policy: passthrough, iotlb: { entries: 8, ways: 8 } }\n"), "m.yaml").iommu;
    expect(off?.policy).toBe("passthrough");
    expect(off?.iotlb).toEqual({ entries: 8, ways: 8 });
  });

  it("names the field of a bad value", () => {
    expect(issues(machine("x86", "iommu: { irq: 9, policy: sometimes }\n"))).toEqual([
      'iommu.policy: expected one of: off, passthrough, strict, lazy, found "sometimes"',
    ]);
    expect(issues(machine("x86", "iommu: { irq: 9, iotlb: { entries: 10, ways: 4 } }\n"))).toEqual([
      "iommu.iotlb.entries: iotlb.entries must be a multiple of iotlb.ways",
    ]);
    expect(issues(machine("x86", "iommu: { }\n"))[0]).toMatch(/^iommu\.irq: required field is missing/);
  });

  it("its registers and interrupt are claimed like any device's", () => {
    const clash = machine("x86", "iommu: { irq: 9, base: 0x1000 }\n");
    expect(issues(clash)[0]).toMatch(/^iommu\.base: IOMMU registers \(4 KiB\) 0x1000-0x1fff overlaps RAM range/);
    const irq = machine("x86", "pci:\n  devices: [{ slot: 3, model: edu, irq: 9 }]\niommu: { irq: 9 }\n");
    expect(issues(irq)).toEqual(["iommu.irq: IRQ 9 is already claimed by pci.devices[0]"]);
  });

  it("requester ids are unique: a platform stream id may not alias a PCI function", () => {
    const text = machine("x86", "pci:\n  devices: [{ slot: 3, model: edu, irq: 9 }]\nplatform:\n  - { name: e, model: edu, base: 0x50000000, size: 0x1000, irq: 10, streamId: 0x18 }\n");
    expect(issues(text)).toEqual(["platform[0].streamId: requester id 0x18 is already used by pci.devices[0]"]);
  });

  it("the IOMMU profiles are the plain ones plus an IOMMU", () => {
    const x = getProfile("x86-iommu");
    expect({ ...x, name: "", description: "", iommu: null }).toEqual({ ...getProfile("x86-coherent"), name: "", description: "" , iommu: null });
    expect(x.iommu?.policy).toBe("lazy");
    expect(getProfile("arm64-iommu").iommu?.policy).toBe("strict");
    expect(describeMachine(x)).toMatch(/IOMMU \(lazy\)$/);
  });
});
