/**
 * Built-in machine profiles. They are written as plain input objects and go through the same
 * schema as users' files, so a profile can never hold a value a file could not.
 *
 * The pair exists for the coherence lesson: the same driver runs on `x86-coherent` (device DMA
 * snoops the CPU caches, so a missing dma_sync_* goes unnoticed) and on `arm64-noncoherent`
 * (it does not, so the same bug returns stale bytes), with identical devices on both.
 *
 * `x86-iommu` and `arm64-iommu` are the same two machines with an IOMMU in front of every DMA
 * port, for the isolation lessons; each uses Linux's default invalidation policy for its
 * architecture (lazy flush queue on x86, strict on arm64).
 */

import { MachineConfigError, parseMachineObject } from "./load.ts";
import { formatSize } from "./schema.ts";
import type { MachineDesc, MachineInput } from "./schema.ts";

const EDU = { slot: 3, model: "edu", irq: 11, msi: true } as const;

const INPUTS: MachineInput[] = [
  {
    name: "x86-coherent",
    description: "x86-like PC: 2 CPUs, 4 GiB RAM (2 GiB below and above the 32-bit hole), cache-coherent DMA, edu at 00:03.0",
    cpus: { count: 2, l1: { size: "32 KiB", ways: 8 }, llc: { size: "1 MiB", ways: 16 } },
    arch: { kind: "x86", kmallocMinAlign: 8, dmaMinAlign: 64 },
    memory: {
      ram: [
        { base: 0, size: "2 GiB", node: 0 },
        { base: "0x100000000", size: "2 GiB", node: 0 },
      ],
    },
    dma: { coherent: true },
    pci: { devices: [EDU] },
  },
  {
    name: "arm64-noncoherent",
    description: "arm64-like SoC: 2 CPUs, 2 NUMA nodes of 2 GiB, DMA that does not snoop CPU caches, edu at 00:03.0",
    cpus: { count: 2, l1: { size: "32 KiB", ways: 4 }, llc: { size: "1 MiB", ways: 16 } },
    arch: { kind: "arm64", kmallocMinAlign: 128, dmaMinAlign: 128 },
    memory: {
      ram: [
        // Node 0 starts at 0 (as on many SoCs) so devices with narrow DMA masks, like edu's
        // 28 bits, can reach the low buffers the allocator hands out first.
        { base: 0, size: "2 GiB", node: 0 },
        { base: "0x880000000", size: "2 GiB", node: 1 },
      ],
      numaDistances: [[10, 20], [20, 10]],
    },
    dma: { coherent: false },
    pci: { devices: [EDU] },
  },
];

// The IOMMU variants: the same machine plus the remapping unit (registers at 0xfed90000, as
// VT-d's DRHD usually sits, fault interrupt on line 20).
const withIommu = (m: MachineInput, name: string, what: string): MachineInput => ({
  ...m,
  name,
  description: `${m.description}, behind an IOMMU (${what})`,
  iommu: { base: "0xfed90000", irq: 20, iotlb: { entries: 64, ways: 4 } },
});
INPUTS.push(withIommu(INPUTS[0]!, "x86-iommu", "lazy invalidation"), withIommu(INPUTS[1]!, "arm64-iommu", "strict invalidation"));

// Parsed once at load: a broken profile is a simulator bug and should fail every test at once.
const PROFILES = new Map<string, MachineDesc>(
  INPUTS.map((input) => [input.name, parseMachineObject(input, `built-in profile "${input.name}"`)]),
);

/** All built-in profiles, in a stable order (copies: callers may modify them). */
export function listProfiles(): MachineDesc[] {
  return [...PROFILES.values()].map((p) => structuredClone(p));
}

export function isProfileName(name: string): boolean {
  return PROFILES.has(name);
}

/** A copy of the named profile. Throws MachineConfigError naming the known profiles if unknown. */
export function getProfile(name: string): MachineDesc {
  const p = PROFILES.get(name);
  if (!p) {
    const known = [...PROFILES.keys()].join(", ");
    throw new MachineConfigError("machine", [{ path: "", message: `unknown profile "${name}"; built-in profiles: ${known}` }]);
  }
  return structuredClone(p);
}

/** One line: "arm64-noncoherent: 2 CPUs, 4 GiB RAM on 2 NUMA nodes, non-coherent DMA, 1 PCI device". */
export function describeMachine(desc: MachineDesc): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const ram = desc.memory.ram.reduce((sum, r) => sum + r.size, 0);
  const nodes = new Set(desc.memory.ram.map((r) => r.node)).size;
  const parts = [
    plural(desc.cpus.count, "CPU"),
    `${formatSize(ram)} RAM on ${plural(nodes, "NUMA node")}`,
    desc.dma.coherent ? "coherent DMA" : "non-coherent DMA",
    plural(desc.pci.devices.length, "PCI device"),
  ];
  if (desc.platform.length > 0) parts.push(plural(desc.platform.length, "platform device"));
  if (desc.iommu) parts.push(`IOMMU (${desc.iommu.policy})`);
  return `${desc.name}: ${parts.join(", ")}`;
}
