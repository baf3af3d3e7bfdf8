/**
 * Property: dma-debug's deferred sg runs (kernel/dma/debug-run.ts) change nothing anyone can
 * see. Two identical machines run the same random sequence of sg maps (mostly DMA_TO_DEVICE on
 * the direct path, the calls kept as runs), unmaps and syncs (right and wrong nents and
 * directions), device reads and writes through the mapped segments and beside them, CPU
 * accesses and look-ups of the live mappings; one records runs, the other one entry per segment
 * at once (DmaState.sgRuns off). Every step must give both the same findings (kind, message,
 * details, history) and, when asked, the same live mappings.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { copy_from_user, copy_to_user } from "../../kernel/mm/access.ts";
import { PAGE_OFFSET } from "../../kernel/mm/layout.ts";
import { PAGE_SIZE } from "../../kernel/include/types.ts";
import { sg_array, sg_init_table, sg_set_page, type scatterlist } from "../../kernel/include/scatterlist.ts";
import {
  DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_sg_attrs, dma_sync_sg_for_cpu, dma_sync_sg_for_device,
  dma_unmap_sg,
} from "../../kernel/include/dma-mapping.ts";
import { dma_debug_live } from "../../kernel/dma/debug.ts";
import { dma_state } from "../../kernel/dma/state.ts";
import { setup, type Profile } from "../unit/kernel/dma/sanitizer-rig.ts";

const LISTS = 3;
const POOL = 8;
type Dir = typeof DMA_TO_DEVICE | typeof DMA_FROM_DEVICE | typeof DMA_BIDIRECTIONAL;

type Op =
  | { t: "map"; l: number; pages: number[]; dir: Dir; skip: boolean }
  | { t: "unmap" | "syncCpu" | "syncDev"; l: number; dn: number; wrongDir: boolean }
  | { t: "devRead" | "devWrite"; l: number; seg: number; off: number; len: number }
  | { t: "devRaw"; page: number; off: number; len: number; write: boolean }
  | { t: "cpu"; page: number; off: number; len: number; write: boolean }
  | { t: "live" }
  | { t: "episode"; l: number; pages: number[]; reads: { seg: number; off: number; len: number }[] };

const dirArb = fc.oneof({ weight: 6, arbitrary: fc.constant<Dir>(DMA_TO_DEVICE) }, { weight: 1, arbitrary: fc.constantFrom<Dir>(DMA_FROM_DEVICE, DMA_BIDIRECTIONAL) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  // the usual life of an sg list: mapped for the device, read segment after segment, unmapped
  // (mostly whole segments in order; some reads start inside a segment or run past its end)
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("episode" as const),
      l: fc.nat(LISTS - 1),
      pages: fc.array(fc.nat(POOL - 1), { minLength: 1, maxLength: 6 }),
      reads: fc.array(
        fc.oneof(
          { weight: 3, arbitrary: fc.record({ seg: fc.nat(5), off: fc.constant(0), len: fc.constant(PAGE_SIZE) }) },
          { weight: 1, arbitrary: fc.record({ seg: fc.nat(5), off: fc.nat(4095), len: fc.integer({ min: 1, max: 8192 }) }) },
        ),
        { maxLength: 8 },
      ),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("map" as const), l: fc.nat(LISTS - 1), pages: fc.array(fc.nat(POOL - 1), { minLength: 1, maxLength: 6 }), dir: dirArb, skip: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constantFrom("unmap" as const, "unmap" as const, "syncCpu" as const, "syncDev" as const),
      l: fc.nat(LISTS - 1),
      dn: fc.constantFrom(0, 0, 0, 0, 0, 0, 1, -1),
      wrongDir: fc.constantFrom(false, false, false, false, true),
    }),
  },
  { weight: 5, arbitrary: fc.record({ t: fc.constantFrom("devRead" as const, "devWrite" as const), l: fc.nat(LISTS - 1), seg: fc.nat(5), off: fc.nat(4095), len: fc.integer({ min: 1, max: 8192 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("devRaw" as const), page: fc.nat(POOL - 1), off: fc.nat(4095), len: fc.integer({ min: 1, max: 256 }), write: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("cpu" as const), page: fc.nat(POOL - 1), off: fc.nat(4095), len: fc.integer({ min: 1, max: 256 }), write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ t: "live" as const }) },
);

/** One machine and its lists; `runs`: dma-debug keeps sg runs (the default) or not. */
/** What the runs machine exercised: steps with a run pending, runs unmapped whole. */
const tally = { pendingSteps: 0, runsRemoved: 0 };

function machine(profile: Profile, runs: boolean) {
  const t = setup(profile, 1);
  const st = dma_state(t.k);
  st.sgRuns = runs;
  const removeRun = st.table.removeRun.bind(st.table);
  st.table.removeRun = (...args) => {
    tally.runsRemoved++;
    removeRun(...args);
  };
  const pool: number[] = [];
  for (let i = 0; i < POOL; i++) pool.push(t.k.pages.alloc(0, 0));
  const lists = Array.from({ length: LISTS }, () => ({ sg: sg_array(6), nents: 0, dir: DMA_TO_DEVICE as Dir }));
  // the first map of a kernel hooks driver unbind the ordinary way; runs come after it
  const warm = sg_array(1);
  sg_init_table(warm, 1);
  sg_set_page(warm[0], { pfn: pool[0] / PAGE_SIZE }, PAGE_SIZE, 0);
  t.k.enter();
  dma_map_sg_attrs(t.dev, warm, 1, DMA_TO_DEVICE, 0);
  dma_unmap_sg(t.dev, warm, 1, DMA_TO_DEVICE);
  return { t, pool, lists };
}

