/**
 * Property: the coherence sanitizer enforces the ownership model (§1.2, §4.4, §4.5) exactly.
 *
 * Random command sequences of map / sync / CPU access / device access / unmap run on a kernel
 * with the sanitizer on, against small caches that evict and prefetch at random. Syncs name the
 * whole mapping or part of it (dma_sync_single_range_for_*, or dma_sync_single_for_* of the
 * handle plus an offset), over ranges aligned to a granule, a line, or nothing. A model that
 * knows nothing of caches (sanitizer-model.ts) keeps who owns each byte and predicts, step by
 * step, the cause findings the ownership rules call for, with the bytes each names (with the
 * sanitizer's deduplication: one per mapping, access and ownership epoch): touching the other
 * side's bytes, a store sharing a granule with bytes the device owns (the shared-line hazard),
 * and the recycle rule judged by the last call that handed the touched bytes to the device. It
 * also keeps the truth of every byte (the last value anyone wrote, which a coherent machine
 * shows).
 * - Correct sequences yield no finding at all.
 * - Every step yields exactly the predicted causes, on arm64 and on x86.
 * - An effect finding only ever names a buffer some cause was reported for (no effect without
 *   a misuse), and never appears on x86.
 * - Every time the CPU or the device sees bytes other than the truth, an effect explains it: a
 *   stale-cpu-read or stale-device-read at that step, or an earlier lost-device-write of those
 *   bytes. The only exemption is a CPU store that an invalidate legitimately discarded
 *   (sync_for_cpu / unmap of a FROM_DEVICE or BIDIRECTIONAL buffer: the lines a sync covers
 *   wholly; a partly covered edge line is cleaned+invalidated, so its stores survive), which no
 *   kind names.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import { DmaPort } from "../../hw/dma/dma-port.ts";
import { Platform } from "../../kernel/platform/platform.ts";
import { Kernel } from "../../kernel/core/kernel.ts";
import type { Finding } from "../../kernel/core/findings.ts";
import { device } from "../../kernel/include/device.ts";
import type { dma_addr_t } from "../../kernel/include/types.ts";
import { kzalloc, virt_to_phys } from "../../kernel/mm/slab-api.ts";
import { copy_from_user, copy_to_user } from "../../kernel/mm/access.ts";
import {
  DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_sync_single_for_cpu, dma_sync_single_for_device,
  dma_sync_single_range_for_cpu, dma_sync_single_range_for_device, dma_unmap_single,
} from "../../kernel/include/dma-mapping.ts";
import { dma_debug_live } from "../../kernel/dma/debug.ts";
import { dma_sanitizer_init } from "../../kernel/dma/sanitizer/index.ts";
import { SAN_GRAVES_PER_DEVICE } from "../../kernel/dma/sanitizer/graves.ts";
import {
  CAUSES, EFFECTS, LINE, NBUF, SIZES, WRITER_CPU, WRITER_DEV, clean, cpuVerdict, deviceVerdict, explain, fill, granuleOf, handOver, invalidate,
  focusArb, labelOf, newBuf, newMapping, opArb, opRange, ownsAll, type Buf, type Cause, type Op, type Profile,
} from "./sanitizer-model.ts";

/** What the runs exercised, so a property that never meets an effect (or a partial sync) cannot pass quietly. */
const tally = { nextToBuffer: 0, causes: 0, effects: 0, divergentReads: 0, partialSyncs: 0, unalignedSyncs: 0, sharedLine: 0, recycle: 0, "recycle-after-write": 0, uncovered: 0 };
const resetTally = (): void => void Object.keys(tally).forEach((k) => (tally[k as keyof typeof tally] = 0));

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

/** What a run reported, for tests that pin a sequence: cause labels (Cause.label) and effect kinds. */
interface RunLog {
  causes: string[];
  effects: string[];
}

