/**
 * The coherence-* scenarios on both built-in machines: each shows what it claims (corrupted
 * data and effects on arm64-noncoherent, intact data with the causes still reported on
 * x86-coherent), deterministically for a seed, and tears down cleanly. Plus the other side of
 * the sanitizer's contract: the correct edu driver, watched by it, yields nothing.
 */
import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../hw/machine/schema.ts";
import { runScenario } from "../../sim/run.ts";
import type { Scenario } from "../../sim/scenario.ts";
import { coherenceMissingSyncForCpu } from "../../scenarios/coherence-missing-sync-for-cpu.ts";
import { coherenceMissingSyncForDevice } from "../../scenarios/coherence-missing-sync-for-device.ts";
import { coherenceSharedCacheline } from "../../scenarios/coherence-shared-cacheline.ts";
import { coherenceCpuWritesWhileMapped } from "../../scenarios/coherence-cpu-writes-while-mapped.ts";
import { coherencePartialSync } from "../../scenarios/coherence-partial-sync.ts";
import { eduScenario } from "../../scenarios/edu.ts";
import { findScenario } from "../../scenarios/index.ts";
import { dma_sanitizer } from "../../kernel/dma/sanitizer/index.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";

type Profile = "arm64-noncoherent" | "x86-coherent";

const run = (s: Scenario, m: MachineDesc | Profile, seed = 1) =>
  runScenario(s, { machine: typeof m === "string" ? getProfile(m) : m, seed, trace: false, logLevel: "silent" });

/** Scenario, and the finding kinds it must show per machine (sorted). */
const CASES: [Scenario, Record<Profile, string[]>][] = [
  [coherenceMissingSyncForCpu, { "arm64-noncoherent": ["cpu-access-device-owned", "stale-cpu-read"], "x86-coherent": ["cpu-access-device-owned"] }],
  [
    coherenceMissingSyncForDevice,
    { "arm64-noncoherent": ["cpu-access-device-owned", "device-access-cpu-owned", "stale-device-read"], "x86-coherent": ["cpu-access-device-owned", "device-access-cpu-owned"] },
  ],
  [coherenceSharedCacheline, { "arm64-noncoherent": ["cpu-access-device-owned", "lost-device-write"], "x86-coherent": ["cpu-access-device-owned"] }],
  [
    coherenceCpuWritesWhileMapped,
    { "arm64-noncoherent": ["cpu-access-device-owned", "lost-device-write", "stale-cpu-read"], "x86-coherent": ["cpu-access-device-owned"] },
  ],
  [coherencePartialSync, { "arm64-noncoherent": ["cpu-access-device-owned", "stale-cpu-read"], "x86-coherent": ["cpu-access-device-owned"] }],
];

describe.each(CASES.map(([s, k]) => [s.name, s, k] as const))("%s", (_name, scenario, kinds) => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"] as const) {
    it(`${profile}: shows ${kinds[profile].join(", ")}, data ${profile === "x86-coherent" ? "intact" : "corrupted"}, clean teardown`, async () => {
      const r = await run(scenario, profile);
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(r.report.checks.find((c) => c.name === "data-intact")).toMatchObject({ expected: profile === "x86-coherent", actual: profile === "x86-coherent" });
      expect([...new Set(r.report.findings.map((f) => f.kind))].sort()).toEqual(kinds[profile]);
      expect(r.report.claim).toMatch(profile === "x86-coherent" ? /^coherent DMA/ : /^non-coherent DMA/);
      for (const f of r.report.findings) {
        expect(f.driver).toBe("cohdemo");
        expect(f.device).toBe("0000:00:03.0");
        expect(f.fix).toMatch(/^[A-Z][^.]*(\(\)[^.]*)*\.$/); // one sentence
        expect(f.history!.length).toBeGreaterThan(0);
        expect(f.details).toHaveProperty("dev_addr");
        expect(r.dmesg.some((l) => l.includes(`DMA-SAN: cohdemo 0000:00:03.0: `) && f.message.endsWith(l.slice(l.indexOf("DMA-SAN: ") + 9)))).toBe(true);
      }
      expectCleanTeardown(r);
    });
  }

  it("gives the same report for a seed, and its claim for other seeds", async () => {
    const a = await run(scenario, "arm64-noncoherent", 7);
    const b = await run(scenario, "arm64-noncoherent", 7);
    expect(JSON.stringify(a.report)).toBe(JSON.stringify(b.report));
    expect(a.dmesg).toEqual(b.dmesg);
    for (const seed of [2, 42]) expect((await run(scenario, "arm64-noncoherent", seed)).report.ok, `seed ${seed}`).toBe(true);
  });

  it("is registered for `dmasim run` and defaults to the non-coherent machine", () => {
    expect(findScenario(scenario.name)).toBe(scenario);
    expect(scenario.defaultMachine).toBe("arm64-noncoherent");
  });
});