type Machine = ReturnType<typeof machine>;

/**
 * Run @op on @m as driver code (a BUG, such as an unmap longer than the list, is an oops there,
 * not an exception); returns what it observed (bytes read, live mappings), for comparison.
 */
function step(m: Machine, op: Op): string {
  m.t.k.enter();
  let out = "";
  m.t.k.exec.runOn(0, "process", "testdrv", op.t, () => void (out = stepIn(m, op)));
  return out;
}

function stepIn(m: Machine, op: Op): string {
  const { t, pool, lists } = m;
  switch (op.t) {
    case "map": {
      const L = lists[op.l];
      sg_init_table(L.sg, op.pages.length);
      op.pages.forEach((p, i) => sg_set_page(L.sg[i], { pfn: pool[p] / PAGE_SIZE }, PAGE_SIZE, 0));
      L.nents = op.pages.length;
      L.dir = op.dir;
      return String(dma_map_sg_attrs(t.dev, L.sg, L.nents, op.dir, op.skip ? DMA_ATTR_SKIP_CPU_SYNC : 0));
    }
    case "unmap":
    case "syncCpu":
    case "syncDev": {
      const L = lists[op.l];
      if (L.nents === 0) return "";
      const n = Math.max(1, Math.min(6, L.nents + op.dn));
      const dir = op.wrongDir ? (L.dir === DMA_TO_DEVICE ? DMA_BIDIRECTIONAL : DMA_TO_DEVICE) : L.dir;
      if (op.t === "unmap") dma_unmap_sg(t.dev, L.sg, n, dir);
      else if (op.t === "syncCpu") dma_sync_sg_for_cpu(t.dev, L.sg, n, dir);
      else dma_sync_sg_for_device(t.dev, L.sg, n, dir);
      return "";
    }
    case "devRead":
    case "devWrite": {
      const L = lists[op.l];
      if (L.nents === 0) return "";
      const sg: scatterlist = L.sg[op.seg % L.nents];
      const addr = sg.dma_address + op.off;
      if (op.t === "devWrite") {
        const ok = t.port.write(addr, new Uint8Array(op.len).fill(op.off & 0xff), 0, op.len);
        return String(ok);
      }
      const out = new Uint8Array(op.len);
      return `${t.port.read(addr, out, 0, op.len)} ${out.reduce((s, b) => (s * 31 + b) >>> 0, 0)}`;
    }
    case "devRaw": {
      const buf = new Uint8Array(op.len).fill(7);
      const addr = pool[op.page] + op.off;
      return String(op.write ? t.port.write(addr, buf, 0, op.len) : t.port.read(addr, buf, 0, op.len));
    }
    case "cpu": {
      const va = PAGE_OFFSET + pool[op.page] + op.off;
      const len = Math.min(op.len, PAGE_SIZE - op.off);
      const out = new Uint8Array(len);
      if (op.write) copy_from_user(va, out.fill(9));
      else copy_to_user(out, va, len);
      return out.join(",");
    }
    case "episode": {
      let out = stepIn(m, { t: "map", l: op.l, pages: op.pages, dir: DMA_TO_DEVICE, skip: false });
      for (const r of op.reads) out += stepIn(m, { t: "devRead", l: op.l, ...r });
      return out + stepIn(m, { t: "unmap", l: op.l, dn: 0, wrongDir: false });
    }
    case "live":
      return JSON.stringify(dma_debug_live(t.dev).map((e) => [e.dev_addr, e.size, e.type, e.direction, e.domain, e.history.map((h) => h.op)]));
  }
}

/** Findings as a reader sees them. */
const findings = (m: Machine): string[] => m.t.k.findings.list.map((f) => JSON.stringify({ kind: f.kind, message: f.message, details: f.details, history: f.history, timeNs: f.timeNs }));

function property(profile: Profile, numRuns: number): void {
  tally.pendingSteps = tally.runsRemoved = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
      const a = machine(profile, true);
      const b = machine(profile, false);
      for (const [i, op] of ops.entries()) {
        const ra = step(a, op);
        const rb = step(b, op);
        expect(ra, `step ${i} (${op.t})`).toBe(rb);
        expect(findings(a), `step ${i} (${op.t})`).toEqual(findings(b));
        if (dma_state(a.t.k).table.pending !== 0) tally.pendingSteps++;
      }
      expect(step(a, { t: "live" })).toBe(step(b, { t: "live" }));
    }),
    { numRuns },
  );
  // the runs really were there, steps at a time, and were unmapped whole
  expect(tally.pendingSteps).toBeGreaterThan(50);
  expect(tally.runsRemoved).toBeGreaterThan(10);
}

describe("dma-debug's sg runs are invisible", () => {
  it("arm64-noncoherent: the same findings and live mappings as one entry per segment", () => property("arm64-noncoherent", 150));
  it("x86-coherent: the same", () => property("x86-coherent", 80));
});
