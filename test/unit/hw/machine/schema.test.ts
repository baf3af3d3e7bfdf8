import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KNOWN_MODELS, formatSize, parseSizeString } from "../../../../hw/machine/schema.ts";
import { MachineConfigError, formatPath, parseMachineObject, parseMachineText } from "../../../../hw/machine/load.ts";
import { describeMachine, getProfile, isProfileName, listProfiles } from "../../../../hw/machine/profiles.ts";
import type { MachineIssue } from "../../../../hw/machine/load.ts";

const GiB = 2 ** 30;

/** A valid minimal machine file; `extra` is appended verbatim (top-level keys). */
const minimal = (extra = "") => `name: test
arch:
  kind: x86
memory:
  ram:
    - { base: 0, size: 1GiB }
${extra}`;

/** 1-based line of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split("\n").findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`test bug: ${needle} not in text`);
  return i + 1;
}

function configError(fn: () => unknown): MachineConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MachineConfigError);
    return e as MachineConfigError;
  }
  throw new Error("expected a MachineConfigError");
}

/** Parses `text` expecting failure; returns the issue at `path`, checking its line and message line. */
function issueAt(text: string, path: string, line: number, file = "m.yaml"): MachineIssue {
  const err = configError(() => parseMachineText(text, file));
  const issue = err.issues.find((i) => i.path === path);
  expect(issue, `no issue at ${path}; got:\n${err.message}`).toBeDefined();
  expect(issue!.line).toBe(line);
  expect(err.message).toContain(`${file}:${line}:${issue!.column}: ${path}: ${issue!.message}`);
  return issue!;
}

describe("built-in profiles", () => {
  it("lists the profiles with one-line descriptions", () => {
    const names = listProfiles().map((p) => p.name);
    expect(names).toEqual(["x86-coherent", "arm64-noncoherent", "x86-iommu", "arm64-iommu"]);
    for (const p of listProfiles()) {
      expect(p.description.length).toBeGreaterThan(0);
      expect(p.description).not.toContain("\n");
    }
    expect(isProfileName("x86-coherent")).toBe(true);
    expect(isProfileName("sparc")).toBe(false);
  });

  it("x86-coherent has the documented shape", () => {
    const p = getProfile("x86-coherent");
    expect(p.cpus.count).toBe(2);
    expect(p.cpus.l1).toEqual({ size: 32 * 1024, ways: 8 });
    expect(p.cpus.llc).toEqual({ size: 1024 * 1024, ways: 16 });
    expect(p.cpus.timing).toEqual({ l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 });
    expect(p.arch).toEqual({ kind: "x86", pageSize: 4096, kmallocMinAlign: 8, dmaMinAlign: 64 });
    expect(p.memory.ram).toEqual([
      { base: 0, size: 2 * GiB, node: 0 },
      { base: 4 * GiB, size: 2 * GiB, node: 0 },
    ]);
    expect(p.memory.numaDistances).toBeUndefined();
    expect(p.dma.coherent).toBe(true);
    expect(p.interrupts).toEqual({ lines: 64, msiVectors: 64, msiBase: 0xfee00000 });
    expect(p.pci.ecamBase).toBe(0xe0000000);
    expect(p.pci.mmioWindow).toEqual({ base: 0xc0000000, size: 0x10000000 });
    expect(p.pci.devices).toEqual([{ slot: 3, model: "edu", irq: 11, msi: true }]);
    expect(p.platform).toEqual([]);
  });

  it("arm64-noncoherent has the documented shape", () => {
    const p = getProfile("arm64-noncoherent");
    expect(p.cpus.l1).toEqual({ size: 32 * 1024, ways: 4 });
    expect(p.arch).toEqual({ kind: "arm64", pageSize: 4096, kmallocMinAlign: 128, dmaMinAlign: 128 });
    expect(p.memory.ram).toEqual([
      { base: 0, size: 2 * GiB, node: 0 },
      { base: 0x880000000, size: 2 * GiB, node: 1 },
    ]);
    expect(p.memory.numaDistances).toEqual([[10, 20], [20, 10]]);
    expect(p.dma.coherent).toBe(false);
    expect(p.pci.devices).toEqual([{ slot: 3, model: "edu", irq: 11, msi: true }]);
  });

  it("describeMachine gives a one-line summary", () => {
    expect(describeMachine(getProfile("arm64-noncoherent"))).toBe(
      "arm64-noncoherent: 2 CPUs, 4 GiB RAM on 2 NUMA nodes, non-coherent DMA, 1 PCI device",
    );
    expect(describeMachine(getProfile("x86-coherent"))).toBe(
      "x86-coherent: 2 CPUs, 4 GiB RAM on 1 NUMA node, coherent DMA, 1 PCI device",
    );
  });

  it("getProfile hands out copies", () => {
    const a = getProfile("x86-coherent");
    a.memory.ram[0]!.size = 1;
    a.pci.devices.length = 0;
    expect(getProfile("x86-coherent").memory.ram[0]!.size).toBe(2 * GiB);
    expect(getProfile("x86-coherent").pci.devices).toHaveLength(1);
  });

  it("getProfile rejects an unknown name and lists the known ones", () => {
    const err = configError(() => getProfile("riscv"));
    expect(err.message).toMatch(/^machine: unknown profile "riscv"; built-in profiles: /);
    expect(err.message).toContain("x86-coherent, arm64-noncoherent");
  });

  it("profiles round-trip through YAML and JSON text", () => {
    for (const p of listProfiles()) {
      expect(parseMachineText(stringify(p), "p.yaml")).toEqual(p);
      expect(parseMachineText(JSON.stringify(p, null, 2), "p.json")).toEqual(p);
    }
  });
});

