/**
 * Property: the coherence sanitizer enforces the ownership model (§1.2, §4.5) exactly.
 *
 * Random command sequences of map / sync / CPU access / device access / unmap run on a kernel
 * with the sanitizer on, against small caches that evict and prefetch at random. A model that
 * knows nothing of caches predicts, step by step, the cause findings the ownership rules call
 * for (with the sanitizer's deduplication: one per mapping, access and ownership epoch), and
 * keeps the truth of every byte (the last value anyone wrote, which a coherent machine shows).
 * - Correct sequences yield no finding at all.
 * - Every step yields exactly the predicted cause kinds, on arm64 and on x86.
 * - An effect finding only ever names a buffer some cause was reported for (no effect without
 *   a misuse), and never appears on x86.
 * - Every time the CPU or the device sees bytes other than the truth, an effect explains it: a
 *   stale-cpu-read or stale-device-read at that step, or an earlier lost-device-write of those
 *   bytes. The only exemption is a CPU store that an invalidate legitimately discarded
 *   (sync_for_cpu / unmap of a FROM_DEVICE or BIDIRECTIONAL buffer), which no kind names.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import { DmaPort } from "../../hw/dma/dma-port.ts";
import { Platform } from "../../kernel/platform/platform.ts";
import { Kernel } from "../../kernel/core/kernel.ts";
import type { Finding, FindingKind } from "../../kernel/core/findings.ts";
import { device } from "../../kernel/include/device.ts";
import type { dma_addr_t, vaddr_t } from "../../kernel/include/types.ts";
import { kzalloc, virt_to_phys } from "../../kernel/mm/slab-api.ts";
import { copy_from_user, copy_to_user } from "../../kernel/mm/access.ts";
import {
  DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_sync_single_for_cpu,
  dma_sync_single_for_device, dma_unmap_single,
} from "../../kernel/include/dma-mapping.ts";
import { dma_debug_live } from "../../kernel/dma/debug.ts";
import { dma_sanitizer_init } from "../../kernel/dma/sanitizer/index.ts";
import { SAN_GRAVES_PER_DEVICE } from "../../kernel/dma/sanitizer/graves.ts";

type Dir = typeof DMA_BIDIRECTIONAL | typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE;
type Profile = "arm64-noncoherent" | "x86-coherent";

type Op =
  | { t: "map"; b: number; dir: Dir; cpu: number }
  | { t: "unmap" | "syncCpu" | "syncDev"; b: number; cpu: number }
  | { t: "cpuRead" | "devRead"; b: number; cpu: number; off: number; len: number }
  | { t: "cpuWrite" | "devWrite"; b: number; cpu: number; off: number; len: number; seed: number };

const CAUSES: readonly FindingKind[] = ["cpu-access-device-owned", "device-access-cpu-owned", "device-access-unmapped"];
const EFFECTS: readonly FindingKind[] = ["stale-cpu-read", "lost-device-write", "stale-device-read"];
const NBUF = 3;
const SIZES = [64, 100, 128, 200, 512, 1000, 4096];
const WRITER_CPU = 1;
const WRITER_DEV = 2;

/** What the runs exercised, so a property that never meets an effect cannot pass quietly. */
const tally = { causes: 0, effects: 0, divergentReads: 0 };

const span = { off: fc.nat(4095), len: fc.integer({ min: 1, max: 4096 }) };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ t: fc.constant("map" as const), b: fc.nat(NBUF - 1), dir: fc.constantFrom<Dir>(0, 1, 2), cpu: fc.nat(1) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constantFrom("unmap" as const, "syncCpu" as const, "syncDev" as const), b: fc.nat(NBUF - 1), cpu: fc.nat(1) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constantFrom("cpuRead" as const, "devRead" as const), b: fc.nat(NBUF - 1), cpu: fc.nat(1), ...span }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constantFrom("cpuWrite" as const, "devWrite" as const), b: fc.nat(NBUF - 1), cpu: fc.nat(1), seed: fc.nat(255), ...span }) },
);

interface Mapping {
  readonly id: number;
  readonly h: dma_addr_t;
  readonly dir: Dir;
  owner: "cpu" | "device";
  /** Length of the dma-debug history: the ownership epoch. */
  hist: number;
  /** History index of the last hand-over to the device (map or sync_for_device). */
  handoverAt: number;
  /** History length when the CPU last wrote while owning it. */
  cpuWriteAt: number;
  /** History length at the last tolerated recycle (the device owns it again until the next call). */
  recycledAt: number;
}

