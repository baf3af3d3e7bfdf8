/**
 * Machine descriptions: the zod schema a machine file (YAML/JSON) or a built-in profile is
 * validated with, and `MachineDesc`, the normalised result the board builder consumes.
 *
 * Input is forgiving where people type numbers (sizes as "2GiB", "64 MiB", "0x1000"; addresses
 * as numbers or hex strings); output is strict: every size and address a plain safe integer
 * below 2^48 (the physical address width the simulator models). Every object is strict, so a
 * typo is an error instead of a silently ignored key. Messages say what was expected and what
 * was found; the field path and the file line are added by load.ts.
 */

import { z } from "zod";

export const KNOWN_MODELS = ["edu", "dmac", "rogue"] as const;
export type DeviceModel = (typeof KNOWN_MODELS)[number];

/** Exclusive upper bound for every address, size and range end. */
export const ADDR_LIMIT = 2 ** 48;
export const ECAM_SIZE = 0x100000; // bus 0 only: 32 slots x 8 functions x 4 KiB
export const MSI_WINDOW_SIZE = 0x1000;
export const IOMMU_WINDOW_SIZE = 0x1000;
/** How the kernel uses the IOMMU (Linux: intel_iommu=off, iommu.passthrough=1, iommu.strict=0|1). */
export const IOMMU_POLICIES = ["off", "passthrough", "strict", "lazy"] as const;
export type IommuPolicy = (typeof IOMMU_POLICIES)[number];
const LINE = 64;

export interface CacheGeometry {
  size: number;
  ways: number;
}

export interface MachineDesc {
  name: string;
  description: string;
  cpus: {
    count: number;
    l1: CacheGeometry;
    llc: CacheGeometry;
    timing: { l1HitNs: number; llcHitNs: number; ramNs: number; uncachedNs: number; mmioNs: number };
    evictionRate: number;
    prefetchRate: number;
  };
  arch: { kind: "x86" | "arm64"; pageSize: 4096; kmallocMinAlign: number; dmaMinAlign: number };
  memory: { ram: { base: number; size: number; node: number }[]; numaDistances?: number[][] };
  dma: { coherent: boolean };
  interrupts: { lines: number; msiVectors: number; msiBase: number };
  pci: {
    ecamBase: number;
    mmioWindow: { base: number; size: number };
    devices: { slot: number; model: DeviceModel; irq: number; msi: boolean; dmaBits?: number; name?: string; untrusted?: boolean }[];
  };
  platform: { name: string; model: DeviceModel; base: number; size: number; irq: number; streamId?: number; untrusted?: boolean }[];
  /**
   * The IOMMU, or null when the machine has none. `policy` is the kernel's choice for DMA
   * domains: off (never enabled), passthrough (identity), strict or lazy invalidation.
   */
  iommu: {
    base: number;
    irq: number;
    iotlb: { entries: number; ways: number };
    invalidateNs: number;
    policy: IommuPolicy;
  } | null;
  /** The software IO TLB (bounce buffer pool): its size in bytes (0: none) and force-bounce mode. */
  swiotlb: { size: number; force: boolean };
}

// ---- value formatting shared with the error messages in load.ts ----