describe("defaults", () => {
  it("fills every optional field of a minimal x86 file", () => {
    const m = parseMachineText(minimal(), "m.yaml");
    expect(m.description).toBe("");
    expect(m.cpus).toEqual({
      count: 2,
      l1: { size: 32768, ways: 8 },
      llc: { size: 1048576, ways: 16 },
      timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 },
      evictionRate: 0,
      prefetchRate: 0,
    });
    expect(m.arch).toEqual({ kind: "x86", pageSize: 4096, kmallocMinAlign: 8, dmaMinAlign: 64 });
    expect(m.memory).toEqual({ ram: [{ base: 0, size: GiB, node: 0 }] });
    expect(m.dma).toEqual({ coherent: true });
    expect(m.interrupts).toEqual({ lines: 64, msiVectors: 64, msiBase: 0xfee00000 });
    expect(m.pci).toEqual({ ecamBase: 0xe0000000, mmioWindow: { base: 0xc0000000, size: 0x10000000 }, devices: [] });
    expect(m.platform).toEqual([]);
  });

  it("arch-dependent defaults follow arch.kind, explicit values win", () => {
    const arm = parseMachineText(minimal().replace("kind: x86", "kind: arm64"), "m.yaml");
    expect(arm.arch).toMatchObject({ kmallocMinAlign: 128, dmaMinAlign: 128 });
    expect(arm.dma.coherent).toBe(false);
    const custom = parseMachineText(
      minimal("dma: { coherent: true }\n").replace("kind: x86", "kind: arm64\n  kmallocMinAlign: 64\n  dmaMinAlign: 64"),
      "m.yaml",
    );
    expect(custom.arch).toMatchObject({ kind: "arm64", kmallocMinAlign: 64, dmaMinAlign: 64 });
    expect(custom.dma.coherent).toBe(true);
  });

  it("pci devices default msi to true and keep optional fields only when given", () => {
    const m = parseMachineText(minimal("pci:\n  devices:\n    - { slot: 1, model: edu, irq: 5, dmaBits: 28, name: edu0 }\n    - { slot: 2, model: edu, irq: 6, msi: false }\n"), "m.yaml");
    expect(m.pci.devices).toEqual([
      { slot: 1, model: "edu", irq: 5, msi: true, dmaBits: 28, name: "edu0" },
      { slot: 2, model: "edu", irq: 6, msi: false },
    ]);
  });

  it("exports the known device models", () => {
    expect(KNOWN_MODELS).toContain("edu");
  });
});

