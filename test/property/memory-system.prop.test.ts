/**
 * Property tests of the memory system against a flat reference byte array.
 *
 * The machines are tiny (a handful of lines per cache) and the address range is eight lines, so
 * every sequence evicts, snoops and writes back; seeded eviction and prefetch are turned on in
 * some runs. What must hold: caches never change what a CPU reads; on a non-coherent machine
 * the Linux protocol (clean before the device reads, clean + invalidate around a device write)
 * gives both sides the right bytes; on a coherent machine no maintenance is needed at all.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Prng } from "../../hw/core/prng.ts";
import { CLEAN, DIRTY, INVALID, LINE_SIZE, type CacheGeometry } from "../../hw/cpu/cache.ts";
import { MemorySystem } from "../../hw/cpu/memory-system.ts";
import { MEM_CACHED } from "../../hw/cpu/memory-types.ts";
import { PhysMap } from "../../hw/mem/phys-map.ts";
import type { AccessSize } from "../../hw/mem/mmio.ts";

const BASE = 0x1000;
const SPAN = 8 * LINE_SIZE;
const MAX_LEN = 2 * LINE_SIZE + 10;

interface MachineParams {
  l1: CacheGeometry;
  llc: CacheGeometry;
  evictionRate: number;
  prefetchRate: number;
  seed: number;
}

// A one-line L1 ({size: 64, ways: 1}) is left out on purpose: the prefetch bug documented in
// test/unit/hw/cpu/memory-system.knobs.test.ts corrupts data there.
const machineParams: fc.Arbitrary<MachineParams> = fc.record({
  l1: fc.constantFrom({ size: 128, ways: 1 }, { size: 128, ways: 2 }, { size: 256, ways: 2 }),
  llc: fc.constantFrom({ size: 256, ways: 2 }, { size: 256, ways: 4 }, { size: 512, ways: 4 }),
  evictionRate: fc.constantFrom(0, 0, 0.2, 1),
  prefetchRate: fc.constantFrom(0, 0, 0.5, 1),
  seed: fc.nat(10_000),
});

function build(p: MachineParams): { map: PhysMap; mem: MemorySystem } {
  const map = new PhysMap();
  map.addRam(0, 1 << 16, 0);
  const mem = new MemorySystem(map, {
    cpus: 2,
    l1: p.l1,
    llc: p.llc,
    timing: { l1HitNs: 1, llcHitNs: 10, ramNs: 80, uncachedNs: 100, mmioNs: 250 },
    evictionRate: p.evictionRate,
    prefetchRate: p.prefetchRate,
    prng: new Prng(p.seed),
  });
  return { map, mem };
}

// ------------------------------------------------------------------ operations

type Op =
  | { kind: "write"; cpu: number; off: number; data: Uint8Array }
  | { kind: "read"; cpu: number; off: number; len: number }
  | { kind: "store"; cpu: number; off: number; size: AccessSize; value: number }
  | { kind: "load"; cpu: number; off: number; size: AccessSize }
  | { kind: "fill"; cpu: number; off: number; len: number; value: number }
  | { kind: "clean" | "flush"; cpu: number; off: number; len: number }
  | { kind: "toDevice"; cpu: number; cleanCpu: number; off: number; data: Uint8Array }
  | { kind: "fromDevice"; cpu: number; off: number; data: Uint8Array }
  | { kind: "devWrite"; off: number; data: Uint8Array }
  | { kind: "devRead"; off: number; len: number };

const cpu = fc.integer({ min: 0, max: 1 });
/** A range inside the span: { off, len }. */
const range = fc.integer({ min: 1, max: MAX_LEN }).chain((len) => fc.record({ off: fc.integer({ min: 0, max: SPAN - len }), len: fc.constant(len) }));
/** Bytes and where they go inside the span. */
const placed = fc.uint8Array({ minLength: 1, maxLength: MAX_LEN }).chain((data) => fc.record({ off: fc.integer({ min: 0, max: SPAN - data.length }), data: fc.constant(data) }));
const size = fc.constantFrom<AccessSize>(1, 2, 4, 8);
const typed = size.chain((s) =>
  fc.record({ size: fc.constant(s), off: fc.integer({ min: 0, max: SPAN - s }), value: s === 8 ? fc.maxSafeNat() : fc.nat({ max: 2 ** (8 * s) - 1 }) }),
);

