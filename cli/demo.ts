/**
 * `npm start`: the default demo. Runs the edu scenarios on both plain machines (the coherence
 * lesson: the same missing sync is harmless on x86 and returns stale bytes on arm64), then the
 * rogue device with and without an IOMMU (the isolation lesson), prints a readable summary of
 * each and one line per run. Exit code 0 when every scenario showed what it claims.
 */

import { getProfile } from "../hw/machine/profiles.ts";
import { findScenario } from "../scenarios/index.ts";
import { runScenario } from "../sim/run.ts";
import type { RunReport } from "../sim/report.ts";
import { formatSummary } from "./summary.ts";

/** What one run showed, in a few words. */
type Verdict = (r: RunReport) => string;

const checked = (r: RunReport, name: string): unknown => r.checks.find((c) => c.name === name)?.actual;
const dataVerdict: Verdict = (r) => `data ${checked(r, "data-intact") ?? checked(r, "dma-single-intact") ? "intact" : "STALE"}`;
const isolationVerdict: Verdict = (r) => (checked(r, "secret-leaked") ? "secret LEAKED, structure corrupted" : "attack contained, nothing leaked");

const RUNS: [string, string, Verdict][] = [
  ["edu", "x86-coherent", dataVerdict],
  ["edu", "arm64-noncoherent", dataVerdict],
  ["edu-stale-read", "x86-coherent", dataVerdict],
  ["edu-stale-read", "arm64-noncoherent", dataVerdict],
  ["iommu-rogue-device", "x86-coherent", isolationVerdict],
  ["iommu-rogue-device", "x86-iommu", isolationVerdict],
];

async function main(): Promise<number> {
  const verdicts: string[] = [];
  let failed = 0;
  for (const [name, machine, verdict] of RUNS) {
    const scenario = findScenario(name)!;
    const { report } = await runScenario(scenario, { machine: getProfile(machine), seed: 1, trace: false, logLevel: "silent" });
    process.stdout.write(formatSummary(report) + "\n");
    if (!report.ok) failed++;
    verdicts.push(`  ${report.ok ? "OK    " : "FAILED"} ${name.padEnd(18)} ${machine.padEnd(18)} ${verdict(report)}, ${report.findings.length} finding${report.findings.length === 1 ? "" : "s"}`);
  }
  process.stdout.write(`dmasim demo: ${RUNS.length - failed}/${RUNS.length} scenarios showed what they claim\n${verdicts.join("\n")}\n`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