describe("swiotlb section", () => {
  it("defaults to a 64 MiB pool without force, in files and profiles", () => {
    expect(parseMachineText(minimal(), "m.yaml").swiotlb).toEqual({ size: 64 * 2 ** 20, force: false });
    for (const p of listProfiles()) expect(p.swiotlb).toEqual({ size: 64 * 2 ** 20, force: false });
  });

  it("takes a size string or number (0: no pool) and force", () => {
    expect(parseMachineText(minimal("swiotlb: { size: 256KiB, force: true }\n"), "m.yaml").swiotlb).toEqual({ size: 262144, force: true });
    expect(parseMachineText(minimal("swiotlb: { size: 0 }\n"), "m.yaml").swiotlb).toEqual({ size: 0, force: false });
    expect(parseMachineText(minimal("swiotlb:\n  force: true\n"), "m.yaml").swiotlb).toEqual({ size: 64 * 2 ** 20, force: true });
  });

  it("reports bad values and unknown keys with their line", () => {
    const t1 = minimal("swiotlb:\n  force: yes\n");
    expect(issueAt(t1, "swiotlb.force", 8).message).toBe('expected true or false, found "yes"');
    const t2 = minimal("swiotlb:\n  sise: 1MiB\n");
    expect(issueAt(t2, "swiotlb.sise", 8).message).toBe('unknown key "sise"; did you mean "size"?');
    const t3 = minimal("swiotlb: { size: 64MB }\n");
    expect(issueAt(t3, "swiotlb.size", 7).message).toMatch(/"64MB" is ambiguous; write 64 MiB/);
  });
});

describe("sizes and addresses", () => {
  const sizeOf = (s: string) => parseMachineText(minimal(`pci:\n  mmioWindow: { base: 0x1000000000, size: ${s} }\n`), "m.yaml").pci.mmioWindow.size;

  it.each([
    ['"64 MiB"', 64 * 2 ** 20],
    ["64MiB", 64 * 2 ** 20],
    ['"0x1000"', 0x1000],
    ["0x1000", 0x1000],
    ["4096", 4096],
    ['"4096"', 4096],
    ['"32 KiB"', 32768],
    ["64k", 65536],
    ['"0x1_0000"', 0x10000],
    ["1.5G", 1.5 * GiB],
  ])("accepts size %s", (text, value) => {
    expect(sizeOf(text)).toBe(value);
  });

  it("accepts 2GiB RAM written without a space", () => {
    const m = parseMachineText(minimal().replace("size: 1GiB", "size: 2GiB"), "m.yaml");
    expect(m.memory.ram[0]!.size).toBe(2 * GiB);
  });

  it.each([
    ["2GB", /"2GB" is ambiguous; write 2 GiB/],
    ['"0.5"', /not a whole number of bytes/],
    ["lots", /expected a size like 4096, "0x1000", "64 MiB" or "2GiB".*found "lots"/],
    ["true", /expected a size \(a number of bytes, or a string like "64 MiB" or "0x1000"\), found true/],
    ["0x1001", /expected a multiple of 4 KiB \(0x1000\), found 4097/],
    ["0", /expected a size of at least 4 KiB, found 0/],
  ])("rejects size %s", (text, message) => {
    const text2 = minimal(`pci:\n  mmioWindow: { size: ${text} }\n`);
    const issue = issueAt(text2, "pci.mmioWindow.size", lineOf(text2, "mmioWindow"));
    expect(issue.message).toMatch(message);
  });

  it("accepts addresses as numbers, YAML hex numbers and hex strings", () => {
    for (const base of ["3221225472", "0xc0000000", '"0xc0000000"', '"0xC000_0000"']) {
      const m = parseMachineText(minimal(`pci:\n  mmioWindow: { base: ${base} }\n`), "m.yaml");
      expect(m.pci.mmioWindow.base).toBe(0xc0000000);
    }
  });

  it("rejects an address written as a size string, echoing hex for hex input", () => {
    const t1 = minimal(`pci:\n  mmioWindow: { base: 3GiB }\n`);
    expect(issueAt(t1, "pci.mmioWindow.base", 8).message).toMatch(/expected an address \(a number, or a hex string like "0xc0000000"\), found "3GiB"/);
    const t2 = minimal(`pci:\n  ecamBase: 0xe0001000\n`);
    expect(issueAt(t2, "pci.ecamBase", 8).message).toBe("expected a multiple of 1 MiB (0x100000), found 0xe0001000");
  });

  it("rejects values at or beyond 2^48 and unsafe integers", () => {
    const t1 = minimal(`platform:\n  - { name: u, model: edu, base: 0x1_0000_0000_0000, size: 4KiB, irq: 3 }\n`);
    expect(issueAt(t1, "platform[0].base", 8).message).toMatch(/too large: must be below 2\^48/);
    const t2 = minimal(`platform:\n  - { name: u, model: edu, base: 0xffff_ffff_f000, size: 8KiB, irq: 3 }\n`);
    expect(issueAt(t2, "platform[0].base", 8).message).toMatch(/ends beyond the 2\^48 physical address limit/);
    const t3 = minimal(`pci:\n  mmioWindow: { size: 9007199254740993 }\n`);
    expect(issueAt(t3, "pci.mmioWindow.size", 8).message).toMatch(/too large/);
  });

  it("parseSizeString and formatSize agree on binary units", () => {
    expect(parseSizeString("2GiB")).toBe(2 * GiB);
    expect(parseSizeString(" 64 MiB ")).toBe(64 * 2 ** 20);
    expect(typeof parseSizeString("2 GB")).toBe("string");
    expect(formatSize(2 * GiB)).toBe("2 GiB");
    expect(formatSize(32768)).toBe("32 KiB");
    expect(formatSize(30000)).toBe("30000 bytes");
  });
});

