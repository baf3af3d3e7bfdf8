/**
 * IOMMU fuzz: a rogue device's firmware (hw/dev/rogue/SPEC.md section 8) fires thousands of
 * seeded random DMA attempts, reads and writes, at addresses inside and outside the mappings
 * its driver holds (TO_DEVICE, FROM_DEVICE and bidirectional), lengths crossing pages.
 *
 * A model of the device's IOVA space (page -> physical page and permission, from the mappings
 * the DMA API returned) predicts each attempt: the port translates one 4 KiB IOVA page at a
 * time and stops at the first page that is unmapped or lacks the permission. With the IOMMU
 * translating:
 * - no access outside the live mappings succeeds: a read returns nothing, a write changes no
 *   RAM outside the allowed pages (checked at the physical address the same bus address would
 *   reach untranslated, and on a victim buffer the kernel holds);
 * - every access inside with the right permission succeeds, reads return what a shadow copy of
 *   the mapped pages says, writes land in the shadow and RAM agrees at the end;
 * - every failed attempt is exactly one iommu-fault finding, in order, at the first refused
 *   page; dmesg shows them rate-limited ("callbacks suppressed", far fewer lines than faults).
 * Without an IOMMU the same attempts all succeed, and the victim is overwritten.
 */

import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../hw/machine/schema.ts";
import type { RogueDevice } from "../../hw/dev/rogue/rogue.ts";
import { runScenario, type RunResult } from "../../sim/run.ts";
import type { Scenario, ScenarioContext } from "../../sim/scenario.ts";
import { bindDriver, inProcessContext, unbindDriver } from "../../sim/driver-harness.ts";
import { rogue_devices, rogue_driver, type rogue_device } from "../../drivers/misc/rogue/rogue_main.ts";
import {
  dma_map_single, dma_mapping_error, dma_unmap_single, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, type dma_data_direction,
} from "../../kernel/include/dma-mapping.ts";
import { GFP_KERNEL, kfree, kmalloc, virt_to_phys } from "../../kernel/include/slab.ts";
import { copy_from_user } from "../../kernel/include/string.ts";
import type { dma_addr_t, vaddr_t } from "../../kernel/include/types.ts";
import { withRogues } from "../../scenarios/iommu-common.ts";

const ATTEMPTS = 5000;
const PAGE = 4096;
const R = 1;
const W = 2;
const VICTIM_LEN = 16384;
/** Attempts between kernel runs (fault interrupts get handled), and between idle gaps of virtual time. */
const BATCH = 16;
const IDLE_EVERY = 500;
const IDLE_NS = 1.2e9;

interface Mapping {
  buf: vaddr_t;
  len: number;
  dir: dma_data_direction;
  dma: dma_addr_t;
  phys: number;
}

interface PageInfo {
  phys: number;
  perm: number;
}

/** The driver's own rx/tx buffers plus these: every direction, sub-page and multi-page. */
const EXTRA: { len: number; dir: dma_data_direction }[] = [
  { len: 8192, dir: DMA_BIDIRECTIONAL },
  { len: 256, dir: DMA_FROM_DEVICE },
  { len: 3000, dir: DMA_TO_DEVICE },
  { len: 4096, dir: DMA_BIDIRECTIONAL },
  { len: 100, dir: DMA_TO_DEVICE },
];

const permOf = (dir: dma_data_direction): number => (dir === DMA_TO_DEVICE ? R : dir === DMA_FROM_DEVICE ? W : R | W);