const write = fc.record({ cpu, p: placed }).map(({ cpu, p }): Op => ({ kind: "write", cpu, ...p }));
const read = fc.record({ cpu, r: range }).map(({ cpu, r }): Op => ({ kind: "read", cpu, ...r }));
const store = fc.record({ cpu, t: typed }).map(({ cpu, t }): Op => ({ kind: "store", cpu, ...t }));
const load = fc.record({ cpu, t: typed }).map(({ cpu, t }): Op => ({ kind: "load", cpu, off: t.off, size: t.size }));
const fillOp = fc.record({ cpu, r: range, value: fc.nat(255) }).map(({ cpu, r, value }): Op => ({ kind: "fill", cpu, ...r, value }));
const maint = fc.record({ kind: fc.constantFrom("clean" as const, "flush" as const), cpu, r: range }).map(({ kind, cpu, r }): Op => ({ kind, cpu, ...r }));
const toDevice = fc.record({ cpu, cleanCpu: cpu, p: placed }).map(({ cpu, cleanCpu, p }): Op => ({ kind: "toDevice", cpu, cleanCpu, ...p }));
const fromDevice = fc.record({ cpu, p: placed }).map(({ cpu, p }): Op => ({ kind: "fromDevice", cpu, ...p }));
const devWrite = placed.map((p): Op => ({ kind: "devWrite", ...p }));
const devRead = range.map((r): Op => ({ kind: "devRead", ...r }));

const cpuOps = [write, read, store, load, fillOp, maint];

// ------------------------------------------------------------------ model and checks

/** Runs ops on a machine and a flat reference; every observation must match the reference. */
class Harness {
  readonly ref = new Uint8Array(SPAN);
  private readonly view = new DataView(this.ref.buffer);

  constructor(
    readonly map: PhysMap,
    readonly mem: MemorySystem,
    private readonly coherent: boolean,
  ) {}

  apply(op: Op): void {
    const { mem, ref } = this;
    const addr = BASE + op.off;
    switch (op.kind) {
      case "write":
        mem.cpuWrite(op.cpu, addr, op.data, 0, op.data.length, MEM_CACHED);
        ref.set(op.data, op.off);
        break;
      case "read":
        expect(this.cpuBytes(op.cpu, op.off, op.len)).toEqual(ref.slice(op.off, op.off + op.len));
        break;
      case "store":
        mem.cpuStore(op.cpu, addr, op.value, op.size, MEM_CACHED);
        this.encode(op.off, op.size, op.value);
        break;
      case "load":
        expect(mem.cpuLoad(op.cpu, addr, op.size, MEM_CACHED)).toBe(this.decode(op.off, op.size));
        break;
      case "fill":
        mem.cpuFill(op.cpu, addr, op.value, op.len, MEM_CACHED);
        ref.fill(op.value, op.off, op.off + op.len);
        break;
      case "clean":
        mem.cacheClean(op.cpu, addr, op.len);
        break;
      case "flush":
        mem.cacheFlush(op.cpu, addr, op.len);
        break;
      case "toDevice": {
        // CPU fills a buffer, cleans it (dma_map / sync_for_device), the device reads it.
        mem.cpuWrite(op.cpu, addr, op.data, 0, op.data.length, MEM_CACHED);
        ref.set(op.data, op.off);
        if (!this.coherent) mem.cacheClean(op.cleanCpu, addr, op.data.length);
        expect(this.deviceBytes(op.off, op.data.length)).toEqual(op.data);
        break;
      }
      case "fromDevice": {
        // Clean at map time so partly covered lines hold no dirty CPU bytes, the device
        // writes, invalidate at unmap / sync_for_cpu, then the CPU reads the device's bytes.
        if (!this.coherent) mem.cacheClean(op.cpu, addr, op.data.length);
        expect(mem.deviceWrite(addr, op.data, 0, op.data.length, this.coherent)).toBe(true);
        ref.set(op.data, op.off);
        if (!this.coherent) mem.cacheInvalidate(op.cpu, addr, op.data.length);
        expect(this.cpuBytes(1 - op.cpu, op.off, op.data.length)).toEqual(op.data);
        break;
      }
      case "devWrite":
        expect(mem.deviceWrite(addr, op.data, 0, op.data.length, this.coherent)).toBe(true);
        ref.set(op.data, op.off);
        break;
      case "devRead":
        expect(this.deviceBytes(op.off, op.len)).toEqual(ref.slice(op.off, op.off + op.len));
        break;
    }
    this.checkInvariants();
  }

