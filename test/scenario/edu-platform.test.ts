/**
 * The edu scenarios on a platform edu (described by the machine file's `platform` list, no
 * PCI), and on a machine with both a PCI and a platform edu; plus the platform driver's probe
 * failures, which must unwind completely.
 */

import { describe, expect, it } from "vitest";
import { getProfile } from "../../hw/machine/profiles.ts";
import { Board } from "../../hw/machine/board.ts";
import type { MachineDesc } from "../../hw/machine/schema.ts";
import { runScenario } from "../../sim/run.ts";
import { boot } from "../../kernel/platform/boot.ts";
import type { Kernel } from "../../kernel/core/kernel.ts";
import { driver_core_summary } from "../../kernel/base/driver.ts";
import { mem_region_owner } from "../../kernel/base/resource.ts";
import {
  DEFINE_RES_IRQ, DEFINE_RES_MEM, platform_device_register_simple, platform_device_unregister, type platform_device,
} from "../../kernel/include/platform_device.ts";
import { eduScenario, eduStaleReadScenario } from "../../scenarios/edu.ts";
import { edu_devices } from "../../drivers/misc/edu/edu_main.ts";
import { edu_platform_exit, edu_platform_init } from "../../drivers/misc/edu/edu_platform.ts";
import type { EduPlatformDevice } from "../../hw/dev/edu/edu-platform.ts";
import { expectCleanTeardown } from "../helpers/expect-clean.ts";

const BASE = 0xd0000000;
const IRQ = 12;
const PLATFORM_EDU = { name: "edu0", model: "edu" as const, base: BASE, size: 0x100000, irq: IRQ };
const PROFILES = ["x86-coherent", "arm64-noncoherent"];

/** A profile with the platform edu, and its PCI edu only when `withPci`. */
function machine(profile: string, withPci = false, edit?: (d: MachineDesc) => void): MachineDesc {
  const d = getProfile(profile);
  if (!withPci) d.pci.devices = [];
  d.platform = [{ ...PLATFORM_EDU }];
  edit?.(d);
  return d;
}

const run = (s: typeof eduScenario, m: MachineDesc, seed = 1) => runScenario(s, { machine: m, seed, trace: false, logLevel: "silent" });

const FACTORIAL_CHECKS = ["factorial(0)", "factorial(5)", "factorial(10)", "factorial(12)"];
const DMA_CHECKS = ["dma-single-err", "dma-single-intact", "dma-coherent-err", "dma-coherent-intact"];

describe("edu scenario on a platform edu", () => {
  for (const profile of PROFILES) {
    it(`probes, computes, round-trips data and removes cleanly on ${profile} with zero findings`, async () => {
      const r = await run(eduScenario, machine(profile));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(r.report.findings).toEqual([]);
      const names = r.report.checks.map((c) => c.name);
      for (const n of ["probe", "edu-bound", ...FACTORIAL_CHECKS, ...DMA_CHECKS]) expect(names).toContain(n);
      expect(r.report.checks.find((c) => c.name === "probe")).toMatchObject({ expected: 1, actual: 1 });
      expect(r.report.results).toEqual({ "irq-mode": "platform IRQ", "factorial-irqs": 4, "dma-irqs": 4 });
      expect(r.report.stats.dmaBytesRead).toBe(4096 + 2048);
      expect(r.report.stats.dmaBytesWritten).toBe(4096 + 2048);
      // Four factorials and four transfers, each one interrupt on the wired line.
      expect(r.report.stats.interrupts.find((i) => i.irq === IRQ)?.count).toBe(8);
      expectCleanTeardown(r);
    });
  }

  it("logs the probe under the platform device's name", async () => {
    const r = await run(eduScenario, machine("arm64-noncoherent"));
    expect(r.dmesg.join("\n")).toMatch(/\[\s+0\.\d{6}\] edu edu0: edu ready: IRQ 12 \(platform IRQ\), DMA mask 28 bits/);
    expect(r.dmesg.join("\n")).not.toMatch(/0000:00:03\.0/);
  });

  it("keeps working when the caches evict and prefetch at random", async () => {
    const noisy = machine("arm64-noncoherent", false, (d) => {
      d.cpus.evictionRate = 0.05;
      d.cpus.prefetchRate = 0.5;
    });
    for (const seed of [1, 2, 3]) {
      const r = await run(eduScenario, noisy, seed);
      expect(r.report.ok, `seed ${seed}`).toBe(true);
      expect(r.report.findings).toEqual([]);
    }
  });

  it("runs with the smallest window a machine file may give (4 KiB)", async () => {
    const r = await run(eduScenario, machine("x86-coherent", false, (d) => (d.platform[0].size = 0x1000)));
    expect(r.report.ok).toBe(true);
    expectCleanTeardown(r);
  });
});