/** xorshift32: the fuzz's own seeded stream (test code, but runs must repeat). */
function prng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function bytes(len: number, rnd: () => number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

export interface FuzzStats {
  attempts: number;
  reads: number;
  writes: number;
  succeeded: number;
  failed: number;
  /** Attempts whose every page was mapped with the right permission. */
  fullyAllowed: number;
  /** Failed attempts whose first page was allowed (a partial write or a read cut short). */
  crossedOut: number;
  mismatches: string[];
  faultAddrs: number[];
  victimChanged: boolean;
  shadowAgrees: boolean;
  findings: number;
}

class Fuzzer {
  readonly pages = new Map<number, PageInfo>();
  readonly shadow = new Map<number, Uint8Array>();
  readonly st: FuzzStats = {
    attempts: 0, reads: 0, writes: 0, succeeded: 0, failed: 0, fullyAllowed: 0, crossedOut: 0, mismatches: [], faultAddrs: [],
    victimChanged: false, shadowAgrees: true, findings: 0,
  };

  constructor(
    private readonly ctx: ScenarioContext,
    private readonly fw: RogueDevice,
    readonly maps: Mapping[],
    private readonly victimPhys: number,
    private readonly translating: boolean,
  ) {
    for (const m of maps) {
      for (let p = Math.floor(m.dma / PAGE); p * PAGE < m.dma + m.len; p++) {
        this.pages.set(p, { phys: m.phys + (p * PAGE - m.dma), perm: permOf(m.dir) });
      }
    }
    for (const [p, info] of this.pages) this.shadow.set(p, this.ram(info.phys, PAGE) ?? new Uint8Array(PAGE));
  }

  /** What memory holds now, as a snooping device would see it; null where no RAM decodes. */
  ram(phys: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    return this.ctx.board.mem.deviceRead(phys, out, 0, len, true) ? out : null;
  }

  /** A random attempt: inside a mapping, near one, or at the victim's physical address. */
  gen(rnd: () => number): { addr: number; len: number; write: boolean } {
    const write = rnd() < 0.5;
    const len = 1 + Math.floor(rnd() * (rnd() < 0.7 ? 600 : 6000));
    const m = this.maps[Math.floor(rnd() * this.maps.length)]!;
    const start = Math.floor(m.dma / PAGE) * PAGE;
    const span = Math.ceil((m.dma + m.len) / PAGE) * PAGE - start;
    const c = rnd();
    let addr: number;
    if (c < 0.5) addr = start + Math.floor(rnd() * span);
    else if (c < 0.8) addr = Math.max(0, start - 65536 + Math.floor(rnd() * (span + 131072)));
    else addr = this.victimPhys + Math.floor(rnd() * VICTIM_LEN);
    return { addr, len, write };
  }

  /** Bytes of [addr, addr+len) the model lets through before the first refused page. */
  allowedPrefix(addr: number, len: number, need: number): number {
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const info = this.pages.get(Math.floor(a / PAGE));
      if (!this.translating) return len;
      if (!info || (info.perm & need) === 0) return done;
      done += Math.min(len - done, PAGE - (a % PAGE));
    }
    return len;
  }

  one(rnd: () => number): void {
    const { addr, len, write } = this.gen(rnd);
    const st = this.st;
    st.attempts++;
    const allowed = this.allowedPrefix(addr, len, write ? W : R);
    if (allowed === len) st.fullyAllowed++;
    else {
      st.faultAddrs.push(addr + allowed);
      if (allowed > 0) st.crossedOut++;
    }
    const ok = write ? this.write(addr, len, allowed, rnd) : this.read(addr, len, allowed);
    if (ok) st.succeeded++;
    else st.failed++;
    if (ok !== (allowed === len)) this.miss(`${write ? "write" : "read"} 0x${addr.toString(16)}+${len}: ${ok ? "succeeded" : "failed"}, model allowed ${allowed}`);
  }

  private read(addr: number, len: number, allowed: number): boolean {
    this.st.reads++;
    const got = this.fw.firmwareRead(addr, len);
    if (got && this.translating && allowed === len) {
      for (let i = 0; i < len; i += PAGE - ((addr + i) % PAGE)) {
        const a = addr + i;
        const n = Math.min(len - i, PAGE - (a % PAGE));
        const sh = this.shadow.get(Math.floor(a / PAGE))!;
        if (!got.subarray(i, i + n).every((v, j) => v === sh[(a % PAGE) + j])) this.miss(`read 0x${a.toString(16)}+${n} returned other bytes than the shadow`);
      }
    }
    return got !== null;
  }

  private write(addr: number, len: number, allowed: number, rnd: () => number): boolean {
    this.st.writes++;
    const data = bytes(len, rnd);
    // The bytes the IOMMU must keep from landing, at the address they would reach untranslated.
    const outside = this.translating && allowed < len ? this.ram(addr + allowed, len - allowed) : null;
    const ok = this.fw.firmwareWrite(addr, data);
    if (this.translating) {
      for (let i = 0; i < allowed; i += PAGE - ((addr + i) % PAGE)) {
        const a = addr + i;
        const n = Math.min(allowed - i, PAGE - (a % PAGE));
        this.shadow.get(Math.floor(a / PAGE))!.set(data.subarray(i, i + n), a % PAGE);
      }
      if (outside) {
        const after = this.ram(addr + allowed, len - allowed)!;
        if (!after.every((v, j) => v === outside[j])) this.miss(`refused write 0x${addr.toString(16)}+${len} changed RAM past byte ${allowed}`);
      }
    }
    return ok;
  }

  /** At the end: every mapped page holds what the shadow says (kept only when translating). */
  verifyShadow(): void {
    if (!this.translating) return;
    for (const [p, info] of this.pages) {
      const now = this.ram(info.phys, PAGE)!;
      const sh = this.shadow.get(p)!;
      if (!now.every((v, i) => v === sh[i])) {
        this.st.shadowAgrees = false;
        this.miss(`mapped page 0x${(p * PAGE).toString(16)} differs from the shadow`);
      }
    }
  }

  private miss(what: string): void {
    if (this.st.mismatches.length < 10) this.st.mismatches.push(what);
  }
}