describe("field errors name the path and the YAML line", () => {
  it("an unknown key points at the key and suggests the closest one", () => {
    const text = `name: test
arch:
  kind: x86
memory:
  ram:
    - base: 0
      size: 1GiB
      nodee: 0
`;
    const issue = issueAt(text, "memory.ram[0].nodee", 8);
    expect(issue.column).toBe(7);
    expect(issue.message).toBe('unknown key "nodee"; did you mean "node"?');
  });

  it("an unknown key with no close match lists the allowed keys", () => {
    const text = minimal("pci:\n  devices:\n    - slot: 3\n      model: edu\n      irq: 11\n      colour: red\n");
    const issue = issueAt(text, "pci.devices[0].colour", lineOf(text, "colour"));
    expect(issue.message).toBe('unknown key "colour" (allowed: slot, model, irq, msi, dmaBits, name, untrusted)');
  });

  it("an unknown top-level key", () => {
    const text = minimal("gpu: on\n");
    expect(issueAt(text, "gpu", 7).column).toBe(1);
  });

  it("a wrong type says what was expected and what was found", () => {
    const text = minimal("cpus:\n  count: two\n");
    expect(issueAt(text, "cpus.count", 8).message).toBe('expected an integer from 1 to 64, found "two"');
    const t2 = minimal("dma:\n  coherent: yes\n");
    expect(issueAt(t2, "dma.coherent", 8).message).toBe('expected true or false, found "yes"');
    const t3 = minimal("platform: {}\n");
    expect(issueAt(t3, "platform", 7).message).toBe("expected a list, found an object");
  });

  it("a negative RAM size", () => {
    const text = `name: test
arch:
  kind: x86
memory:
  ram:
    - base: 0
      size: -4096
`;
    const issue = issueAt(text, "memory.ram[0].size", 7);
    expect(issue.column).toBe(13);
    expect(issue.message).toBe("expected a size of at least 4 KiB, found -4096");
  });

  it("an unknown device model", () => {
    const text = minimal("pci:\n  devices:\n    - slot: 3\n      model: e1000\n      irq: 11\n");
    const issue = issueAt(text, "pci.devices[0].model", lineOf(text, "e1000"));
    expect(issue.message).toBe('unknown device model "e1000"; known models: edu, dmac, rogue');
  });

  it("a missing required field points at the parent object", () => {
    const text = `name: test
arch:
  pageSize: 4096
memory:
  ram:
    - { base: 0, size: 1GiB }
pci:
  devices:
    - slot: 3
      model: edu
`;
    const kind = issueAt(text, "arch.kind", 2);
    expect(kind.message).toBe('required field is missing; expected "x86" or "arm64"');
    const irq = issueAt(text, "pci.devices[0].irq", 9);
    expect(irq.message).toBe("required field is missing; expected an integer from 0 to 1023");
  });

  it("a missing top-level section points at the first line of the document", () => {
    const text = "# my machine\nname: test\narch: { kind: x86 }\n";
    const issue = issueAt(text, "memory", 2);
    expect(issue.message).toMatch(/^required field is missing; expected an object/);
  });

  it("an empty RAM list", () => {
    const text = minimal().replace("ram:\n    - { base: 0, size: 1GiB }", "ram: []");
    expect(issueAt(text, "memory.ram", 5).message).toBe("expected at least one RAM range");
  });

  it("bad cache geometry", () => {
    const t1 = minimal("cpus:\n  l1: { size: 48KiB, ways: 8 }\n");
    expect(issueAt(t1, "cpus.l1.size", 8).message).toBe("48 KiB with 8 ways gives 96 sets; the number of sets must be a power of two");
    const t2 = minimal("cpus:\n  llc: { size: 30000, ways: 8 }\n");
    expect(issueAt(t2, "cpus.llc.size", 8).message).toBe("30000 bytes is not a multiple of ways x 64-byte lines (8 x 64 = 512 bytes)");
    const t3 = minimal("cpus:\n  l1: { ways: 0 }\n");
    const err = configError(() => parseMachineText(t3, "m.yaml"));
    expect(err.issues.map((i) => i.path)).toEqual(["cpus.l1.ways"]); // no geometry noise on top
  });

  it("numbers out of range give one message each", () => {
    const text = minimal("cpus:\n  evictionRate: 1.5\n  prefetchRate: -0.1\n").replace("kind: x86", "kind: x86\n  kmallocMinAlign: 3");
    const err = configError(() => parseMachineText(text, "m.yaml"));
    expect(err.issues.map((i) => [i.path, i.message])).toEqual([
      ["arch.kmallocMinAlign", "expected a power of two from 8 to 4096, found 3"],
      ["cpus.evictionRate", "expected a probability from 0 to 1, found 1.5"],
      ["cpus.prefetchRate", "expected a probability from 0 to 1, found -0.1"],
    ]);
    const t2 = minimal().replace("kind: x86", "kind: x86\n  dmaMinAlign: 96");
    expect(issueAt(t2, "arch.dmaMinAlign", 4).message).toBe("expected a power of two from 8 to 4096, found 96");
    const t3 = minimal().replace("kind: x86", "kind: x86\n  pageSize: 16384");
    expect(issueAt(t3, "arch.pageSize", 4).message).toBe("expected 4096 (the only page size supported), found 16384");
  });

  it("several problems are reported together, in file order", () => {
    const text = `name: test
cpus:
  count: 0
arch:
  kind: sparc
memory:
  ram:
    - { base: 0, size: 1GiB, color: red }
`;
    const err = configError(() => parseMachineText(text, "m.yaml"));
    expect(err.issues.map((i) => [i.line, i.path])).toEqual([
      [3, "cpus.count"],
      [5, "arch.kind"],
      [8, "memory.ram[0].color"],
    ]);
    expect(err.message.split("\n")).toHaveLength(3);
    expect(err.message.split("\n")[1]).toBe('m.yaml:5:9: arch.kind: expected "x86" or "arm64", found "sparc"');
  });
});