describe("edu-stale-read scenario on a platform edu", () => {
  it("reads stale bytes through the cache on a non-coherent machine, like the PCI edu", async () => {
    const r = await run(eduStaleReadScenario, machine("arm64-noncoherent"));
    expect(r.report.checks.find((c) => c.name === "data-intact")).toMatchObject({ expected: false, actual: false, ok: true });
    expect(r.report.results["first-stale-byte"]).toBe(0);
    expect(r.report.results["stale-bytes"] as number).toBeGreaterThan(900);
    expect(r.report.ok).toBe(true);
    expectCleanTeardown(r);
  });

  it("reads the right bytes on a coherent machine with the same driver", async () => {
    const r = await run(eduStaleReadScenario, machine("x86-coherent"));
    expect(r.report.checks.find((c) => c.name === "data-intact")).toMatchObject({ expected: true, actual: true });
    expect(r.report.results["stale-bytes"]).toBe(0);
    expect(r.report.ok).toBe(true);
    expectCleanTeardown(r);
  });

  it("is stale on arm64 for every seed, and the next edu run is correct again", async () => {
    for (const seed of [1, 7, 42]) {
      const r = await run(eduStaleReadScenario, machine("arm64-noncoherent"), seed);
      expect(r.report.checks.find((c) => c.name === "data-intact")?.actual, `seed ${seed}`).toBe(false);
    }
    const r = await run(eduScenario, machine("arm64-noncoherent"));
    expect(r.report.ok).toBe(true);
  });
});

describe("edu scenarios on a machine with a PCI edu and a platform edu", () => {
  for (const profile of PROFILES) {
    it(`binds both and exercises each on ${profile}: the PCI one under plain names, the platform one prefixed`, async () => {
      const r = await run(eduScenario, machine(profile, true));
      expect(r.report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.report.ok).toBe(true);
      expect(r.report.findings).toEqual([]);
      expect(r.report.checks.find((c) => c.name === "probe")).toMatchObject({ expected: 2, actual: 2 });
      const names = r.report.checks.map((c) => c.name);
      for (const n of [...FACTORIAL_CHECKS, ...DMA_CHECKS]) {
        expect(names).toContain(n);
        expect(names).toContain(`edu0: ${n}`);
      }
      expect(r.report.results).toEqual({
        "irq-mode": "MSI",
        "factorial-irqs": 4,
        "dma-irqs": 4,
        "edu0: irq-mode": "platform IRQ",
        "edu0: factorial-irqs": 4,
        "edu0: dma-irqs": 4,
      });
      expect(r.report.stats.dmaBytesRead).toBe(2 * (4096 + 2048));
      expect(r.report.stats.interrupts.find((i) => i.irq === IRQ)?.count).toBe(8);
      const dmesg = r.dmesg.join("\n");
      expect(dmesg).toMatch(/edu 0000:00:03\.0: edu ready: IRQ \d+ \(MSI\)/);
      expect(dmesg).toMatch(/edu edu0: edu ready: IRQ 12 \(platform IRQ\)/);
      expectCleanTeardown(r);
    });
  }

  it("shows the stale read on both devices of a non-coherent machine", async () => {
    const r = await run(eduStaleReadScenario, machine("arm64-noncoherent", true));
    for (const n of ["data-intact", "edu0: data-intact"]) {
      expect(r.report.checks.find((c) => c.name === n), n).toMatchObject({ expected: false, actual: false, ok: true });
    }
    expect(r.report.results["edu0: stale-bytes"] as number).toBeGreaterThan(900);
    expect(r.report.ok).toBe(true);
    expectCleanTeardown(r);
  });

  it("exercises every device: a second platform edu gets its own prefix", async () => {
    const m = machine("x86-coherent", true, (d) => d.platform.push({ name: "edu1", model: "edu", base: BASE + 0x100000, size: 0x1000, irq: 13 }));
    const r = await run(eduScenario, m);
    expect(r.report.checks.find((c) => c.name === "probe")).toMatchObject({ expected: 3, actual: 3, ok: true });
    const edu1 = r.report.checks.filter((c) => c.name.startsWith("edu1: "));
    expect(edu1).toHaveLength(FACTORIAL_CHECKS.length + DMA_CHECKS.length);
    expect(edu1.every((c) => c.ok)).toBe(true);
    expect(r.report.results["edu1: irq-mode"]).toBe("platform IRQ");
    expect(r.report.ok).toBe(true);
    expectCleanTeardown(r);
  });
});