  /** At the end: both CPUs see the reference, and after a clean so does RAM. */
  finish(): void {
    for (const c of [0, 1]) expect(this.cpuBytes(c, 0, SPAN)).toEqual(this.ref);
    this.mem.cacheClean(0, BASE, SPAN);
    const inRam = new Uint8Array(SPAN);
    this.map.ram.read(BASE, inRam, 0, SPAN);
    expect(inRam).toEqual(this.ref);
  }

  private cpuBytes(c: number, off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.mem.cpuRead(c, BASE + off, out, 0, len, MEM_CACHED);
    return out;
  }

  private deviceBytes(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    expect(this.mem.deviceRead(BASE + off, out, 0, len, this.coherent)).toBe(true);
    return out;
  }

  private encode(off: number, size: AccessSize, value: number): void {
    const v = this.view;
    if (size === 1) v.setUint8(off, value);
    else if (size === 2) v.setUint16(off, value, true);
    else if (size === 4) v.setUint32(off, value, true);
    else {
      v.setUint32(off, value % 2 ** 32, true);
      v.setUint32(off + 4, Math.floor(value / 2 ** 32), true);
    }
  }

  private decode(off: number, size: AccessSize): number {
    const v = this.view;
    if (size === 1) return v.getUint8(off);
    if (size === 2) return v.getUint16(off, true);
    if (size === 4) return v.getUint32(off, true);
    return v.getUint32(off, true) + v.getUint32(off + 4, true) * 2 ** 32;
  }

  /** Counters match the state arrays; a dirty L1 line has no copy in any other L1. */
  private checkInvariants(): void {
    const { mem } = this;
    for (const c of [...mem.l1, mem.llc]) {
      let valid = 0;
      let dirty = 0;
      const tags = new Set<number>();
      for (let s = 0; s < c.state.length; s++) {
        if (c.state[s] === INVALID) continue;
        expect([CLEAN, DIRTY]).toContain(c.state[s]);
        valid++;
        if (c.state[s] === DIRTY) dirty++;
        expect(tags.has(c.tags[s])).toBe(false);
        tags.add(c.tags[s]);
      }
      expect([c.validLines, c.dirtyLines]).toEqual([valid, dirty]);
    }
    for (let a = BASE; a <= BASE + SPAN; a += LINE_SIZE) {
      const l1s = mem.whereIs(a).filter((w) => w.level !== "LLC");
      if (l1s.some((w) => w.dirty)) expect(l1s).toHaveLength(1);
    }
  }
}

function run(p: MachineParams, ops: Op[], coherent: boolean): void {
  const { map, mem } = build(p);
  const h = new Harness(map, mem, coherent);
  for (const op of ops) h.apply(op);
  h.finish();
}

// ------------------------------------------------------------------ properties

describe("MemorySystem properties", () => {
  it("caches never change what a CPU reads, whatever the sequence, geometry and knobs", () => {
    fc.assert(
      fc.property(machineParams, fc.array(fc.oneof(...cpuOps), { maxLength: 60 }), (p, ops) => run(p, ops, false)),
      { numRuns: 300 },
    );
  });

  it("on a non-coherent machine the clean and invalidate protocol gives both sides the right bytes", () => {
    fc.assert(
      fc.property(machineParams, fc.array(fc.oneof(write, read, store, load, fillOp, toDevice, fromDevice), { maxLength: 50 }), (p, ops) =>
        run(p, ops, false),
      ),
      { numRuns: 300 },
    );
  });

  it("on a coherent machine device and CPU accesses agree without any maintenance", () => {
    const coherentOps = [write, read, store, load, fillOp, devWrite, devRead, toDevice, fromDevice];
    fc.assert(
      fc.property(machineParams, fc.array(fc.oneof(...coherentOps), { maxLength: 60 }), (p, ops) => run(p, ops, true)),
      { numRuns: 300 },
    );
  });

  it("the same seed and operations give the same caches, stats and charged time", () => {
    fc.assert(
      fc.property(machineParams, fc.array(fc.oneof(...cpuOps), { maxLength: 40 }), (p, ops) => {
        const snap = (): string => {
          const { map, mem } = build(p);
          const h = new Harness(map, mem, false);
          for (const op of ops) h.apply(op);
          const where = Array.from({ length: 9 }, (_, i) => mem.whereIs(BASE + i * LINE_SIZE));
          return JSON.stringify({ where, stats: mem.stats, charged: [...mem.charged] });
        };
        expect(snap()).toBe(snap());
      }),
      { numRuns: 100 },
    );
  });
});