interface Buf {
  readonly va: vaddr_t;
  readonly phys: number;
  readonly size: number;
  readonly truth: Uint8Array;
  readonly writer: Uint8Array;
  /** The CPU stored this byte and no DMA call has cleaned it to RAM yet. */
  readonly pending: Uint8Array;
  /** An invalidate may have discarded the CPU's last store to this byte. */
  readonly exempt: Uint8Array;
  /** Step of the last write to each byte. */
  readonly wroteAt: Int32Array;
  /** Step of the last stale-cpu-read / stale-device-read / lost-device-write reported for this buffer. */
  staleCpuAt: number;
  staleDevAt: number;
  lostAt: number;
  /** Step of the last DMA API call on this buffer (a new ownership epoch). */
  apiAt: number;
  map: Mapping | null;
  tainted: boolean;
}

const fill = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (seed + i * 31 + 1) & 0xff);
const devOwns = (m: Mapping): boolean => m.owner === "device" || m.recycledAt === m.hist;

function boot(profile: Profile, seed: number) {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  desc.platform = [];
  desc.cpus.l1 = { size: 4096, ways: 2 };
  desc.cpus.llc = { size: 16384, ways: 4 };
  desc.cpus.evictionRate = 0.02;
  desc.cpus.prefetchRate = 0.3;
  const board = new Board(desc, { seed });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  const san = dma_sanitizer_init(k);
  const dev = new device("0000:00:05.0", "pci");
  dev.dma_coherent = desc.dma.coherent;
  dev.driver = { name: "propdrv" };
  const port = new DmaPort(board.mem, board.log, { name: "dev5", coherent: desc.dma.coherent, addressBits: 64 });
  san.attachPort(port, dev);
  return { k, dev, port };
}