describe("platform driver probe failures unwind completely", () => {
  /**
   * A board with a platform edu at BASE whose kernel does not know it (the entry is dropped
   * after the board is built), so a test can describe that hardware with wrong resources.
   */
  function hiddenEdu(): { k: Kernel; board: Board } {
    const desc = machine("arm64-noncoherent");
    const board = new Board(desc, { seed: 1 });
    desc.platform = [];
    return { k: boot(board, { logLevel: "silent" }), board };
  }

  async function probeOnly(k: Kernel, res: Parameters<typeof platform_device_register_simple>[1]): Promise<platform_device> {
    k.enter();
    const pdev = platform_device_register_simple("edu", res) as platform_device;
    const done = edu_platform_init();
    await k.run();
    expect(await done).toBe(0);
    return pdev;
  }

  async function cleanup(k: Kernel, pdev: platform_device): Promise<void> {
    k.enter();
    const a = edu_platform_exit();
    await k.run();
    await a;
    const b = platform_device_unregister(pdev);
    await k.run();
    await b;
  }

  it("without an IRQ resource: -ENXIO after mapping, and the mapping and region are released", async () => {
    const { k, board } = hiddenEdu();
    const pdev = await probeOnly(k, [DEFINE_RES_MEM(BASE, 0x100000)]);
    k.enter();
    expect(driver_core_summary(k).devices).toMatchObject([{ name: "edu", driver: null, devres: 0 }]);
    expect(edu_devices).toEqual([]);
    expect(mem_region_owner(BASE)).toBeNull();
    const dmesg = k.printk.dmesg().join("\n");
    expect(dmesg).toMatch(/edu edu: IRQ index 0 not found/);
    // -ENXIO is "no such device here": the driver core notes it without an error line.
    expect(dmesg).toMatch(/probe with driver edu rejects match -6/);
    await cleanup(k, pdev);
    expect(k.findings.list).toEqual([]);
    expect(board.log.errors).toEqual([]);
  });

  it("with a window too small for the registers: -EINVAL before touching the device", async () => {
    const { k, board } = hiddenEdu();
    const pdev = await probeOnly(k, [DEFINE_RES_MEM(BASE, 0x80), DEFINE_RES_IRQ(IRQ)]);
    k.enter();
    expect(driver_core_summary(k).devices).toMatchObject([{ name: "edu", driver: null, devres: 0 }]);
    expect(k.printk.dmesg().join("\n")).toMatch(/edu edu: MMIO resource of 128 bytes cannot hold the registers \(0xa0 bytes\)/);
    // The identity check would have written LIVENESS (reads back inverted, so not 0).
    expect((board.platformDevices[0].device as EduPlatformDevice).peek(0x04, 4)).toBe(0);
    await cleanup(k, pdev);
    expect(k.findings.list).toEqual([]);
  });

  it("with the right resources, the same hidden device binds and unbinds cleanly", async () => {
    const { k, board } = hiddenEdu();
    const pdev = await probeOnly(k, [DEFINE_RES_MEM(BASE, 0x1000), DEFINE_RES_IRQ(IRQ)]);
    k.enter();
    expect(driver_core_summary(k).devices).toMatchObject([{ name: "edu", driver: "edu" }]);
    expect((board.platformDevices[0].device as EduPlatformDevice).peek(0x04, 4)).toBe(~0x12345678 >>> 0);
    expect(edu_devices.map((e) => e.irq_mode)).toEqual(["platform IRQ"]);
    expect(mem_region_owner(BASE)).not.toBeNull();
    await cleanup(k, pdev);
    expect(edu_devices).toEqual([]);
    expect(mem_region_owner(BASE)).toBeNull();
    expect(k.findings.list).toEqual([]);
    expect(board.log.errors).toEqual([]);
  });
});
