/**
 * Run a scenario on a machine and build its report: boot the board and kernel, let the
 * scenario work and check, then add the teardown checks every scenario shares.
 */

import { iommu_report } from "../kernel/iommu/fault-report.ts";
import { Board } from "../hw/machine/board.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import { boot } from "../kernel/platform/boot.ts";
import type { Kernel } from "../kernel/core/kernel.ts";
import type { FindingKind } from "../kernel/core/findings.ts";
import type { LogLevelName, PrintkSink } from "../kernel/core/printk.ts";
import { driver_core_summary } from "../kernel/base/driver.ts";
import { dma_debug_live } from "../kernel/dma/debug.ts";
import { dma_stats } from "../kernel/dma/state.ts";
import { irq_stats } from "../kernel/irq/irqdesc.ts";
import type { CheckValue, Scenario, ScenarioCheck, ScenarioContext } from "./scenario.ts";
import type { RunReport, RunStats } from "./report.ts";

export interface RunOptions {
  machine: MachineDesc;
  seed: number;
  trace: boolean;
  logLevel: LogLevelName;
  logSink?: PrintkSink;
  /** The coherence sanitizer (default on); off only to measure what it costs. */
  checks?: boolean;
}

export interface RunResult {
  report: RunReport;
  /** Chrome / Perfetto trace JSON, when tracing was on. */
  traceJson?: string;
  dmesg: string[];
  kernel: Kernel;
  board: Board;
}

export async function runScenario(scenario: Scenario, opts: RunOptions): Promise<RunResult> {
  const machine = scenario.machineFor ? scenario.machineFor(opts.machine) : opts.machine;
  const board = new Board(machine, { seed: opts.seed, trace: opts.trace });
  const kernel = boot(board, { logLevel: opts.logLevel, logSink: opts.logSink, checks: opts.checks });
  const checks: ScenarioCheck[] = [];
  const results: Record<string, CheckValue> = {};
  const expected = new Set<FindingKind>();
  const ctx: ScenarioContext = {
    kernel,
    board,
    machine,
    seed: opts.seed,
    check: (name, exp, actual) => checks.push({ name, ok: exp === actual, expected: exp, actual }),
    expectFindings: (...kinds) => kinds.forEach((k) => expected.add(k)),
    result: (key, value) => (results[key] = value),
  };
  await scenario.run(ctx);
  await kernel.run();
  checks.push(...teardownChecks(kernel, board, expected));
  const report: RunReport = {
    scenario: scenario.name,
    claim: scenario.claim(machine),
    seed: opts.seed,
    machine: machine.name,
    // The clock stops at the last event; a CPU may still be busy finishing the code it ran.
    virtualTimeNs: Math.max(kernel.platform.now(), ...kernel.exec.busyUntil),
    ok: checks.every((c) => c.ok),
    checks,
    results,
    findings: kernel.findings.list,
    guestErrors: board.log.errors.map((e) => ({ timeNs: e.timeNs, device: e.device, message: e.message })),
    stats: collectStats(kernel, board),
  };
  return { report, traceJson: opts.trace ? board.trace.toJSON() : undefined, dmesg: kernel.printk.dmesg(), kernel, board };
}

/** What every scenario must leave behind: nothing. */
function teardownChecks(k: Kernel, board: Board, expected: Set<FindingKind>): ScenarioCheck[] {
  k.enter();
  const check = (name: string, exp: CheckValue, actual: CheckValue): ScenarioCheck => ({ name, ok: exp === actual, expected: exp, actual });
  const bound = driver_core_summary(k).devices.filter((d) => d.driver !== null).length;
  const leaked = [...k.slab.live.values()].filter((o) => o.owner !== "").length;
  const unexpected = k.findings.list.filter((f) => !expected.has(f.kind)).length;
  return [
    check("teardown: drivers removed", 0, bound),
    check("teardown: live DMA mappings", 0, dma_debug_live().length),
    check("teardown: leaked allocations", 0, leaked),
    check("teardown: unexpected findings", 0, unexpected),
    check("teardown: kernel warnings", 0, expected.size ? 0 : k.warnings),
    check("teardown: guest errors", 0, board.log.errors.length),
  ];
}

function collectStats(k: Kernel, board: Board): RunStats {
  const m = board.mem.stats;
  return {
    cpuBusyNs: [...k.exec.busyNs],
    dmaBusyNs: [...board.pciDevices, ...board.platformDevices].reduce((s, d) => s + d.device.dma.busyNs, 0),
    interrupts: irq_stats(k).map((s) => ({ irq: s.irq, name: s.names.join(",") , count: s.count })),
    dmaBytesRead: m.deviceReadBytes,
    dmaBytesWritten: m.deviceWriteBytes,
    mmioReads: m.mmioReads,
    mmioWrites: m.mmioWrites,
    cache: {
      l1Hits: m.l1Hits,
      l1Misses: m.l1Misses,
      llcHits: m.llcHits,
      llcMisses: m.llcMisses,
      writebacks: m.writebacks,
      cleanedLines: m.cleanedLines,
      invalidatedLines: m.invalidatedLines,
    },
    dma: { ...dma_stats(k) } as unknown as Record<string, number>,
    iommuFaults: board.iommu?.stats.faults ?? 0,
    iommu: iommu_report(k),
    events: board.scheduler.executed,
    residentRamBytes: board.residentRamBytes,
  };
}