/** Run one sequence; returns the first violated property, or null. @log collects what was reported. */
function run(profile: Profile, seed: number, sizes: number[], ops: Op[], legalOnly: boolean, log?: RunLog): string | null {
  const { k, dev, port } = boot(profile, seed);
  const arm = profile === "arm64-noncoherent";
  const granule = granuleOf(profile);
  const on = <T>(cpu: number, fn: () => T): T => k.exec.runOn(cpu, "process", "propdrv", "op", fn) as T;
  const bufs: Buf[] = sizes.map((size) => {
    const va = on(0, () => kzalloc(size, 0));
    return newBuf(va, virt_to_phys(va), size);
  });
  const seen = new Set<string>();
  const graves: { b: Buf; id: number }[] = [];
  let nextId = 0;
  let done = 0;

  /** A cause the model predicts, deduplicated the sanitizer's way. */
  const predict = (out: Cause[], c: Cause, b: Buf): void => {
    b.tainted = true;
    if (seen.has(c.key)) return;
    seen.add(c.key);
    out.push(c);
  };
  const bufAt = (addr: number): Buf | undefined => bufs.find((b) => addr >= b.phys && addr < b.phys + b.size);

  for (const [step, op] of ops.entries()) {
    const b = bufs[op.b];
    const m = b.map;
    const want: Cause[] = [];
    let result: Uint8Array | null = null;
    const obj = k.slab.objectAt(b.phys);
    const slotEnd = obj ? obj.phys + obj.slotSize - b.phys : b.size; // the end of the kmalloc slot, from the buffer
    const range = opRange(op, b.size, slotEnd);
    const [off, end] = range;
    switch (op.t) {
      case "map": {
        if (m) continue;
        const h = on(op.cpu, () => dma_map_single(dev, b.va, b.size, op.dir));
        if (on(op.cpu, () => dma_mapping_error(dev, h)) !== 0) return `step ${step}: map failed`;
        b.map = newMapping(nextId++, h, op.dir, b.size);
        clean(b, 0, b.size); // map cleans, whatever the direction
        b.apiAt = step;
        break;
      }
      case "unmap":
        if (!m) continue;
        on(op.cpu, () => dma_unmap_single(dev, m.h, b.size, m.dir));
        if (arm && m.dir !== DMA_TO_DEVICE) invalidate(b, 0, b.size);
        b.map = null;
        graves.push({ b, id: m.id });
        b.apiAt = step;
        if (graves.length > SAN_GRAVES_PER_DEVICE) graves.shift();
        break;
      case "syncCpu":
      case "syncCpuPart":
      case "syncDev":
      case "syncDevPart": {
        const toCpu = op.t === "syncCpu" || op.t === "syncCpuPart";
        // a correct driver hands over only bytes the other side owns
        if (!m || (legalOnly && !ownsAll(m, off, end, !toCpu))) continue;
        const len = end - off;
        if (!("range" in op)) on(op.cpu, () => (toCpu ? dma_sync_single_for_cpu : dma_sync_single_for_device)(dev, m.h, b.size, m.dir));
        else {
          if (op.range) on(op.cpu, () => (toCpu ? dma_sync_single_range_for_cpu : dma_sync_single_range_for_device)(dev, m.h, off, len, m.dir));
          else on(op.cpu, () => (toCpu ? dma_sync_single_for_cpu : dma_sync_single_for_device)(dev, (m.h + off) as dma_addr_t, len, m.dir));
          tally.partialSyncs++;
          if ((b.phys + off) % LINE !== 0 || (b.phys + end) % LINE !== 0) tally.unalignedSyncs++;
        }
        handOver(m, off, end, toCpu);
        // sync_for_cpu invalidates the range (not TO_DEVICE); sync_for_device cleans it (§5.2)
        if (arm && toCpu && m.dir !== DMA_TO_DEVICE) invalidate(b, off, end);
        if (arm && !toCpu) clean(b, off, end);
        b.apiAt = step;
        break;
      }
      case "cpuRead":
      case "cpuWrite":
      case "cpuWriteNext": {
        const write = op.t !== "cpuRead";
        if (end <= off) continue; // no slack next to this buffer
        // a correct driver stores nothing next to a buffer the device may write (§5.3)
        if (legalOnly && op.t === "cpuWriteNext" && m && m.dir !== DMA_TO_DEVICE) continue;
        if (m) {
          const v = cpuVerdict(m, b, off, end, write, granule, slotEnd);
          if (legalOnly && v.causes.length) continue;
          for (const c of v.causes) predict(want, c, b);
          if (v.ownWrite) m.cpuWriteAt = m.hist;
        }
        if (op.t === "cpuWriteNext") {
          tally.nextToBuffer++;
          on(op.cpu, () => copy_from_user(b.va + off, fill(end - off, op.seed))); // no byte of the buffer: no truth to keep
        } else if (op.t === "cpuWrite") {
          const data = fill(end - off, op.seed);
          on(op.cpu, () => copy_from_user(b.va + off, data));
          b.truth.set(data, off);
          b.writer.fill(WRITER_CPU, off, end);
          b.pending.fill(1, off, end);
          b.exempt.fill(0, off, end);
          b.wroteAt.fill(step, off, end);
        } else {
          result = new Uint8Array(end - off);
          on(op.cpu, () => copy_to_user(result!, b.va + off, end - off));
        }
        break;
      }
      case "devRead":
      case "devWrite": {
        const write = op.t === "devWrite";
        const access = write ? "write" : "read";
        if (!m) {
          if (legalOnly) continue;
          const grave = graves.findLast((g) => g.b === b);
          const key = grave ? `u|g${grave.id}|${access}` : `u|p${Math.floor((b.phys + off) / 4096)}|${access}`;
          predict(want, { kind: "device-access-unmapped", key, label: "device-access-unmapped" }, b);
        } else {
          const v = deviceVerdict(m, off, end, write);
          if (v.skip || (legalOnly && v.cause)) continue;
          if (v.cause) predict(want, v.cause, b);
          // the documented recycle: legal, and the bytes taken are the device's until a sync_for_cpu
          if (v.recycle) m.cpu.fill(0, v.recycle[0], v.recycle[1]);
          if (v.why in tally) tally[v.why as keyof typeof tally]++;
        }
        const addr = m ? m.h + off : b.phys + off;
        if (write) {
          const data = fill(end - off, op.seed);
          if (!port.write(addr, data, 0, end - off)) return `step ${step}: device write failed`;
          b.truth.set(data, off);
          b.writer.fill(WRITER_DEV, off, end);
          b.exempt.fill(0, off, end);
          b.wroteAt.fill(step, off, end);
        } else {
          result = new Uint8Array(end - off);
          if (!port.read(addr, result, 0, end - off)) return `step ${step}: device read failed`;
        }
        break;
      }
    }
    const fresh: Finding[] = k.findings.list.slice(done);
    done = k.findings.count;
    const causes = fresh.filter((f) => CAUSES.includes(f.kind)).map(labelOf).sort();
    const effects = fresh.filter((f) => EFFECTS.includes(f.kind));
    const other = fresh.filter((f) => !CAUSES.includes(f.kind) && !EFFECTS.includes(f.kind));
    const predicted = want.map((c) => c.label).sort();
    log?.causes.push(...causes);
    log?.effects.push(...effects.map((f) => f.kind));
    if (other.length) return `step ${step} (${op.t}): unexpected ${other.map((f) => f.kind).join(", ")}`;
    if (causes.join(",") !== predicted.join(",")) return `step ${step} (${op.t} ${op.b} [${off}, ${end})): causes [${causes}] but the model says [${predicted}]`;
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
    tally.sharedLine += causes.filter((c) => c.endsWith("/shared-line")).length;
    if (result && result.some((v, i) => v !== b.truth[off + i])) tally.divergentReads++;
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

function property(profile: Profile, legalOnly: boolean, numRuns: number, focus = false): void {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      focus ? fc.tuple(fc.constantFrom(200, 512, 4096), fc.constant(64), fc.constant(128)) : fc.array(fc.constantFrom(...SIZES), { minLength: NBUF, maxLength: NBUF }),
      focus ? focusArb : fc.array(opArb, { minLength: 1, maxLength: 120, size: "max" }),
      (seed, sizes, ops) => {
        expect(run(profile, seed, sizes, ops, legalOnly)).toBeNull();
      },
    ),
    { numRuns },
  );
}