/** Run one sequence; returns the first violated property, or null. */
function run(profile: Profile, seed: number, sizes: number[], ops: Op[], legalOnly: boolean): string | null {
  const { k, dev, port } = boot(profile, seed);
  const on = <T>(cpu: number, fn: () => T): T => k.exec.runOn(cpu, "process", "propdrv", "op", fn) as T;
  const bufs: Buf[] = sizes.map((size) => {
    const va = on(0, () => kzalloc(size, 0));
    const writer = new Uint8Array(size).fill(WRITER_CPU); // kzalloc's memset
    const fresh = { pending: new Uint8Array(size).fill(1), exempt: new Uint8Array(size), wroteAt: new Int32Array(size).fill(-1), staleCpuAt: -2, staleDevAt: -2, lostAt: -2, apiAt: -1 };
    return { va, phys: virt_to_phys(va), size, truth: new Uint8Array(size), writer, ...fresh, map: null, tainted: false };
  });
  const seen = new Set<string>();
  const graves: { b: Buf; id: number }[] = [];
  let nextId = 0;
  let done = 0;

  /** A cause the model predicts, deduplicated the sanitizer's way. */
  const predict = (out: FindingKind[], kind: FindingKind, key: string, b: Buf): void => {
    b.tainted = true;
    if (seen.has(key)) return;
    seen.add(key);
    out.push(kind);
  };
  const dropPending = (b: Buf, dir: Dir, invalidates: boolean): void => {
    if (profile === "x86-coherent") return b.pending.fill(0) && undefined;
    if (!invalidates) return;
    if (dir === DMA_TO_DEVICE) return;
    for (let i = 0; i < b.size; i++) if (b.pending[i] && b.writer[i] === WRITER_CPU) b.exempt[i] = 1;
    b.pending.fill(0);
  };
  const bufAt = (addr: number): Buf | undefined => bufs.find((b) => addr >= b.phys && addr < b.phys + b.size);

  for (const [step, op] of ops.entries()) {
    const b = bufs[op.b];
    const m = b.map;
    const want: FindingKind[] = [];
    let result: Uint8Array | null = null;
    let range: [number, number] = [0, 0];
    switch (op.t) {
      case "map": {
        if (m) continue;
        const h = on(op.cpu, () => dma_map_single(dev, b.va, b.size, op.dir));
        if (on(op.cpu, () => dma_mapping_error(dev, h)) !== 0) return `step ${step}: map failed`;
        b.map = { id: nextId++, h, dir: op.dir, owner: "device", hist: 2, handoverAt: 0, cpuWriteAt: -1, recycledAt: -1 };
        b.pending.fill(0); // map cleans
        b.apiAt = step;
        break;
      }
      case "unmap":
        if (!m) continue;
        on(op.cpu, () => dma_unmap_single(dev, m.h, b.size, m.dir));
        dropPending(b, m.dir, true);
        b.map = null;
        graves.push({ b, id: m.id });
        b.apiAt = step;
        if (graves.length > SAN_GRAVES_PER_DEVICE) graves.shift();
        break;
      case "syncCpu":
        if (!m || (legalOnly && m.owner !== "device")) continue;
        on(op.cpu, () => dma_sync_single_for_cpu(dev, m.h, b.size, m.dir));
        m.hist++;
        m.owner = "cpu";
        dropPending(b, m.dir, true);
        b.apiAt = step;
        break;
      case "syncDev":
        if (!m || (legalOnly && m.owner !== "cpu")) continue;
        on(op.cpu, () => dma_sync_single_for_device(dev, m.h, b.size, m.dir));
        m.handoverAt = m.hist++;
        m.owner = "device";
        b.pending.fill(0); // sync_for_device cleans
        b.apiAt = step;
        break;
      case "cpuRead":
      case "cpuWrite": {
        const off = op.off % b.size;
        const len = Math.min(op.len, b.size - off);
        range = [off, off + len];
        const write = op.t === "cpuWrite";
        if (m && devOwns(m)) {
          if (legalOnly) continue;
          predict(want, "cpu-access-device-owned", `c|${m.id}|${write ? "write" : "read"}|${m.hist}`, b);
        } else if (m && write) m.cpuWriteAt = m.hist;
        if (write) {
          const data = fill(len, op.seed);
          on(op.cpu, () => copy_from_user(b.va + off, data));
          b.truth.set(data, off);
          b.writer.fill(WRITER_CPU, off, off + len);
          b.pending.fill(1, off, off + len);
          b.exempt.fill(0, off, off + len);
          b.wroteAt.fill(step, off, off + len);
        } else {
          result = new Uint8Array(len);
          on(op.cpu, () => copy_to_user(result!, b.va + off, len));
        }
        break;
      }
      case "devRead":
      case "devWrite": {
        const off = op.off % b.size;
        const len = Math.min(op.len, b.size - off);
        range = [off, off + len];
        const write = op.t === "devWrite";
        const access = write ? "write" : "read";
        const allowed = m ? (write ? m.dir !== DMA_TO_DEVICE : m.dir !== DMA_FROM_DEVICE) : false;
        if (!m) {
          if (legalOnly) continue;
          const grave = graves.findLast((g) => g.b === b);
          predict(want, "device-access-unmapped", grave ? `u|g${grave.id}|${access}` : `u|p${Math.floor((b.phys + off) / 4096)}|${access}`, b);
        } else if (devOwns(m)) {
          if (!allowed) continue; // a direction violation: no kind of ours (an IOMMU would fault)
        } else if (allowed && m.cpuWriteAt <= m.handoverAt) {
          m.recycledAt = m.hist; // the documented recycle: legal, and the device owns it again
        } else {
          if (legalOnly) continue;
          predict(want, "device-access-cpu-owned", `d|${m.id}|${access}|${m.hist}`, b);
        }
        const addr = m ? m.h + off : b.phys + off;
        if (write) {
          const data = fill(len, op.seed);
          if (!port.write(addr, data, 0, len)) return `step ${step}: device write failed`;
          b.truth.set(data, off);
          b.writer.fill(WRITER_DEV, off, off + len);
          b.exempt.fill(0, off, off + len);
          b.wroteAt.fill(step, off, off + len);
        } else {
          result = new Uint8Array(len);
          if (!port.read(addr, result, 0, len)) return `step ${step}: device read failed`;
        }
        break;
      }
    }
    const fresh: Finding[] = k.findings.list.slice(done);
    done = k.findings.count;
    const causes = fresh.filter((f) => CAUSES.includes(f.kind)).map((f) => f.kind).sort();
    const effects = fresh.filter((f) => EFFECTS.includes(f.kind));
    const other = fresh.filter((f) => !CAUSES.includes(f.kind) && !EFFECTS.includes(f.kind));
    if (other.length) return `step ${step} (${op.t}): unexpected ${other.map((f) => f.kind).join(", ")}`;
    if (causes.join(",") !== want.sort().join(",")) return `step ${step} (${op.t} ${op.b}): causes [${causes}] but the model says [${want}]`;
    if (legalOnly && effects.length) return `step ${step} (${op.t}): effect ${effects[0].kind} in a correct sequence`;
    if (profile === "x86-coherent" && effects.length) return `step ${step}: effect ${effects[0].kind} on a coherent machine`;
    for (const f of effects) {
      const eb = bufAt(parseInt(String(f.details!.addr), 16));
      if (!eb) return `step ${step}: ${f.kind} at ${f.details!.addr}, in no buffer`;
      if (!eb.tainted) return `step ${step}: ${f.kind} on buffer ${bufs.indexOf(eb)}, which saw no misuse`;
      if (f.kind === "stale-cpu-read") eb.staleCpuAt = step;
      if (f.kind === "stale-device-read") eb.staleDevAt = step;
      if (f.kind === "lost-device-write") eb.lostAt = step;
    }
    tally.causes += causes.length;
    tally.effects += effects.length;
    if (result && result.some((v, i) => v !== b.truth[range[0] + i])) tally.divergentReads++;
    if (result) {
      const why = explain(op, b, range, result, b.map !== null);
      if (why) return `step ${step}: ${why}`;
    }
  }
  for (const b of bufs) if (b.map) on(0, () => dma_unmap_single(dev, b.map!.h, b.size, b.map!.dir));
  if (dma_debug_live().length !== 0) return "live mappings left";
  if (legalOnly && k.findings.count !== 0) return `findings in a correct run: ${k.findings.list.map((f) => f.kind).join(", ")}`;
  return null;
}

