/**
 * The dmasim command line.
 *
 *   dmasim list                          built-in scenarios, one line each
 *   dmasim run [SCENARIO|FILE] [options] run one; FILE is a YAML/JSON scenario file
 *
 * Exit codes: 0 the scenario's checks held, 1 they did not (or findings it did not expect),
 * 2 usage or configuration error (the message names the field and, for files, the line).
 */

import { Command, CommanderError, Option } from "commander";
import { readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { SCENARIOS, findScenario } from "../scenarios/index.ts";
import { runScenario } from "../sim/run.ts";
import { reportToJson, type RunReport } from "../sim/report.ts";
import { MachineConfigError, parseMachineText } from "../hw/machine/load.ts";
import { getProfile, isProfileName, listProfiles } from "../hw/machine/profiles.ts";
import { IOMMU_POLICIES, type IommuPolicy, type MachineDesc } from "../hw/machine/schema.ts";
import { parseScenarioFile } from "../sim/scenario-file.ts";
import { writeFileAtomic } from "./artifacts.ts";
import { formatSummary } from "./summary.ts";

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** A user error: printed without a stack, exit code 2. */
export class UsageError extends Error {}

const LOG_LEVELS = ["silent", "error", "warn", "notice", "info", "debug"] as const;

interface RunOptions {
  seed?: string;
  machine?: string;
  trace?: string;
  json?: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  out?: string;
  iommu?: IommuPolicy;
}

export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let code = 0;
  const program = new Command("dmasim")
    .description("A Linux-style driver framework in simulation: DMA, caches that hold stale data, interrupts, IOMMU.")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  program
    .command("list")
    .description("list the built-in scenarios and machine profiles")
    .action(() => {
      io.out(listText());
    });
  program
    .command("run")
    .description("run a scenario (a built-in name or a YAML/JSON scenario file)")
    .argument("[scenario]", "scenario name or file", "edu")
    .option("--seed <n>", "seed for all randomness (default 1, or the file's)")
    .option("--machine <profile|file>", "machine profile name or machine description file")
    .option("--trace <file>", "write a Perfetto / Chrome trace (JSON)")
    .option("--json", "print the report as JSON on stdout")
    .option("--out <dir>", "write the run's artifacts there: report.json, dmesg.txt, trace.json (with tracing)")
    .addOption(new Option("--log-level <level>", "kernel log level printed on stderr").choices(LOG_LEVELS).default("warn"))
    .addOption(new Option("--iommu <policy>", "how the kernel uses the machine's IOMMU (its command line: intel_iommu=off, iommu.passthrough, iommu.strict)").choices(IOMMU_POLICIES))
    .action(async (scenario: string, opts: RunOptions) => {
      code = await runCommand(scenario, opts, io);
    });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError || e instanceof MachineConfigError) {
      io.err(`dmasim: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  return code;
}

function listText(): string {
  const w = Math.max(...SCENARIOS.map((s) => s.name.length));
  const lines = SCENARIOS.map((s) => `  ${s.name.padEnd(w)}  ${s.summary}`);
  const pw = Math.max(...listProfiles().map((p) => p.name.length));
  const profiles = listProfiles().map((p) => `  ${p.name.padEnd(pw)}  ${p.description}`);
  return `Scenarios:\n${lines.join("\n")}\n\nMachine profiles:\n${profiles.join("\n")}\n`;
}

async function runCommand(arg: string, opts: RunOptions, io: CliIo): Promise<number> {
  const { scenarioName, fileMachine, fileSeed } = resolveScenarioArg(arg);
  const scenario = findScenario(scenarioName);
  if (!scenario) throw new UsageError(`unknown scenario "${scenarioName}" (see dmasim list)`);
  const seed = opts.seed !== undefined ? parseSeed(opts.seed) : (fileSeed ?? 1);
  const machine = withIommuPolicy(opts.machine ? loadMachine(opts.machine) : (fileMachine ?? getProfile(scenario.defaultMachine)), opts.iommu);
  const result = await runScenario(scenario, {
    machine,
    seed,
    trace: opts.trace !== undefined || opts.out !== undefined,
    logLevel: opts.logLevel,
    logSink: (line) => io.err(`${line}\n`),
  });
  if (opts.trace) writeArtifact("--trace", opts.trace, result.traceJson ?? "");
  if (opts.out) {
    writeArtifact("--out", join(opts.out, "report.json"), reportToJson(result.report));
    writeArtifact("--out", join(opts.out, "dmesg.txt"), result.dmesg.join("\n") + "\n");
    writeArtifact("--out", join(opts.out, "trace.json"), result.traceJson ?? "");
  }
  if (opts.json) io.out(reportToJson(result.report));
  else io.out(formatSummary(result.report));
  return exitCode(result.report);
}

/** A file the user asked for could not be written: their input, so exit 2 with the reason. */
function writeArtifact(option: string, path: string, data: string): void {
  try {
    writeFileAtomic(path, data);
  } catch (e) {
    throw new UsageError(`${option}: cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function exitCode(r: RunReport): number {
  return r.ok ? 0 : 1;
}

function resolveScenarioArg(arg: string): { scenarioName: string; fileMachine?: MachineDesc; fileSeed?: number } {
  const ext = extname(arg).toLowerCase();
  if (ext !== ".yaml" && ext !== ".yml" && ext !== ".json") return { scenarioName: arg };
  const f = parseScenarioFile(readText(arg), arg, SCENARIOS.map((s) => s.name));
  return { scenarioName: f.scenario, fileMachine: f.machine, fileSeed: f.seed };
}

/** The machine with the kernel's IOMMU policy overridden (--iommu), as a boot parameter would. */
function withIommuPolicy(m: MachineDesc, policy: IommuPolicy | undefined): MachineDesc {
  if (policy === undefined) return m;
  if (!m.iommu) {
    const withOne = listProfiles().filter((p) => p.iommu).map((p) => p.name).join(", ");
    throw new UsageError(`--iommu: machine "${m.name}" has no IOMMU (profiles with one: ${withOne}; or add an iommu: section to the machine file)`);
  }
  return { ...m, iommu: { ...m.iommu, policy } };
}

function loadMachine(spec: string): MachineDesc {
  if (isProfileName(spec)) return getProfile(spec);
  const ext = extname(spec).toLowerCase();
  if (ext !== ".yaml" && ext !== ".yml" && ext !== ".json") {
    throw new UsageError(`--machine: "${spec}" is neither a profile (${listProfiles().map((p) => p.name).join(", ")}) nor a .yaml/.json file`);
  }
  return parseMachineText(readText(spec), spec);
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function parseSeed(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw new UsageError(`--seed: expected a non-negative integer, got "${s}"`);
  return n;
}

// Run when executed directly (tsx cli/main.ts ...); bin/dmasim.js imports runCli instead.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runCli(process.argv.slice(2));
}