/** Map the extra buffers for the driver's device (process context, charged to the driver). */
function mapExtras(rg: rogue_device, rnd: () => number): Mapping[] {
  const out: Mapping[] = [];
  for (const e of EXTRA) {
    const buf = kmalloc(e.len, GFP_KERNEL);
    copy_from_user(buf, bytes(e.len, rnd), e.len);
    const dma = dma_map_single(rg.dev, buf, e.len, e.dir);
    if (dma_mapping_error(rg.dev, dma)) throw new Error("fuzz: mapping failed");
    out.push({ buf, len: e.len, dir: e.dir, dma, phys: virt_to_phys(buf) });
  }
  return out;
}

async function fuzz(ctx: ScenarioContext, seed: number, out: { stats?: FuzzStats }): Promise<void> {
  const k = ctx.kernel;
  const rnd = prng(seed);
  await bindDriver(k, rogue_driver);
  const rg = rogue_devices[0]!;
  let extras: Mapping[] = [];
  let victim = 0;
  const victimBytes = bytes(VICTIM_LEN, rnd);
  await inProcessContext(k, "fuzz-setup", async () => {
    extras = mapExtras(rg, rnd);
    victim = kmalloc(VICTIM_LEN, GFP_KERNEL);
    copy_from_user(victim, victimBytes, VICTIM_LEN);
  }, rogue_driver.name);
  const own: Mapping[] = [
    { buf: rg.rx_buf, len: 4096, dir: DMA_FROM_DEVICE, dma: rg.rx_dma, phys: virt_to_phys(rg.rx_buf) },
    { buf: rg.tx_buf, len: 4096, dir: DMA_TO_DEVICE, dma: rg.tx_dma, phys: virt_to_phys(rg.tx_buf) },
  ];
  const slot = ctx.board.pciDevices.find((p) => p.slot === rg.pdev.devfn >> 3)!;
  const fz = new Fuzzer(ctx, slot.device as RogueDevice, [...own, ...extras], virt_to_phys(victim), ctx.machine.iommu?.policy === "lazy" || ctx.machine.iommu?.policy === "strict");
  for (let i = 0; i < ATTEMPTS; i++) {
    fz.one(rnd);
    if (i % BATCH === BATCH - 1) await k.run();
    if (i % IDLE_EVERY === IDLE_EVERY - 1) {
      k.platform.after(IDLE_NS, "fuzz-idle", () => {});
      await k.run();
    }
  }
  await k.run();
  fz.verifyShadow();
  fz.st.victimChanged = !sameAs(fz.ram(virt_to_phys(victim), VICTIM_LEN), victimBytes);
  fz.st.findings = k.findings.ofKind("iommu-fault").length;
  out.stats = fz.st;
  await inProcessContext(k, "fuzz-teardown", async () => {
    for (const m of extras) {
      dma_unmap_single(rg.dev, m.dma, m.len, m.dir);
      kfree(m.buf);
    }
    kfree(victim);
  }, rogue_driver.name);
  await unbindDriver(k, rogue_driver);
}