/** A short rendering of a user's value for "found ..." in messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null (an empty value)";
  if (Array.isArray(v)) return `a list (${v.length} entr${v.length === 1 ? "y" : "ies"})`;
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** "2 GiB", "32 KiB", "30000 bytes": the largest binary unit that divides exactly, never rounded. */
export function formatSize(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (i < units.length - 1 && n >= 1024 ** (i + 1) && n % 1024 ** (i + 1) === 0) i++;
  return `${n / 1024 ** i} ${units[i]}`;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

// ---- sizes and addresses ----

// Binary units only: K/M/G/T are binary as in Linux's memparse(); "GB" is rejected as ambiguous.
const UNITS: Record<string, number> = {
  "": 1, b: 1, k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tib: 2 ** 40,
};
const HEX_RE = /^0x[0-9a-f][0-9a-f_]*$/i;
const SIZE_RE = /^(\d[\d_]*(?:\.\d+)?)\s*([A-Za-z]*)$/;

/** Parses "0x1000", "4096", "64 MiB", "1.5G"; returns the number or an error message. */
export function parseSizeString(text: string): number | string {
  const s = text.trim();
  if (HEX_RE.test(s)) return Number.parseInt(s.replaceAll("_", ""), 16);
  const m = SIZE_RE.exec(s);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (m && /^[kmgt]b$/i.test(m[2]!)) {
    return `${describeValue(text)} is ambiguous; write ${m[1]} ${m[2]![0]!.toUpperCase()}iB (units are binary: KiB, MiB, GiB, TiB)`;
  }
  if (!m || unit === undefined) {
    return `expected a size like 4096, "0x1000", "64 MiB" or "2GiB" (units B, KiB, MiB, GiB, TiB), found ${describeValue(text)}`;
  }
  const n = Number(m[1]!.replaceAll("_", "")) * unit;
  if (!Number.isInteger(n)) return `${describeValue(text)} is not a whole number of bytes`;
  return n;
}

/** An error map for one field: "required field is missing" or "expected X, found Y". */
const says = (expected: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `required field is missing; expected ${expected}` : `expected ${expected}, found ${describeValue(iss.input)}`;

/**
 * A size or an address field. All checks happen in one transform so that each bad field
 * yields exactly one message. `min` is the smallest value, `align` the required alignment.
 */
function bytes(kind: "size" | "address", opts: { min?: number; align?: number } = {}) {
  const expected = kind === "size"
    ? `a size (a number of bytes, or a string like "64 MiB" or "0x1000")`
    : `an address (a number, or a hex string like "0xc0000000")`;
  const show = kind === "size" ? formatSize : hex;
  return z.union([z.number(), z.string()], { error: says(expected) }).transform((raw, ctx) => {
    // Addresses typed as YAML hex numbers arrive as plain numbers: echo them in hex.
    const found = kind === "address" && typeof raw === "number" && Number.isSafeInteger(raw) && raw >= 0 ? hex(raw) : describeValue(raw);
    let n: number | string;
    if (typeof raw === "number") n = raw;
    else if (kind === "address" && !HEX_RE.test(raw.trim())) n = `expected ${expected}, found ${found}`;
    else n = parseSizeString(raw);
    if (typeof n === "number") {
      const min = opts.min ?? 0;
      if (!Number.isInteger(n)) n = `expected a whole number of bytes, found ${found}`;
      else if (n < min) n = `expected ${kind === "size" ? "a size" : "an address"} of at least ${show(min)}, found ${found}`;
      else if (n >= ADDR_LIMIT) n = `${found} is too large: must be below 2^48 (${hex(ADDR_LIMIT)})`;
      else if (opts.align && n % opts.align !== 0) n = `expected a multiple of ${formatSize(opts.align)} (${hex(opts.align)}), found ${found}`;
    }
    if (typeof n === "number") return n;
    ctx.addIssue({ code: "custom", message: n, input: raw });
    return z.NEVER;
  });
}

/** A number in [min, max]; `abort` so one bad value gets one message, not one per failed check. */
function num(min: number, max: number, what: string, integer = true) {
  const error = says(`${what} from ${min} to ${max}`);
  const n = z.number({ error });
  return (integer ? n.int({ error, abort: true }) : n).min(min, { error, abort: true }).max(max, { error, abort: true });
}
const int = (min: number, max: number) => num(min, max, "an integer");
const probability = () => num(0, 1, "a probability", false);
const powerOfTwo = (min: number, max: number) =>
  num(min, max, "a power of two").refine(isPowerOfTwo, { error: says(`a power of two from ${min} to ${max}`) });

const model = z.enum(KNOWN_MODELS, {
  error: (iss) => iss.input === undefined
    ? `required field is missing; expected one of: ${KNOWN_MODELS.join(", ")}`
    : `unknown device model ${describeValue(iss.input)}; known models: ${KNOWN_MODELS.join(", ")}`,
});

// ---- sections ----

/** Set-associative geometry: the set index must be a bit field, so sets are a power of two. */
function cache(defSize: number, defWays: number) {
  return z
    .strictObject({ size: bytes("size", { min: LINE }).default(defSize), ways: int(1, 64).default(defWays) })
    .superRefine((c, ctx) => {
      if (ctx.issues.length > 0) return; // geometry is meaningless until size and ways parse
      const way = c.ways * LINE;
      if (c.size % way !== 0) {
        ctx.addIssue({ code: "custom", path: ["size"], input: c.size, message: `${formatSize(c.size)} is not a multiple of ways x 64-byte lines (${c.ways} x 64 = ${way} bytes)` });
      } else if (!isPowerOfTwo(c.size / way)) {
        ctx.addIssue({ code: "custom", path: ["size"], input: c.size, message: `${formatSize(c.size)} with ${c.ways} ways gives ${c.size / way} sets; the number of sets must be a power of two` });
      }
    });
}

const NS_MAX = 1e9; // a second per access is surely a typo
const cpus = z.strictObject({
  count: int(1, 64).default(2),
  l1: cache(32 * 1024, 8).prefault({}),
  llc: cache(1024 * 1024, 16).prefault({}),
  timing: z.strictObject({
    l1HitNs: int(0, NS_MAX).default(1),
    llcHitNs: int(0, NS_MAX).default(10),
    ramNs: int(0, NS_MAX).default(80),
    uncachedNs: int(0, NS_MAX).default(100),
    mmioNs: int(0, NS_MAX).default(250),
  }).prefault({}),
  evictionRate: probability().default(0),
  prefetchRate: probability().default(0),
});

// kmallocMinAlign / dmaMinAlign / dma.coherent default per arch kind, filled in at the end.
const ARCH_DEFAULTS = {
  x86: { kmallocMinAlign: 8, dmaMinAlign: 64, coherent: true },
  arm64: { kmallocMinAlign: 128, dmaMinAlign: 128, coherent: false },
} as const;

const arch = z.strictObject({
  kind: z.enum(["x86", "arm64"]),
  pageSize: z.literal(4096, { error: says("4096 (the only page size supported)") }).default(4096),
  kmallocMinAlign: powerOfTwo(8, 4096).optional(),
  dmaMinAlign: powerOfTwo(8, 4096).optional(),
});

const ramRange = z.strictObject({
  base: bytes("address", { align: 4096 }),
  size: bytes("size", { min: 4096, align: 4096 }),
  node: int(0, 63).default(0),
});

const memory = z.strictObject({
  ram: z.array(ramRange).min(1, { error: "expected at least one RAM range" }),
  numaDistances: z.array(z.array(int(0, 255))).optional(),
});

const interrupts = z.strictObject({
  lines: int(1, 1024).default(64),
  msiVectors: int(0, 2048).default(64),
  msiBase: bytes("address", { align: MSI_WINDOW_SIZE }).default(0xfee00000),
});

const pciDevice = z.strictObject({
  slot: int(0, 31),
  model,
  irq: int(0, 1023),
  msi: z.boolean().default(true),
  dmaBits: int(1, 64).optional(),
  name: z.string().min(1).optional(),
  // An external-facing port (Thunderbolt): the kernel forces strict invalidation and bounces
  // sub-page buffers, so the device never sees the rest of a page.
  untrusted: z.boolean().optional(),
});

const pci = z.strictObject({
  ecamBase: bytes("address", { align: ECAM_SIZE }).default(0xe0000000),
  mmioWindow: z.strictObject({
    base: bytes("address", { align: 4096 }).default(0xc0000000),
    size: bytes("size", { min: 4096, align: 4096 }).default(0x10000000),
  }).prefault({}),
  devices: z.array(pciDevice).default([]),
});

const platformDevice = z.strictObject({
  name: z.string().min(1),
  model,
  base: bytes("address"),
  size: bytes("size", { min: 1 }),
  irq: int(0, 1023),
  // The requester id its DMA carries to the IOMMU (default 0x100 + its index: bus 1, clear of PCI).
  streamId: int(0, 0xffff).optional(),
  untrusted: z.boolean().optional(),
});

const iommu = z.strictObject({
  base: bytes("address", { align: IOMMU_WINDOW_SIZE }).default(0xfed90000),
  irq: int(0, 1023),
  iotlb: z.strictObject({ entries: int(1, 0xffff).default(64), ways: int(1, 255).default(4) })
    .prefault({})
    .refine((t) => t.entries % t.ways === 0, { error: "iotlb.entries must be a multiple of iotlb.ways", path: ["entries"] }),
  invalidateNs: int(0, NS_MAX).default(0),
  // Linux's defaults: lazy (flush queue) on x86, strict on arm64.
  policy: z.enum(IOMMU_POLICIES, { error: says(`one of: ${IOMMU_POLICIES.join(", ")}`) }).optional(),
});

// Both end up in one-line summaries and report headers.
const oneLine = z.string().regex(/^[^\n\r]*$/, { error: "expected one line (no line breaks)" });

// The kernel rounds the size up to whole 256 KiB segments; 0 means no pool at all.
const swiotlb = z.strictObject({
  size: bytes("size").default(64 * 2 ** 20),
  force: z.boolean().default(false),
});

const machineObject = z.strictObject({
  name: oneLine.min(1),
  description: oneLine.default(""),
  cpus: cpus.prefault({}),
  arch,
  memory,
  dma: z.strictObject({ coherent: z.boolean().optional() }).prefault({}),
  interrupts: interrupts.prefault({}),
  pci: pci.prefault({}),
  platform: z.array(platformDevice).default([]),
  swiotlb: swiotlb.prefault({}),
  // null is what a normalised description says for "no IOMMU", so it re-parses.
  iommu: iommu.nullable().optional(),
});

export type MachineInput = z.input<typeof machineObject>;
type Parsed = z.output<typeof machineObject>;

function normalise(m: Parsed): MachineDesc {
  const d = ARCH_DEFAULTS[m.arch.kind];
  const { numaDistances, ...mem } = m.memory;
  return {
    ...m,
    arch: { ...m.arch, kmallocMinAlign: m.arch.kmallocMinAlign ?? d.kmallocMinAlign, dmaMinAlign: m.arch.dmaMinAlign ?? d.dmaMinAlign },
    memory: numaDistances ? { ...mem, numaDistances } : mem,
    dma: { coherent: m.dma.coherent ?? d.coherent },
    iommu: m.iommu ? { ...m.iommu, policy: m.iommu.policy ?? (m.arch.kind === "x86" ? "lazy" : "strict") } : null,
  };
}

// ---- cross-field rules ----

type Path = (string | number)[];
interface Span { base: number; size: number; what: string; where: string; path: Path }
const span = (s: Span) => `${hex(s.base)}-${hex(s.base + s.size - 1)}`;

/** Nothing may decode the same physical address twice: RAM, ECAM, MSI, PCI and platform MMIO. */
function checkAddressMap(m: Parsed, out: { path: Path; message: string }[]): void {
  // Clashes are reported on the later range. Fixed windows (often defaults, absent from the
  // file) come first so a clash lands on a range the user actually wrote.
  const all: Span[] = [
    { base: m.interrupts.msiBase, size: MSI_WINDOW_SIZE, what: "MSI window (4 KiB)", where: "interrupts.msiBase", path: ["interrupts", "msiBase"] },
    { base: m.pci.ecamBase, size: ECAM_SIZE, what: "PCI ECAM window (1 MiB)", where: "pci.ecamBase", path: ["pci", "ecamBase"] },
    { ...m.pci.mmioWindow, what: "PCI MMIO window", where: "pci.mmioWindow", path: ["pci", "mmioWindow", "base"] },
    ...m.memory.ram.map((r, i) => ({ ...r, what: "RAM range", where: `memory.ram[${i}]`, path: ["memory", "ram", i, "base"] })),
    ...m.platform.map((p, i) => ({ ...p, what: `platform device "${p.name}"`, where: `platform[${i}]`, path: ["platform", i, "base"] })),
    ...(m.iommu ? [{ base: m.iommu.base, size: IOMMU_WINDOW_SIZE, what: "IOMMU registers (4 KiB)", where: "iommu.base", path: ["iommu", "base"] }] : []),
  ];
  all.forEach((s, j) => {
    if (s.base + s.size > ADDR_LIMIT) {
      out.push({ path: s.path, message: `${s.what} ${span(s)} ends beyond the 2^48 physical address limit` });
      return;
    }
    // One report per range is enough to point the user at the clash.
    const o = all.slice(0, j).find((o) => s.base < o.base + o.size && o.base < s.base + s.size);
    if (o) out.push({ path: s.path, message: `${s.what} ${span(s)} overlaps ${o.what} at ${o.where} (${span(o)})` });
  });
}

function checkDevices(m: Parsed, out: { path: Path; message: string }[]): void {
  const lines = m.interrupts.lines;
  const irqs = new Map<number, string>();
  const names = new Map<string, string>();
  const slots = new Map<number, string>();
  const claim = (d: { irq: number; name?: string }, where: string, path: Path) => {
    if (d.irq >= lines) {
      out.push({ path: [...path, "irq"], message: `IRQ ${d.irq} does not exist: interrupts.lines is ${lines}, so valid lines are 0..${lines - 1}` });
    } else if (irqs.has(d.irq)) {
      out.push({ path: [...path, "irq"], message: `IRQ ${d.irq} is already claimed by ${irqs.get(d.irq)}` });
    } else irqs.set(d.irq, where);
    if (d.name === undefined) return;
    if (names.has(d.name)) out.push({ path: [...path, "name"], message: `name "${d.name}" is already used by ${names.get(d.name)}` });
    else names.set(d.name, where);
  };
  m.pci.devices.forEach((d, i) => {
    const where = `pci.devices[${i}]`;
    if (slots.has(d.slot)) out.push({ path: ["pci", "devices", i, "slot"], message: `slot ${d.slot} is already used by ${slots.get(d.slot)}` });
    else slots.set(d.slot, where);
    if (d.msi && m.interrupts.msiVectors === 0) {
      out.push({ path: ["pci", "devices", i, "msi"], message: "MSI is enabled but interrupts.msiVectors is 0" });
    }
    claim(d, where, ["pci", "devices", i]);
  });
  m.platform.forEach((d, i) => claim(d, `platform[${i}]`, ["platform", i]));
  if (m.iommu) claim(m.iommu, "iommu", ["iommu"]);
  // Requester ids must be unique or the IOMMU could not tell two devices apart.
  const rids = new Map<number, string>();
  m.pci.devices.forEach((d, i) => rids.set(d.slot << 3, `pci.devices[${i}]`));
  m.platform.forEach((d, i) => {
    const rid = platformStreamId(d, i);
    const other = rids.get(rid);
    if (other) out.push({ path: ["platform", i, "streamId"], message: `requester id 0x${rid.toString(16)} is already used by ${other}` });
    else rids.set(rid, `platform[${i}]`);
  });
}

/** The requester id of platform device `index`: its streamId, or 0x100 + index (bus 1). */
export function platformStreamId(d: { streamId?: number }, index: number): number {
  return d.streamId ?? 0x100 + index;
}

/** The requester id of a PCI function on bus 0 (bus << 8 | slot << 3 | function). */
export function pciRequesterId(slot: number, fn = 0): number {
  return (slot << 3) | fn;
}

/** Node ids index the distance matrix and per-node allocators, so they must be 0..n-1. */
function checkNuma(m: Parsed, out: { path: Path; message: string }[]): void {
  const used = [...new Set(m.memory.ram.map((r) => r.node))].sort((a, b) => a - b);
  const n = used[used.length - 1]! + 1;
  const gap = used.findIndex((node, k) => node !== k);
  if (gap >= 0) {
    const at = m.memory.ram.findIndex((r) => r.node === used[gap]);
    out.push({ path: ["memory", "ram", at, "node"], message: `NUMA node ids must run from 0 without gaps, but no RAM range is on node ${gap} (nodes used: ${used.join(", ")})` });
    return;
  }
  const d = m.memory.numaDistances;
  if (!d) return;
  const where = ["memory", "numaDistances"];
  if (d.length !== n) {
    out.push({ path: where, message: `expected a ${n} x ${n} matrix (one row per NUMA node used by memory.ram), found ${d.length} row${d.length === 1 ? "" : "s"}` });
    return;
  }
  d.forEach((row, i) => {
    if (row.length !== n) {
      out.push({ path: [...where, i], message: `expected ${n} entries (one per NUMA node), found ${row.length}` });
      return;
    }
    row.forEach((v, j) => {
      if (i === j && v !== 10) out.push({ path: [...where, i, j], message: `the distance from a node to itself must be 10, found ${v}` });
      if (i !== j && v <= 10) out.push({ path: [...where, i, j], message: `the distance between two different nodes must be above 10 (the local distance), found ${v}` });
    });
  });
}

/**
 * The full schema. Cross-field rules (overlaps, IRQ and slot uniqueness, NUMA shape) run only
 * once every field parsed (unknown keys aside): on half-parsed data they would add noise.
 */
export const machineSchema = machineObject
  .superRefine((m, ctx) => {
    if (ctx.issues.some((i) => i.code !== "unrecognized_keys")) return;
    const out: { path: Path; message: string }[] = [];
    checkAddressMap(m, out);
    checkDevices(m, out);
    checkNuma(m, out);
    for (const issue of out) ctx.addIssue({ code: "custom", ...issue });
  })
  .transform(normalise);