describe("details a reader needs", () => {
  it("missing-sync-for-cpu: the stale read shows what the device wrote and what the CPU got", async () => {
    const r = await run(coherenceMissingSyncForCpu, "arm64-noncoherent");
    const f = r.report.findings.find((x) => x.kind === "stale-cpu-read")!;
    expect(f.fix).toBe("Call dma_sync_single_for_cpu() before reading what the device wrote.");
    expect(f.details).toMatchObject({ direction: "DMA_FROM_DEVICE", size: 1024, offset_start: 0, actual: "00 00 00 00 00 00 00 00" });
    expect(f.details!.expected).not.toBe(f.details!.actual);
    expect(f.history!.map((h) => h.op)).toEqual(["dma_map_single", "dma_mapping_error"]);
  });

  it("shared-cacheline: the cause names the store outside the buffer, the effect the lost bytes", async () => {
    const r = await run(coherenceSharedCacheline, "arm64-noncoherent");
    const [cause, effect] = r.report.findings;
    expect(cause).toMatchObject({ kind: "cpu-access-device-owned", details: expect.objectContaining({ shared_line: true, write_len: 4, granule: 128 }) });
    expect(effect).toMatchObject({ kind: "lost-device-write", details: expect.objectContaining({ bytes: 48, shared_line: true }) });
    expect(effect.fix).toBe("Do not write fields sharing a cache line with a DMA_FROM_DEVICE buffer while it is mapped; align the buffer to dma_get_cache_alignment().");
    expect(effect.history!.map((h) => h.op)).toEqual(["dma_map_single", "dma_mapping_error"]); // lost inside the unmap, before it is noted
  });

  it("missing-sync-for-device: the stale device read shows the CPU's newer bytes and the old ones the device got", async () => {
    const r = await run(coherenceMissingSyncForDevice, "arm64-noncoherent");
    const stale = r.report.findings.filter((x) => x.kind === "stale-device-read");
    expect(stale.length).toBe(2); // one per round: two ownership epochs
    expect(stale[0].fix).toBe("Call dma_sync_single_for_device() after writing and before starting the device.");
    expect(r.report.results["device-got-old-data"]).toBe(true);
  });
});

describe("partial syncs", () => {
  it("partial-sync: the correct round is no finding; the cause and the effect name exactly the bytes past the synced range", async () => {
    const r = await run(coherencePartialSync, "arm64-noncoherent");
    expect(r.report.checks.find((c) => c.name === "findings-after-correct-round")).toMatchObject({ ok: true, actual: 0 });
    const [cause, effect] = r.report.findings;
    expect(cause).toMatchObject({ kind: "cpu-access-device-owned", details: expect.objectContaining({ offset_start: 256, offset_end: 1023, cpu_owned: "0-255" }) });
    expect(cause.fix).toBe("Sync every byte the CPU reads: the range given to dma_sync_single_range_for_cpu() must also cover offsets 256 to 1023 (or unmap the buffer first).");
    expect(effect).toMatchObject({ kind: "stale-cpu-read", details: expect.objectContaining({ offset_start: 256, offset_end: 1023 }) });
    expect(effect.fix).toBe(cause.fix);
    expect(cause.history!.map((h) => h.op)).toEqual(["dma_map_single", "dma_mapping_error", "dma_sync_single_range_for_cpu", "dma_sync_single_range_for_cpu"]);
  });
});

describe("no false positives: the correct edu driver under the sanitizer", () => {
  for (const profile of ["arm64-noncoherent", "x86-coherent"] as const) {
    it(`${profile}: zero findings, and the sanitizer really watched the run`, async () => {
      const r = await run(eduScenario, profile);
      expect(r.report.ok).toBe(true);
      expect(r.report.findings).toEqual([]);
      const s = dma_sanitizer(r.kernel)!;
      expect(s).not.toBeNull();
      expect(s.stats.cpu_accesses).toBeGreaterThan(0);
      expect(s.stats.device_accesses).toBeGreaterThan(0);
      expect(s.shadow.size).toBe(0);
      expectCleanTeardown(r);
    });
  }

  it("arm64 with random evictions and speculative fills, several seeds: still zero", async () => {
    const noisy = getProfile("arm64-noncoherent");
    noisy.cpus.evictionRate = 0.05;
    noisy.cpus.prefetchRate = 0.5;
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = await run(eduScenario, noisy, seed);
      expect(r.report.findings, `seed ${seed}`).toEqual([]);
      expect(r.report.ok).toBe(true);
    }
  });
});