function sameAs(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.every((v, i) => v === b[i]);
}

async function runFuzz(m: MachineDesc, seed: number): Promise<{ r: RunResult; st: FuzzStats }> {
  const out: { stats?: FuzzStats } = {};
  const scenario: Scenario = {
    name: "iommu-fuzz",
    summary: "seeded random DMA from a rogue device's firmware",
    defaultMachine: "x86-iommu",
    machineFor: (d) => withRogues(d, 1),
    claim: () => "",
    run: async (ctx) => {
      // The device's accesses outside its buffers are what the fuzz is about: both checkers see them.
      ctx.expectFindings("iommu-fault", "device-access-unmapped");
      await fuzz(ctx, seed, out);
    },
  };
  const r = await runScenario(scenario, { machine: m, seed, trace: false, logLevel: "silent" });
  return { r, st: out.stats! };
}

const teardownOk = (r: RunResult) => r.report.checks.filter((c) => c.name.startsWith("teardown: ") && !c.ok);

describe("IOMMU fuzz: a rogue device's random DMA", () => {
  it(`with the IOMMU translating, nothing outside the live mappings gets through, all inside does, every fault is reported (${ATTEMPTS} attempts)`, async () => {
    const { r, st } = await runFuzz(getProfile("x86-iommu"), 4242);
    expect(st.mismatches, "seed 4242").toEqual([]);
    expect(st.attempts).toBe(ATTEMPTS);
    expect(st.fullyAllowed).toBeGreaterThan(ATTEMPTS / 5);
    expect(st.failed).toBeGreaterThan(ATTEMPTS / 5);
    expect(st.crossedOut).toBeGreaterThan(50);
    expect(st.succeeded).toBe(st.fullyAllowed);
    expect(st.shadowAgrees).toBe(true);
    expect(st.victimChanged).toBe(false);
    // Complete in the report: one finding per refused attempt, at its first refused page, in order.
    const faults = r.report.findings.filter((f) => f.kind === "iommu-fault");
    expect(faults.length).toBe(st.failed);
    expect(faults.every((f) => f.device === "0000:00:05.0")).toBe(true);
    expect(faults.map((f) => Number(f.details!.iova))).toEqual(st.faultAddrs);
    // Rate-limited in dmesg.
    const lines = r.dmesg.filter((l) => /DMAR: \[DMA (Read|Write)/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(st.failed / 10);
    expect(r.dmesg.some((l) => /callbacks suppressed/.test(l))).toBe(true);
    expect(teardownOk(r)).toEqual([]);
  });

  it("without an IOMMU the same attempts all succeed, and the victim is overwritten", async () => {
    const { r, st } = await runFuzz(getProfile("x86-coherent"), 4242);
    expect(st.mismatches).toEqual([]);
    expect(st.succeeded).toBe(ATTEMPTS);
    expect(st.failed).toBe(0);
    expect(st.victimChanged).toBe(true);
    expect(r.report.findings.filter((f) => f.kind === "iommu-fault")).toEqual([]);
    expect(r.report.findings.some((f) => f.kind === "device-access-unmapped")).toBe(true);
    expect(teardownOk(r)).toEqual([]);
  });
});
