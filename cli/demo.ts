/**
 * `npm start`: the default demo. Runs the edu scenarios on both built-in machines and prints a
 * readable summary of each, then one line per run. Exit code 0 when every scenario showed
 * what it claims.
 */

import { getProfile } from "../hw/machine/profiles.ts";
import { findScenario } from "../scenarios/index.ts";
import { runScenario } from "../sim/run.ts";
import { formatSummary } from "./summary.ts";

const RUNS: [string, string][] = [
  ["edu", "x86-coherent"],
  ["edu", "arm64-noncoherent"],
  ["edu-stale-read", "x86-coherent"],
  ["edu-stale-read", "arm64-noncoherent"],
];

async function main(): Promise<number> {
  const verdicts: string[] = [];
  let failed = 0;
  for (const [name, machine] of RUNS) {
    const scenario = findScenario(name)!;
    const { report } = await runScenario(scenario, { machine: getProfile(machine), seed: 1, trace: false, logLevel: "silent" });
    process.stdout.write(formatSummary(report) + "\n");
    if (!report.ok) failed++;
    const intact = report.checks.find((c) => c.name === "data-intact" || c.name === "dma-single-intact");
    verdicts.push(`  ${report.ok ? "OK    " : "FAILED"} ${name.padEnd(15)} ${machine.padEnd(18)} data ${intact?.actual ? "intact" : "STALE"}, ${report.findings.length} finding${report.findings.length === 1 ? "" : "s"}`);
  }
  process.stdout.write(`dmasim demo: ${RUNS.length - failed}/${RUNS.length} scenarios showed what they claim\n${verdicts.join("\n")}\n`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