describe("coherence sanitizer: the ownership model, enforced", () => {
  it("arm64-noncoherent: correct sequences yield no finding", () => {
    resetTally();
    property("arm64-noncoherent", true, 100);
    property("arm64-noncoherent", true, 50, true);
    expect(tally.partialSyncs).toBeGreaterThan(100);
  });
  it("arm64-noncoherent: every misuse yields exactly the predicted cause, and every wrong byte an effect", () => {
    resetTally();
    property("arm64-noncoherent", false, 150);
    property("arm64-noncoherent", false, 100, true);
    expect(tally.causes).toBeGreaterThan(100);
    expect(tally.effects).toBeGreaterThan(10);
    expect(tally.divergentReads).toBeGreaterThan(10);
    // the per-byte rules were met, not only whole-mapping syncs
    expect(tally.partialSyncs).toBeGreaterThan(500);
    expect(tally.unalignedSyncs).toBeGreaterThan(100);
    expect(tally.sharedLine).toBeGreaterThan(0);
    expect(tally["recycle-after-write"]).toBeGreaterThan(0);
    expect(tally.uncovered).toBeGreaterThan(0);
  });
  it("x86-coherent: the same causes, and never an effect", () => {
    property("x86-coherent", false, 50);
    property("x86-coherent", false, 30, true);
  });

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

  it("the model has teeth: partial syncs split ownership byte by byte, granule by granule, hand-over by hand-over", () => {
    const P = { cpu: 0, align: 1, range: true } as const;
    const ops: Op[] = [
      { t: "map", b: 0, dir: 0, cpu: 0 },
      { t: "syncCpuPart", b: 0, off: 0, len: 64, ...P }, // the CPU owns half a granule
      { t: "cpuWrite", b: 0, cpu: 0, off: 0, len: 8, seed: 1 }, // its own bytes, but a granule the device shares
      { t: "cpuRead", b: 0, cpu: 1, off: 32, len: 64 }, // 64..95 are still the device's
      { t: "syncDevPart", b: 0, off: 0, len: 64, ...P },
      { t: "syncCpu", b: 0, cpu: 0 },
      { t: "cpuWrite", b: 0, cpu: 0, off: 500, len: 1, seed: 2 }, // no sync_for_device cleans this line below
      { t: "syncDevPart", b: 0, off: 0, len: 128, ...P, range: false }, // hands 0..127 over again, after the write
      { t: "syncCpuPart", b: 0, off: 0, len: 128, ...P },
      { t: "devRead", b: 0, cpu: 0, off: 0, len: 64 }, // the recycle: covered by the hand-over after the write
      { t: "cpuRead", b: 0, cpu: 0, off: 0, len: 1 }, // the device owns the mapping again
      { t: "devRead", b: 0, cpu: 0, off: 500, len: 1 }, // only the map handed byte 500 over, before the write
      { t: "syncDevPart", b: 0, off: 256, len: 256, ...P },
      { t: "devWrite", b: 0, cpu: 0, off: 256, len: 64, seed: 3 }, // the device's bytes
      { t: "devWrite", b: 0, cpu: 0, off: 200, len: 60, seed: 4 }, // 200..255: the last hand-over missed them
      { t: "unmap", b: 0, cpu: 0 },
    ];
    const log: RunLog = { causes: [], effects: [] };
    expect(run("arm64-noncoherent", 1, [4096, 64, 128], ops, false, log)).toBeNull();
    expect(log.causes).toEqual([
      "cpu-access-device-owned/shared-line",
      "cpu-access-device-owned@64-95",
      "cpu-access-device-owned@0-0",
      "device-access-cpu-owned@500-500",
      "device-access-cpu-owned@200-255",
    ]);
    // byte 500 really was stale for the device (its line dirty since the store): the cause above explains it
    expect(log.effects).toEqual(["stale-device-read"]);
    // x86: the granule is a 64-byte line, which the CPU owns whole: no shared-line hazard
    const x86: RunLog = { causes: [], effects: [] };
    expect(run("x86-coherent", 1, [4096, 64, 128], ops, false, x86)).toBeNull();
    expect(x86.causes).toEqual(log.causes.slice(1));
  });

  it("regression: what a recycle took stays the device's across a partial sync, and a store next to the buffer stops a recycle", () => {
    // 1. A recycle of byte 100, then a partial sync of other bytes: byte 100 is still the
    //    device's, so the CPU's read of it (stale on arm64) is the cause.
    const recycled = (sync: Op): Op[] => [
      { t: "map", b: 0, dir: 0, cpu: 0 },
      { t: "syncCpu", b: 0, cpu: 0 },
      { t: "cpuRead", b: 0, cpu: 0, off: 100, len: 1 },
      { t: "devWrite", b: 0, cpu: 0, off: 100, len: 1, seed: 9 }, // the recycle
      sync,
      { t: "cpuRead", b: 0, cpu: 0, off: 100, len: 1 },
    ];
    const part = { b: 0, cpu: 0, off: 0, len: 1, align: 1, range: true } as const;
    for (const sync of [{ t: "syncDevPart", ...part }, { t: "syncCpuPart", ...part }] as Op[]) {
      const log: RunLog = { causes: [], effects: [] };
      expect(run("arm64-noncoherent", 1, [4096, 64, 128], recycled(sync), false, log)).toBeNull();
      expect(log).toEqual({ causes: ["cpu-access-device-owned@100-100"], effects: ["stale-cpu-read"] });
      expect(run("arm64-noncoherent", 1, [4096, 64, 128], recycled(sync), true)).toBeNull(); // a correct driver does not read it
    }
    // 2. A store next to a 200-byte buffer (its kmalloc slot's slack, in the buffer's last
    //    line) while the CPU owns it: the device may not take the buffer back unsynced, and the
    //    unmap's flush of that dirty line destroys what the device wrote in it.
    const next: Op[] = [
      { t: "map", b: 0, dir: 0, cpu: 0 },
      { t: "syncCpu", b: 0, cpu: 0 },
      { t: "cpuWriteNext", b: 0, cpu: 0, off: 0, len: 1, seed: 0 },
      { t: "devWrite", b: 0, cpu: 0, off: 0, len: 200, seed: 0 },
      { t: "unmap", b: 0, cpu: 0 },
    ];
    const log: RunLog = { causes: [], effects: [] };
    expect(run("arm64-noncoherent", 1, [200, 64, 128], next, false, log)).toBeNull();
    expect(log).toEqual({ causes: ["device-access-cpu-owned@0-199"], effects: ["lost-device-write"] });
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