describe("cross-field rules", () => {
  it("overlapping RAM ranges", () => {
    const text = minimal().replace("- { base: 0, size: 1GiB }", "- { base: 0, size: 1GiB }\n    - { base: 0x20000000, size: 1GiB }");
    const issue = issueAt(text, "memory.ram[1].base", 7);
    expect(issue.message).toBe("RAM range 0x20000000-0x5fffffff overlaps RAM range at memory.ram[0] (0x0-0x3fffffff)");
  });

  it("RAM overlapping the PCI MMIO window, and MMIO windows overlapping each other", () => {
    const t1 = minimal().replace("size: 1GiB", "size: 4GiB");
    const ram = issueAt(t1, "memory.ram[0].base", 6);
    expect(ram.message).toBe("RAM range 0x0-0xffffffff overlaps MSI window (4 KiB) at interrupts.msiBase (0xfee00000-0xfee00fff)");
    const t2 = minimal("pci:\n  mmioWindow:\n    base: 0xc0000000\n    size: 1GiB\n");
    expect(issueAt(t2, "pci.mmioWindow.base", 9).message).toMatch(/^PCI MMIO window 0xc0000000-0xffffffff overlaps MSI window/);
    const t3 = minimal("platform:\n  - name: uart\n    model: edu\n    base: 0xe0000800\n    size: 0x100\n    irq: 4\n");
    expect(issueAt(t3, "platform[0].base", lineOf(t3, "0xe0000800")).message).toBe(
      'platform device "uart" 0xe0000800-0xe00008ff overlaps PCI ECAM window (1 MiB) at pci.ecamBase (0xe0000000-0xe00fffff)',
    );
    const t4 = minimal("platform:\n  - { name: a, model: edu, base: 0x50000000, size: 0x1000, irq: 4 }\n  - { name: b, model: edu, base: 0x50000800, size: 0x1000, irq: 5 }\n");
    expect(issueAt(t4, "platform[1].base", 9).message).toMatch(/overlaps platform device "a" at platform\[0\]/);
  });

  it("an IRQ claimed twice", () => {
    const text = minimal(`pci:
  devices:
    - { slot: 3, model: edu, irq: 11 }
platform:
  - name: timer
    model: edu
    base: 0x50000000
    size: 4KiB
    irq: 11
`);
    const issue = issueAt(text, "platform[0].irq", 15);
    expect(issue.message).toBe("IRQ 11 is already claimed by pci.devices[0]");
  });

  it("an IRQ beyond interrupts.lines", () => {
    const text = minimal("interrupts: { lines: 8 }\npci:\n  devices:\n    - { slot: 3, model: edu, irq: 11 }\n");
    expect(issueAt(text, "pci.devices[0].irq", 10).message).toBe("IRQ 11 does not exist: interrupts.lines is 8, so valid lines are 0..7");
  });

  it("two PCI devices in one slot, and duplicate names", () => {
    const text = minimal(`pci:
  devices:
    - { slot: 3, model: edu, irq: 11, name: edu }
    - { slot: 3, model: edu, irq: 12, name: edu }
`);
    expect(issueAt(text, "pci.devices[1].slot", 10).message).toBe("slot 3 is already used by pci.devices[0]");
    expect(issueAt(text, "pci.devices[1].name", 10).message).toBe('name "edu" is already used by pci.devices[0]');
  });

  it("MSI without MSI vectors", () => {
    const text = minimal("interrupts: { msiVectors: 0 }\npci:\n  devices:\n    - { slot: 3, model: edu, irq: 11 }\n    - { slot: 4, model: edu, irq: 12, msi: false }\n");
    const err = configError(() => parseMachineText(text, "m.yaml"));
    expect(err.issues.map((i) => [i.path, i.line, i.message])).toEqual([
      ["pci.devices[0].msi", 10, "MSI is enabled but interrupts.msiVectors is 0"],
    ]);
  });

  it("NUMA node ids must be contiguous from 0", () => {
    const text = minimal().replace("- { base: 0, size: 1GiB }", "- { base: 0, size: 1GiB }\n    - { base: 0x100000000, size: 1GiB, node: 2 }");
    expect(issueAt(text, "memory.ram[1].node", 7).message).toBe(
      "NUMA node ids must run from 0 without gaps, but no RAM range is on node 1 (nodes used: 0, 2)",
    );
  });

  it("numaDistances must be n x n with 10 on the diagonal", () => {
    const two = minimal().replace("- { base: 0, size: 1GiB }", "- { base: 0, size: 1GiB }\n    - { base: 0x100000000, size: 1GiB, node: 1 }");
    const t1 = two.replace("ram:", "numaDistances: [[10]]\n  ram:");
    expect(issueAt(t1, "memory.numaDistances", 5).message).toBe(
      "expected a 2 x 2 matrix (one row per NUMA node used by memory.ram), found 1 row",
    );
    const t2 = two.replace("ram:", "numaDistances:\n    - [10, 20]\n    - [20]\n  ram:");
    expect(issueAt(t2, "memory.numaDistances[1]", 7).message).toBe("expected 2 entries (one per NUMA node), found 1");
    const t3 = two.replace("ram:", "numaDistances:\n    - [10, 20]\n    - [20, 0]\n  ram:");
    expect(issueAt(t3, "memory.numaDistances[1][1]", 7).message).toBe("the distance from a node to itself must be 10, found 0");
    const t4 = two.replace("ram:", "numaDistances: [[10, 5], [20, 10]]\n  ram:");
    expect(issueAt(t4, "memory.numaDistances[0][1]", 5).message).toMatch(/must be above 10/);
    expect(parseMachineText(two.replace("ram:", "numaDistances: [[10, 21], [21, 10]]\n  ram:"), "m.yaml").memory.numaDistances).toEqual([[10, 21], [21, 10]]);
  });

  it("are skipped while fields are still wrong, to avoid noise", () => {
    const text = minimal("cpus: { count: 100 }\npci:\n  devices:\n    - { slot: 3, model: edu, irq: 11 }\n    - { slot: 3, model: edu, irq: 11 }\n");
    const err = configError(() => parseMachineText(text, "m.yaml"));
    expect(err.issues.map((i) => i.path)).toEqual(["cpus.count"]);
  });

  it("still run alongside unknown keys", () => {
    const text = minimal("typo: 1\npci:\n  devices:\n    - { slot: 3, model: edu, irq: 11 }\n    - { slot: 3, model: edu, irq: 12 }\n");
    const err = configError(() => parseMachineText(text, "m.yaml"));
    expect(err.issues.map((i) => i.path)).toEqual(["typo", "pci.devices[1].slot"]);
  });
});

