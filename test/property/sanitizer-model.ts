/**
 * The model behind test/property/sanitizer.prop.test.ts: what the coherence sanitizer must
 * report for a sequence of map / sync / access / unmap, worked out from the ownership rules
 * (§1.2, §4.4, §4.5) and the cache maintenance of §5, knowing nothing of caches.
 *
 * Ownership is per byte (kernel/dma/debug-owner.ts): a sync names a range, and only those bytes
 * change hands. The model keeps, per mapping, who owns each byte, the ownership epoch (the
 * length of dma-debug's history), every call that handed bytes to the device (for the recycle
 * rule) and when the CPU last wrote the mapping. A tolerated recycle hands the CPU's bytes the
 * device touched to the device, as a sync would (until a sync_for_cpu or the unmap).
 * Per buffer it keeps the truth of every byte (the last value anyone wrote) and what the cache
 * maintenance of each call did to the CPU's stores still sitting in dirty lines (to know which
 * stores an invalidate may legitimately have discarded).
 */

import fc from "fast-check";
import type { Finding, FindingKind } from "../../kernel/core/findings.ts";
import type { dma_addr_t, vaddr_t } from "../../kernel/include/types.ts";
import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from "../../kernel/include/dma-mapping.ts";

export type Dir = 0 | 1 | 2; // DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE
export type Profile = "arm64-noncoherent" | "x86-coherent";

/**
 * One command. A partial sync ("syncCpuPart" / "syncDevPart") names bytes [off, off+len) of
 * the mapping (reduced modulo the buffer size), rounded out to `align` (1: any bytes, so not
 * cache-line aligned), and is issued as dma_sync_single_range_for_* (`range`) or as
 * dma_sync_single_for_* of the handle plus the offset. "cpuWriteNext" stores next to the
 * buffer, into the slack of its kmalloc slot (at offset off modulo the slack).
 */
export type Op =
  | { t: "map"; b: number; dir: Dir; cpu: number }
  | { t: "unmap" | "syncCpu" | "syncDev"; b: number; cpu: number }
  | { t: "syncCpuPart" | "syncDevPart"; b: number; cpu: number; off: number; len: number; align: number; range: boolean }
  | { t: "cpuRead" | "devRead"; b: number; cpu: number; off: number; len: number }
  | { t: "cpuWrite" | "devWrite"; b: number; cpu: number; off: number; len: number; seed: number }
  | { t: "cpuWriteNext"; b: number; cpu: number; off: number; len: number; seed: number };

export const CAUSES: readonly FindingKind[] = ["cpu-access-device-owned", "device-access-cpu-owned", "device-access-unmapped"];
export const EFFECTS: readonly FindingKind[] = ["stale-cpu-read", "lost-device-write", "stale-device-read"];
export const NBUF = 3;
export const SIZES = [64, 100, 128, 200, 512, 1000, 4096];
export const WRITER_CPU = 1;
export const WRITER_DEV = 2;
/** The machines' cache line (hw/cpu/cache.ts): the unit of every maintenance operation. */
export const LINE = 64;
/**
 * The granule a device-written buffer must not share with CPU stores: max(line,
 * ARCH_DMA_MINALIGN) (the sanitizer's `granule`): 128 on arm64, 64 on x86.
 */
export const granuleOf = (profile: Profile): number => (profile === "arm64-noncoherent" ? 128 : 64);

/**
 * Offsets and lengths: any, or from a small palette, so that accesses and partial syncs of one
 * buffer often name the same bytes, line or granule (what the split-ownership rules are about).
 */