/**
 * Bytes seen that differ from the truth must be explained by an effect; null when they are.
 * The sanitizer counts effects once per episode: stale-cpu-read and lost-device-write once per
 * device write (so one reported after the byte's write explains it), stale-device-read once
 * per mapping and ownership epoch (once per line for memory no mapping covers).
 */
function explain(op: Op, b: Buf, [off, end]: [number, number], seen: Uint8Array, mapped: boolean): string | null {
  for (let i = off; i < end; i++) {
    if (seen[i - off] === b.truth[i] || b.exempt[i]) continue;
    const lost = b.lostAt >= b.wroteAt[i];
    if (op.t === "cpuRead" && b.writer[i] === WRITER_DEV && (b.staleCpuAt >= b.wroteAt[i] || lost)) continue;
    if (op.t === "devRead" && b.writer[i] === WRITER_CPU && b.staleDevAt >= (mapped ? Math.min(b.apiAt, b.wroteAt[i]) : 0)) continue;
    if (op.t === "devRead" && b.writer[i] === WRITER_DEV && lost) continue;
    return `${op.t} of buffer ${op.b} byte ${i} saw ${seen[i - off]}, truth ${b.truth[i]} (written by ${b.writer[i] === WRITER_CPU ? "CPU" : "device"}), and no effect explains it`;
  }
  return null;
}

function property(profile: Profile, legalOnly: boolean, numRuns: number): void {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.array(fc.constantFrom(...SIZES), { minLength: NBUF, maxLength: NBUF }),
      fc.array(opArb, { minLength: 1, maxLength: 120, size: "max" }),
      (seed, sizes, ops) => {
        expect(run(profile, seed, sizes, ops, legalOnly)).toBeNull();
      },
    ),
    { numRuns },
  );
}