describe("input formats and error plumbing", () => {
  it("JSON is parsed and its issues carry line numbers", () => {
    const json = JSON.stringify({ name: "j", arch: { kind: "x86" }, memory: { ram: [{ base: 0, size: "1 GiB", nod: 0 }] } }, null, 2);
    const issue = issueAt(json, "memory.ram[0].nod", lineOf(json, '"nod"'), "m.json");
    expect(issue.message).toBe('unknown key "nod"; did you mean "node"?');
  });

  it("YAML syntax errors become MachineConfigErrors with a line", () => {
    const err = configError(() => parseMachineText("name: x\narch: { kind: x86\nmemory: 1\n", "bad.yaml"));
    expect(err.issues.length).toBeGreaterThan(0);
    expect(err.issues[0]!.line).toBeGreaterThanOrEqual(2);
    expect(err.message).toMatch(/^bad\.yaml:\d+:\d+: YAML syntax error: /);
    const dup = configError(() => parseMachineText("name: x\nname: y\n", "dup.yaml"));
    expect(dup.message).toBe("dup.yaml:2:1: YAML syntax error: Map keys must be unique");
  });

  it("an empty file and a non-object document", () => {
    expect(configError(() => parseMachineText("# nothing\n", "e.yaml")).message).toMatch(/^e\.yaml: the file is empty/);
    expect(configError(() => parseMachineText("- 1\n", "l.yaml")).message).toBe(
      "l.yaml:1:1: expected an object (key: value pairs), found a list (1 entry)",
    );
  });

  it("YAML anchors and aliases are followed", () => {
    const text = `name: test
arch: { kind: x86 }
memory:
  ram:
    - { base: 0, size: 1GiB }
pci:
  devices:
    - { slot: 3, model: edu, irq: &line 11 }
platform:
  - { name: t, model: edu, base: 0x50000000, size: 4KiB,
      irq: *line }
`;
    const issue = issueAt(text, "platform[0].irq", 11);
    expect(issue.column).toBe(12);
    expect(issue.message).toBe("IRQ 11 is already claimed by pci.devices[0]");
  });

  it("parseMachineObject validates objects and names the source without a line", () => {
    const m = parseMachineObject({ name: "o", arch: { kind: "arm64" }, memory: { ram: [{ base: "0x40000000", size: "1 GiB" }] } }, "obj");
    expect(m.memory.ram[0]).toEqual({ base: 0x40000000, size: GiB, node: 0 });
    const err = configError(() => parseMachineObject({ name: "o", arch: { kind: "arm64" }, memory: { ram: [] } }, "scenario.machine"));
    expect(err.message).toBe("scenario.machine: memory.ram: expected at least one RAM range");
    expect(err.issues).toEqual([{ path: "memory.ram", message: "expected at least one RAM range" }]);
    expect(err.name).toBe("MachineConfigError");
  });

  it("formatPath writes dotted paths with [i] indexes", () => {
    expect(formatPath(["pci", "devices", 0, "irq"])).toBe("pci.devices[0].irq");
    expect(formatPath(["memory", "numaDistances", 1, 0])).toBe("memory.numaDistances[1][0]");
    expect(formatPath([])).toBe("");
  });
});
