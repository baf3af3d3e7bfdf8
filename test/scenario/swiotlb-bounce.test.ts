import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { getProfile } from "../../hw/machine/profiles.ts";
import { Board } from "../../hw/machine/board.ts";
import { boot } from "../../kernel/platform/boot.ts";
import { bindDriver, inProcessContext, unbindDriver } from "../../sim/driver-harness.ts";
import { swiotlbBounceScenario } from "../../scenarios/swiotlb-bounce.ts";
import { edu_bounce_devices, edu_bounce_driver } from "../../drivers/misc/edu_bounce/edu_bounce_main.ts";
import { edu_bounce_bugs, edu_bounce_receive } from "../../drivers/misc/edu_bounce/edu_bounce_ops.ts";
import { PAGE_OFFSET } from "../../kernel/mm/layout.ts";
import { swiotlb_info } from "../../kernel/dma/swiotlb.ts";
import { cli } from "../fixtures/cli.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";
import { expectSameReplay, machine, scenarioRunner } from "../helpers/scenario-run.ts";

const run = scenarioRunner(swiotlbBounceScenario);
const PROFILES = ["x86-coherent", "arm64-noncoherent"];

/** Bytes each phase bounces on a default pool (§6.3): see the arithmetic in the test below. */
const MAP = 4096 + 4096 + 6000 + 8 * 65536 + 4096;
const SYNC_CPU = 4096 + 6000 + 3000 + 4096;
const UNMAP = 4096 + 6000 + 4096;