const offArb = fc.oneof({ weight: 1, arbitrary: fc.nat(4095) }, { weight: 2, arbitrary: fc.constantFrom(0, 0, 32, 64, 100, 128, 192, 256) });
const lenArb = fc.oneof({ weight: 1, arbitrary: fc.integer({ min: 1, max: 4096 }) }, { weight: 2, arbitrary: fc.constantFrom(1, 32, 64, 128, 256) });
const span = { off: offArb, len: lenArb };
/** Buffer 0 most of the time, so that one mapping sees long chains of syncs and accesses. */
const bufArb = fc.oneof(fc.constant(0), fc.nat(NBUF - 1));
/** Partial syncs: aligned to nothing (not cache-line aligned), a line or a granule. */
const part = { ...span, align: fc.constantFrom(1, 1, 64, 128), range: fc.boolean() };
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ t: fc.constant("map" as const), b: bufArb, dir: fc.constantFrom<Dir>(0, 1, 2), cpu: fc.nat(1) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constantFrom("unmap" as const, "syncCpu" as const, "syncDev" as const), b: bufArb, cpu: fc.nat(1) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constantFrom("syncCpuPart" as const, "syncDevPart" as const), b: bufArb, cpu: fc.nat(1), ...part }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constantFrom("cpuRead" as const, "devRead" as const), b: bufArb, cpu: fc.nat(1), ...span }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constantFrom("cpuWrite" as const, "devWrite" as const), b: bufArb, cpu: fc.nat(1), seed: fc.nat(255), ...span }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("cpuWriteNext" as const), b: bufArb, cpu: fc.nat(1), seed: fc.nat(255), ...span }) },
);

/**
 * Sequences that stay on one mapping (buffer 0, mapped first) and name bytes from a palette of
 * offsets and lengths, aligned and not: long runs of partial syncs and accesses, where split
 * ownership, shared granules and recycles through part of the mapping happen often.
 */
const fOff = fc.constantFrom(0, 0, 16, 64, 100, 128, 192, 256);
const fLen = fc.constantFrom(1, 16, 48, 64, 128, 128, 256, 4096);
const fSpan = { b: fc.constant(0), cpu: fc.nat(1), off: fOff, len: fLen };
export const focusArb: fc.Arbitrary<Op[]> = fc.tuple(
  fc.constantFrom<Dir>(0, 0, 1, 2),
  fc.array(
    fc.oneof(
      { weight: 1, arbitrary: fc.record({ t: fc.constantFrom("unmap" as const, "syncCpu" as const, "syncDev" as const), b: fc.constant(0), cpu: fc.nat(1) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("map" as const), b: fc.constant(0), dir: fc.constantFrom<Dir>(0, 1, 2), cpu: fc.nat(1) }) },
      { weight: 8, arbitrary: fc.record({ t: fc.constantFrom("syncCpuPart" as const, "syncDevPart" as const), ...fSpan, align: fc.constantFrom(1, 64, 128), range: fc.boolean() }) },
      { weight: 5, arbitrary: fc.record({ t: fc.constantFrom("cpuRead" as const, "devRead" as const), ...fSpan }) },
      { weight: 5, arbitrary: fc.record({ t: fc.constantFrom("cpuWrite" as const, "devWrite" as const), ...fSpan, seed: fc.nat(255) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("cpuWriteNext" as const), ...fSpan, seed: fc.nat(255) }) },
    ),
    { minLength: 1, maxLength: 80, size: "max" },
  ),
).map(([dir, ops]) => [{ t: "map", b: 0, dir, cpu: 0 } as Op, ...ops]);

/** The bytes a write with @seed stores. */
export const fill = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (seed + i * 31 + 1) & 0xff);

/**
 * Bytes [off, end) of a buffer of @size that @op names (an access, or a partial sync's range);
 * for "cpuWriteNext", offsets past the buffer, in [size, @slotEnd) (empty: no slack).
 */
export function opRange(op: Op, size: number, slotEnd: number): [number, number] {
  if (op.t === "cpuWriteNext") {
    if (slotEnd <= size) return [size, size];
    const off = size + (op.off % (slotEnd - size));
    return [off, Math.min(slotEnd, off + op.len)];
  }
  if (!("off" in op)) return [0, size];
  const a = "align" in op ? op.align : 1;
  const off = Math.floor((op.off % size) / a) * a;
  return [off, Math.min(size, off + Math.ceil(op.len / a) * a)];
}

