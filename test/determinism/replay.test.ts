/**
 * Same seed, same bytes: a run's report (stdout) and trace file depend on nothing but the
 * scenario, the machine and the seed: not on earlier runs in the same process, not on whether
 * tracing is on, not on running in process or through the real `dmasim` binary.
 */

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunReport } from "../../sim/report.ts";
import { REPO_ROOT, cli, fixture, tempDir } from "../fixtures/cli.ts";

const tmp = tempDir("dmasim-replay-");
afterAll(() => tmp.cleanup());
let runs = 0;

/** One traced run into its own directory: stdout, exit code and the trace's bytes. */
async function traced(...argv: string[]): Promise<{ code: number; out: string; trace: string }> {
  const file = join(tmp.dir, `run-${runs++}`, "a.json");
  const { code, out } = await cli(...argv, "--trace", file, "--json");
  return { code, out, trace: readFileSync(file, "utf8") };
}

/** Top-level report keys whose values differ. */
function differingKeys(a: string, b: string): string[] {
  const [x, y] = [JSON.parse(a) as Record<string, unknown>, JSON.parse(b) as Record<string, unknown>];
  return Object.keys(x).filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]));
}

describe("replay: the same command twice gives the same bytes", () => {
  const cases: [string, string[]][] = [
    ["edu --seed 7", ["run", "edu", "--seed", "7"]],
    ["edu-stale-read --seed 7 on arm64", ["run", "edu-stale-read", "--machine", "arm64-noncoherent", "--seed", "7"]],
    ["edu-stale-read --seed 7 on x86", ["run", "edu-stale-read", "--machine", "x86-coherent", "--seed", "7"]],
    ["edu on a machine with seeded cache noise", ["run", "edu", "--machine", fixture("machines", "arm64-noisy.yaml"), "--seed", "7"]],
  ];
  for (const [what, argv] of cases) {
    it(what, async () => {
      const a = await traced(...argv);
      const b = await traced(...argv);
      expect(a.code).toBe(0);
      expect(b.code).toBe(0);
      expect(b.out).toBe(a.out);
      expect(b.trace === a.trace, "trace files are byte-identical").toBe(true);
      expect(a.trace.length).toBeGreaterThan(1000);
    });
  }

  it("earlier runs in the same process leave nothing behind (edu, stale-read, a failed run, edu)", async () => {
    const first = await traced("run", "edu", "--seed", "7");
    await traced("run", "edu-stale-read", "--seed", "7");
    await traced("run", "edu", "--machine", fixture("machines", "no-devices.yaml"));
    const again = await traced("run", "edu", "--seed", "7");
    expect(again.out).toBe(first.out);
    expect(again.trace === first.trace).toBe(true);
  });

  it("tracing does not change the simulation: the report is the same with and without --trace", async () => {
    for (const argv of [["run", "edu", "--seed", "7"], ["run", "edu-stale-read", "--seed", "7"]]) {
      const withTrace = await traced(...argv);
      const without = await cli(...argv, "--json");
      expect(without.out).toBe(withTrace.out);
    }
  });
});

describe("a different seed gives a different run", () => {
  // On the built-in profiles nothing in the hardware is random (evictionRate and prefetchRate
  // are 0): the seed only picks the DMA payload, which the report does not print. So there the
  // reports differ in `seed` and in payload-dependent results (how many bytes read stale).
  it("edu: the report records the seed", async () => {
    const a = await cli("run", "edu", "--seed", "7", "--json");
    const b = await cli("run", "edu", "--seed", "8", "--json");
    expect(differingKeys(a.out, b.out)).toContain("seed");
    expect((JSON.parse(b.out) as RunReport).seed).toBe(8);
  });

  it("edu-stale-read on arm64: the payload, and so the number of stale bytes, follows the seed", async () => {
    const a = JSON.parse((await cli("run", "edu-stale-read", "--seed", "7", "--json")).out) as RunReport;
    const b = JSON.parse((await cli("run", "edu-stale-read", "--seed", "2", "--json")).out) as RunReport;
    expect(a.ok && b.ok).toBe(true);
    expect(a.results["stale-bytes"]).not.toBe(b.results["stale-bytes"]);
  });

  it("with seeded cache noise, the seed changes cache statistics and timing", async () => {
    const m = fixture("machines", "arm64-noisy.yaml");
    const a = JSON.parse((await cli("run", "edu", "--machine", m, "--seed", "1", "--json")).out) as RunReport;
    const b = JSON.parse((await cli("run", "edu", "--machine", m, "--seed", "2", "--json")).out) as RunReport;
    expect(a.ok && b.ok).toBe(true);
    expect(b.stats.cache).not.toEqual(a.stats.cache);
    expect(b.virtualTimeNs).not.toBe(a.virtualTimeNs);
  });
});

describe("the real binary", () => {
  it("node bin/dmasim.js prints exactly what runCli prints and writes the same trace", async () => {
    const inProcess = await traced("run", "edu", "--seed", "7");
    const file = join(tmp.dir, "bin", "a.json");
    // execFileSync throws on a non-zero exit code, so reaching the next line means exit 0.
    const out = execFileSync(process.execPath, ["bin/dmasim.js", "run", "edu", "--seed", "7", "--trace", file, "--json"], {
      cwd: REPO_ROOT,
      timeout: 60_000,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(out).toBe(inProcess.out);
    expect(readFileSync(file, "utf8") === inProcess.trace, "same trace bytes").toBe(true);
  }, 90_000);
});