describe("swiotlb-bounce scenario", () => {
  for (const profile of PROFILES) {
    it(`bounces every high buffer on ${profile}: data intact, bytes counted, zero findings, clean teardown`, async () => {
      const r = await run(machine(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(r.report.findings).toEqual([]);
      const res = r.report.results;
      expect(res["dma-mask-bits"]).toBe(28);
      expect(res["max-mapping-size"]).toBe(256 * 1024);
      expect(Number(res["tx-buffer-phys"])).toBeGreaterThanOrEqual(2 ** 32);
      expect(res["low-buffer-phys"]).not.toBeUndefined();
      // send (TO) + receive (FROM) + bidi 6000 + ring 8 x 64 KiB + ring tail receive (FROM)
      expect(res["bounced-maps"]).toBe(12);
      expect(res["bounced-bytes-map"]).toBe(MAP);
      expect(res["bounced-bytes-sync-for-device"]).toBe(6000);
      expect(res["bounced-bytes-sync-for-cpu"]).toBe(SYNC_CPU);
      expect(res["bounced-bytes-unmap"]).toBe(UNMAP);
      expect(res["bounced-bytes-to-device"]).toBe(MAP + 6000);
      expect(res["bounced-bytes-from-device"]).toBe(SYNC_CPU + UNMAP);
      expect(res["slots-high-water"]).toBe(256);
      expect(res["ring-rounds"]).toBe(1);
      expect(r.report.stats.dma.swiotlb_slots_used).toBe(0);
      expect(r.dmesg.join("\n")).toContain("software IO TLB: mapped [mem 0x0000000004000000-0x0000000008000000] (64MB)");
      expect(r.report.claim).toMatch(/^a 28-bit DMA engine moves buffers above 4 GiB intact/);
      expectCleanTeardown(r);
    });
  }

  it("works the same with a 32-bit engine (dmaBits: 32), on both profiles", async () => {
    for (const profile of PROFILES) {
      const r = await run(machine(profile, (d) => (d.pci.devices[0].dmaBits = 32)));
      expect(r.report.ok, profile).toBe(true);
      expect(r.report.results["dma-mask-bits"]).toBe(32);
      expect(r.report.results["bounced-maps"]).toBe(12);
      expect(r.report.findings).toEqual([]);
      expectCleanTeardown(r);
    }
  });

  it("force mode bounces the reachable low buffer too", async () => {
    for (const profile of PROFILES) {
      const r = await run(machine(profile, (d) => (d.swiotlb.force = true)));
      expect(r.report.ok, profile).toBe(true);
      expect(r.report.checks.find((c) => c.name === "low-buffer-bounced")).toMatchObject({ expected: true, actual: true });
      expect(r.report.results["bounced-maps"]).toBe(14);
      expect(r.report.claim).toContain("force mode bounces even a reachable low buffer");
      expectCleanTeardown(r);
    }
  });

  it("with a tiny pool the TX ring hits a full pool, the driver resubmits, everything arrives", async () => {
    for (const profile of PROFILES) {
      const r = await run(machine(profile, (d) => (d.swiotlb.size = 256 * 1024)));
      expect(r.report.checks.filter((c) => !c.ok), profile).toEqual([]);
      expect(r.report.checks.find((c) => c.name === "ring-mapped-in-one-round")).toMatchObject({ expected: false, actual: false });
      expect(r.report.results["ring-rounds"] as number).toBeGreaterThanOrEqual(2);
      expect(r.report.results["bounce-map-failures"] as number).toBeGreaterThanOrEqual(1);
      expect(r.report.results["slots-high-water"]).toBe(128);
      const log = r.dmesg.join("\n");
      expect(log).toMatch(/edu_bounce 0000:00:03\.0: swiotlb buffer is full \(sz: 65536 bytes\), total 128 \(slots\), used \d+ \(slots\)/);
      expect(log).toMatch(/TX ring: \d of \d buffers mapped, the rest wait for the next round/);
      expect(r.report.findings).toEqual([]);
      expectCleanTeardown(r);
    }
  });

  it("without a pool every map fails with dma-mask-exceeded and the driver says -ENOMEM", async () => {
    const r = await run(machine("x86-coherent", (d) => (d.swiotlb.size = 0)));
    expect(r.report.ok).toBe(true);
    expect(r.report.checks.find((c) => c.name === "send-err")).toMatchObject({ expected: -12, actual: -12 });
    expect(r.report.findings.map((f) => f.kind)).toEqual(["dma-mask-exceeded"]);
    expect(r.report.claim).toMatch(/without a bounce pool/);
    expectCleanTeardown(r);
  });

  it("is deterministic for a seed", async () => {
    const a = await run(machine("arm64-noncoherent"), 7);
    const b = await run(machine("arm64-noncoherent"), 7);
    expectSameReplay(a, b);
  });

  it("runs from the CLI on its default machine and on a --machine file, exit 0", async () => {
    const list = await cli("list");
    expect(list.out).toMatch(/^\s+swiotlb-bounce\s+narrow-mask DMA engine/m);
    expect((await cli("run", "swiotlb-bounce", "--log-level", "silent")).code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), "swiotlb-"));
    try {
      const file = join(dir, "tiny.yaml");
      const m = machine("arm64-noncoherent", (d) => (d.swiotlb = { size: 256 * 1024, force: true }));
      writeFileSync(file, stringify({ ...m, name: "arm64-tiny-forced" }));
      const r = await cli("run", "swiotlb-bounce", "--machine", file, "--log-level", "silent");
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain("swiotlb-bounce on arm64-tiny-forced (seed 1): OK");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a driver that leaks a bounced mapping", () => {
  afterEach(() => (edu_bounce_bugs.leak_rx_mapping = false));

  it("gets a mapping-leak finding at unbind, and the slots it held are named", async () => {
    const desc = getProfile("arm64-noncoherent");
    const k = boot(new Board(desc, { seed: 1 }), { logLevel: "silent" });
    expect(await bindDriver(k, edu_bounce_driver)).toBe(1);
    const eb = edu_bounce_devices[0];
    const buf = k.pages.alloc(0, 1); // node 1: above 4 GiB
    edu_bounce_bugs.leak_rx_mapping = true;
    await inProcessContext(k, "leak", async () => void (await edu_bounce_receive(eb, PAGE_OFFSET + buf, 4096)), "edu_bounce");
    await unbindDriver(k, edu_bounce_driver);
    const leak = k.findings.list.filter((f) => f.kind === "mapping-leak");
    expect(leak).toHaveLength(1);
    expect(leak[0].details).toMatchObject({ phys: `0x${buf.toString(16).padStart(16, "0")}`, size: 4096 });
    expect(k.printk.dmesg().join("\n")).toContain("edu_bounce 0000:00:03.0: 1 bounce buffer still mapped at unbind: 2 slots (4096 bytes) of the swiotlb pool leaked");
    expect(swiotlb_info(k)!.used).toBe(2);
  });
});