describe("coherence sanitizer: the ownership model, enforced", () => {
  it("arm64-noncoherent: correct sequences yield no finding", () => property("arm64-noncoherent", true, 100));
  it("arm64-noncoherent: every misuse yields exactly the predicted cause, and every wrong byte an effect", () => {
    Object.assign(tally, { causes: 0, effects: 0, divergentReads: 0 });
    property("arm64-noncoherent", false, 150);
    expect(tally.causes).toBeGreaterThan(100);
    expect(tally.effects).toBeGreaterThan(10);
    expect(tally.divergentReads).toBeGreaterThan(10);
  });
  it("x86-coherent: the same causes, and never an effect", () => property("x86-coherent", false, 50));

  it("the model has teeth: a known misuse sequence is caught with the predicted kinds", () => {
    const ops: Op[] = [
      { t: "cpuRead", b: 0, cpu: 0, off: 0, len: 512 },
      { t: "map", b: 0, dir: DMA_FROM_DEVICE, cpu: 0 },
      { t: "devWrite", b: 0, cpu: 0, off: 0, len: 512, seed: 7 },
      { t: "cpuRead", b: 0, cpu: 0, off: 0, len: 512 },
      { t: "cpuWrite", b: 0, cpu: 1, off: 0, len: 8, seed: 1 },
      { t: "syncDev", b: 0, cpu: 0 },
      { t: "unmap", b: 0, cpu: 0 },
      { t: "devWrite", b: 0, cpu: 0, off: 0, len: 16, seed: 3 },
    ];
    expect(run("arm64-noncoherent", 1, [512, 64, 64], ops, false)).toBeNull();
    expect(run("x86-coherent", 1, [512, 64, 64], ops, false)).toBeNull();
    expect(run("arm64-noncoherent", 1, [512, 64, 64], ops, true)).toBeNull();
  });

  it("regression: a multi-line CPU copy whose first line is evicted before the copy ends is no lost write", () => {
    // The CPU owns the buffer and overwrites device-written lines; a line written back while
    // the same memcpy is still running must already count as the CPU's (onCpuStore, per line).
    const ops: Op[] = [
      { t: "map", b: 1, dir: 0, cpu: 0 },
      { t: "devWrite", b: 1, cpu: 0, seed: 0, off: 0, len: 1025 },
      { t: "cpuWrite", b: 0, cpu: 0, seed: 0, off: 0, len: 1 },
      { t: "syncCpu", b: 1, cpu: 0 },
      { t: "cpuWrite", b: 1, cpu: 0, seed: 0, off: 960, len: 129 },
      { t: "map", b: 0, dir: 0, cpu: 0 },
    ];
    expect(run("arm64-noncoherent", 1877782232, [64, 4096, 64], ops, true)).toBeNull();
  });

  it("regression: a stale line evicted by the next line's miss of the same load is still a stale read", () => {
    // The load of bytes 0..64 returns line 0 stale, then line 1's miss evicts line 0; the check
    // must have seen line 0's bytes already (onCpuLoad, per line).
    const ops = JSON.parse(
      '[{"t":"cpuRead","b":0,"cpu":0,"off":0,"len":65},{"t":"cpuRead","b":0,"cpu":0,"off":0,"len":1},{"t":"cpuRead","b":0,"cpu":1,"off":0,"len":1},' +
        '{"t":"cpuRead","b":0,"cpu":0,"off":0,"len":1},{"t":"cpuWrite","b":0,"cpu":0,"seed":0,"off":0,"len":65},{"t":"cpuRead","b":0,"cpu":0,"off":0,"len":65},' +
        '{"t":"cpuRead","b":0,"cpu":1,"off":209,"len":56},{"t":"map","b":0,"dir":0,"cpu":0},{"t":"unmap","b":0,"cpu":0},{"t":"cpuRead","b":0,"cpu":0,"off":0,"len":1},' +
        '{"t":"cpuRead","b":1,"cpu":0,"off":155,"len":166},{"t":"cpuRead","b":0,"cpu":1,"off":0,"len":65},{"t":"devWrite","b":0,"cpu":0,"seed":0,"off":1,"len":1},' +
        '{"t":"cpuWrite","b":1,"cpu":0,"seed":0,"off":0,"len":705},{"t":"cpuWrite","b":1,"cpu":0,"seed":0,"off":0,"len":129},{"t":"cpuWrite","b":0,"cpu":0,"seed":0,"off":3064,"len":1},' +
        '{"t":"cpuWrite","b":1,"cpu":1,"seed":0,"off":0,"len":897},{"t":"cpuRead","b":0,"cpu":0,"off":0,"len":65},{"t":"cpuWrite","b":0,"cpu":0,"seed":0,"off":0,"len":1}]',
    ) as Op[];
    expect(run("arm64-noncoherent", 1704825322, [100, 1000, 200], ops, false)).toBeNull();
  });
});