/** A call that handed bytes [lo, hi) to the device (map, sync_for_device), at history index `at`. */
interface HandOver {
  readonly at: number;
  readonly lo: number;
  readonly hi: number;
}

export interface Mapping {
  readonly id: number;
  readonly h: dma_addr_t;
  readonly dir: Dir;
  /** Per byte: 1 where the CPU owns it (dma-debug's cpu_owned), 0 where the device does. */
  readonly cpu: Uint8Array;
  /** Length of the dma-debug history: the ownership epoch. */
  hist: number;
  /** Every call that handed bytes to the device, oldest first. */
  readonly handovers: HandOver[];
  /**
   * History length when the CPU last stored, without a cause, into bytes it owned or next to
   * the buffer in its granules (a device-written mapping).
   */
  cpuWriteAt: number;
}

export interface Buf {
  readonly va: vaddr_t;
  readonly phys: number;
  readonly size: number;
  readonly truth: Uint8Array;
  readonly writer: Uint8Array;
  /** The CPU stored this byte and no maintenance has written its line to RAM since. */
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

export function newBuf(va: vaddr_t, phys: number, size: number): Buf {
  return {
    va, phys, size, truth: new Uint8Array(size), writer: new Uint8Array(size).fill(WRITER_CPU), // kzalloc's memset
    pending: new Uint8Array(size).fill(1), exempt: new Uint8Array(size), wroteAt: new Int32Array(size).fill(-1),
    staleCpuAt: -2, staleDevAt: -2, lostAt: -2, apiAt: -1, map: null, tainted: false,
  };
}

/** A fresh mapping: the device owns every byte; history = the map note and dma_mapping_error's. */
export function newMapping(id: number, h: dma_addr_t, dir: Dir, size: number): Mapping {
  return { id, h, dir, cpu: new Uint8Array(size), hist: 2, handovers: [{ at: 0, lo: 0, hi: size }], cpuWriteAt: -1 };
}

/** A sync of bytes [lo, hi): they change hands, and the call is a new history note. */
export function handOver(m: Mapping, lo: number, hi: number, toCpu: boolean): void {
  m.cpu.fill(toCpu ? 1 : 0, lo, hi);
  if (!toCpu) m.handovers.push({ at: m.hist, lo, hi });
  m.hist++;
}

/** The extent (first byte, one past the last) of the bytes in [lo, hi) the CPU (or the device) owns, or null. */
export function ownedExtent(m: Mapping, lo: number, hi: number, cpuSide: boolean): [number, number] | null {
  const want = cpuSide ? 1 : 0;
  let a = lo;
  while (a < hi && m.cpu[a] !== want) a++;
  if (a >= hi) return null;
  let b = hi;
  while (m.cpu[b - 1] !== want) b--;
  return [a, b];
}

/** Does the CPU (or the device) own every byte of [lo, hi)? */
export const ownsAll = (m: Mapping, lo: number, hi: number, cpuSide: boolean): boolean => ownedExtent(m, lo, hi, !cpuSide) === null;

/**
 * A cause the model predicts, with the sanitizer's deduplication key (findings.ts `first`) and
 * its label: the kind, then the bytes it names (offset_start-offset_end), or "/shared-line".
 */
export interface Cause {
  readonly kind: FindingKind;
  readonly key: string;
  readonly label: string;
}

/** The label of a finding the sanitizer made, comparable with Cause.label. */
export function labelOf(f: Finding): string {
  const d = f.details ?? {};
  if (d.shared_line === true) return `${f.kind}/shared-line`;
  return "offset_start" in d ? `${f.kind}@${d.offset_start}-${d.offset_end}` : f.kind;
}

/**
 * What a device access means for a mapping. `why` names the rule that decided a touch of the
 * CPU's bytes, for the tally: "recycle", "recycle-after-write" (a recycle although the CPU
 * wrote the mapping, which a later hand-over of these bytes cleaned), "uncovered" (refused
 * only because the hand-overs since the CPU's last write did not cover these bytes),
 * "refused". `recycle`: the extent of the CPU's bytes the device took back, or null.
 */
export type DeviceVerdict = { skip: true } | { skip: false; cause: Cause | null; recycle: [number, number] | null; why: string };

const allowedFor = (m: Mapping, write: boolean): boolean => (write ? m.dir !== DMA_TO_DEVICE : m.dir !== DMA_FROM_DEVICE);

/**
 * The causes of a CPU access to bytes [off, end) of buffer @b while mapped as @m (an access is
 * either inside the buffer, or wholly next to it in its kmalloc slot, which ends at @slotEnd),
 * and whether it is a store the recycle rule counts (into bytes the CPU owns, or next to the
 * buffer in its granules, without a cause of its own there: the line stays dirty until some
 * maintenance cleans it).
 * - Touching bytes the device owns is the cause, naming the extent of those bytes.
 * - A store into bytes the CPU owns, or next to the buffer, in a mapping the device may write,
 *   is the shared-line cause when a granule the store spans (physical alignment, clamped to
 *   the buffer) holds bytes the device still owns: the line's dirty copy would be written over
 *   them, or discarded with them (§5.3, §5.4). Next to the buffer, the sanitizer looks only
 *   as far as the buffer's own granules reach (its record, widened within the slot).
 */
export function cpuVerdict(m: Mapping, b: Buf, off: number, end: number, write: boolean, granule: number, slotEnd: number): { causes: Cause[]; ownWrite: boolean } {
  const shared: Cause = { kind: "cpu-access-device-owned", key: `s|${m.id}|${m.hist}`, label: "cpu-access-device-owned/shared-line" };
  const inside = off < b.size;
  if (inside) {
    const dev = ownedExtent(m, off, end, false);
    const access = write ? "write" : "read";
    if (dev !== null) return { causes: [{ kind: "cpu-access-device-owned", key: `c|${m.id}|${access}|${m.hist}`, label: `cpu-access-device-owned@${dev[0]}-${dev[1] - 1}` }], ownWrite: false };
  }
  if (!write || m.dir === DMA_TO_DEVICE) return { causes: [], ownWrite: write && inside };
  if (!inside) {
    const reach = Math.min(Math.ceil((b.phys + b.size) / granule) * granule, b.phys + slotEnd) - b.phys;
    if (off >= reach) return { causes: [], ownWrite: false };
  }
  const glo = Math.max(Math.floor((b.phys + off) / granule) * granule, b.phys) - b.phys;
  const ghi = Math.min(Math.ceil((b.phys + end) / granule) * granule, b.phys + b.size) - b.phys;
  const isShared = glo < ghi && ownedExtent(m, glo, ghi, false) !== null;
  return { causes: isShared ? [shared] : [], ownWrite: inside || !isShared };
}

/**
 * A device access to bytes [off, end) of @m.
 * - Bytes the device owns: nothing to report; an access their direction forbids is no kind of
 *   ours (an IOMMU would fault), so the sequence does not make it (skip).
 * - Bytes the CPU owns: the documented recycle when the CPU has not written the mapping since
 *   the last call that handed all of them to the device (the extent of the CPU's bytes the
 *   access touches must lie in that call's range: a map, or a sync_for_device covering it) and
 *   the direction allows the access; otherwise device-access-cpu-owned.
 * A recycle hands the CPU's bytes it touched to the device (the extent, as the sanitizer
 * narrows it), as a sync_for_device would: the CPU must keep out of them until a sync_for_cpu
 * or the unmap, even across a partial sync of other bytes. Every device access is judged by
 * the bytes it touches: a recycle through bytes the CPU left alone does not excuse a later
 * access to bytes the CPU wrote after the last call that handed them over (map, sync_for_cpu
 * (all), CPU store at byte 500, sync_for_device [0, 128), sync_for_cpu [0, 128), device read
 * [0, 64) (the recycle), device read of byte 500: device-access-cpu-owned, and on arm64 the
 * stale-device-read it causes).
 */
export function deviceVerdict(m: Mapping, off: number, end: number, write: boolean): DeviceVerdict {
  const allowed = allowedFor(m, write);
  const ext = ownedExtent(m, off, end, true);
  if (ext === null) return allowed ? { skip: false, cause: null, recycle: null, why: "" } : { skip: true };
  const [lo, hi] = ext;
  const d = m.handovers.findLast((x) => x.lo <= lo && hi <= x.hi);
  if (d !== undefined && allowed && m.cpuWriteAt <= d.at) return { skip: false, cause: null, recycle: ext, why: m.cpuWriteAt >= 0 ? "recycle-after-write" : "recycle" };
  const key = `d|${m.id}|${write ? "write" : "read"}|${m.hist}`;
  const why = !allowed ? "refused" : m.cpuWriteAt <= m.handovers.at(-1)!.at ? "uncovered" : "refused";
  return { skip: false, cause: { kind: "device-access-cpu-owned", key, label: `device-access-cpu-owned@${lo}-${hi - 1}` }, recycle: null, why };
}

// ---------------------------------------------------------------- cache maintenance (§5, arm64)

/** The buffer's bytes of the lines covering its bytes [lo, hi). */
function linesOf(b: Buf, lo: number, hi: number): [number, number] {
  const a = Math.floor((b.phys + lo) / LINE) * LINE - b.phys;
  const z = Math.ceil((b.phys + hi) / LINE) * LINE - b.phys;
  return [Math.max(0, a), Math.min(b.size, z)];
}

/**
 * A clean of bytes [lo, hi) (map, sync_for_device: arch_sync_dma_for_device, every direction):
 * every line the range touches, even partly, is written to RAM, so the CPU's stores in it are
 * safe from any later invalidate.
 */
export function clean(b: Buf, lo: number, hi: number): void {
  if (hi <= lo) return;
  const [a, z] = linesOf(b, lo, hi);
  b.pending.fill(0, a, z);
}

/**
 * An invalidate of bytes [lo, hi) (sync_for_cpu, unmap; not TO_DEVICE: arch_sync_dma_for_cpu).
 * dcache_inval_poc cleans+invalidates a first or last line the range covers only partly, so
 * the CPU's stores there reach RAM (like a clean); the lines it covers wholly are dropped, and
 * a store of the CPU still only in them may be lost: no finding names that (the driver asked
 * for it), so a later read of such a byte is exempt from the explanation property.
 */
export function invalidate(b: Buf, lo: number, hi: number): void {
  if (hi <= lo) return;
  const s = b.phys + lo;
  const e = b.phys + hi;
  const sUp = Math.ceil(s / LINE) * LINE;
  const eDown = Math.floor(e / LINE) * LINE;
  if (eDown !== e) clean(b, eDown - b.phys, hi); // the partly covered last line: flushed
  if (Math.floor(s / LINE) * LINE !== s) clean(b, lo, lo + 1); // the partly covered first line: flushed
  for (let i = sUp - b.phys; i < eDown - b.phys; i++) {
    if (b.pending[i] && b.writer[i] === WRITER_CPU) b.exempt[i] = 1;
    b.pending[i] = 0;
  }
}

/**
 * Bytes seen that differ from the truth must be explained by an effect; null when they are.
 * The sanitizer counts effects once per episode: stale-cpu-read and lost-device-write once per
 * device write (so one reported after the byte's write explains it), stale-device-read once
 * per mapping and ownership epoch (once per line for memory no mapping covers).
 */
export function explain(op: Op, b: Buf, [off, end]: [number, number], seen: Uint8Array, mapped: boolean): string | null {
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
