/**
 * `dmasim list` and `dmasim run` through runCli: what is listed, which runs pass, and the exit
 * code contract (0 checks held, 1 they did not, 2 usage error) with the message for each error.
 */

import { describe, expect, it } from "vitest";
import { cli, cliJson, fixture } from "../fixtures/cli.ts";

describe("dmasim list", () => {
  it("lists each built-in scenario on one line and both machine profiles", async () => {
    const { code, out, err } = await cli("list");
    expect(code).toBe(0);
    expect(err).toBe("");
    const lines = out.split("\n");
    for (const name of ["edu", "edu-stale-read"]) {
      const hits = lines.filter((l) => l.trim().split(/\s+/)[0] === name);
      expect(hits, `exactly one line for scenario ${name}`).toHaveLength(1);
      // The one line carries the summary, not just the name.
      expect(hits[0]!.trim().length).toBeGreaterThan(name.length + 10);
    }
    const profilesAt = lines.findIndex((l) => /machine profiles/i.test(l));
    expect(profilesAt).toBeGreaterThan(0);
    const profileLines = lines.slice(profilesAt + 1);
    for (const p of ["x86-coherent", "arm64-noncoherent"]) {
      expect(profileLines.filter((l) => l.trim().startsWith(`${p} `))).toHaveLength(1);
    }
  });

  // Regression test for a bug these tests found (fixed).
  it("descriptions line up in one column within each section", async () => {
    const { out } = await cli("list");
    for (const section of out.split("\n\n")) {
      const entries = section.split("\n").filter((l) => l.startsWith("  "));
      const columns = new Set(entries.map((l) => /^ {2}\S+\s+/.exec(l)![0].length));
      expect(columns.size, section).toBe(1);
    }
  });
});

describe("dmasim run: scenarios that hold exit 0", () => {
  for (const machine of ["x86-coherent", "arm64-noncoherent"]) {
    it(`edu on ${machine}`, async () => {
      const { code, report, err } = await cliJson("run", "edu", "--machine", machine);
      expect(err).toBe("");
      expect(code).toBe(0);
      expect(report.ok).toBe(true);
      expect(report.machine).toBe(machine);
      expect(report.checks.every((c) => c.ok)).toBe(true);
      expect(report.findings).toEqual([]);
    });
  }

  it("edu-stale-read on arm64-noncoherent: the data is stale, as the scenario claims", async () => {
    const { code, report } = await cliJson("run", "edu-stale-read", "--machine", "arm64-noncoherent");
    expect(code).toBe(0);
    const c = report.checks.find((x) => x.name === "data-intact");
    expect(c).toEqual({ name: "data-intact", ok: true, expected: false, actual: false });
    expect(report.results["stale-bytes"]).toBeGreaterThan(0);
  });

  it("edu-stale-read on x86-coherent: the data is intact despite the missing sync", async () => {
    const { code, report } = await cliJson("run", "edu-stale-read", "--machine", "x86-coherent");
    expect(code).toBe(0);
    const c = report.checks.find((x) => x.name === "data-intact");
    expect(c).toEqual({ name: "data-intact", ok: true, expected: true, actual: true });
    expect(report.results["stale-bytes"]).toBe(0);
  });

  it("defaults: no scenario runs edu; each scenario runs on its default machine with seed 1", async () => {
    const edu = await cliJson("run");
    expect(edu.code).toBe(0);
    expect([edu.report.scenario, edu.report.machine, edu.report.seed]).toEqual(["edu", "x86-coherent", 1]);
    const stale = await cliJson("run", "edu-stale-read");
    expect([stale.report.scenario, stale.report.machine]).toEqual(["edu-stale-read", "arm64-noncoherent"]);
  });

  it("prints a readable summary without --json", async () => {
    const { code, out } = await cli("run", "edu", "--machine", "arm64-noncoherent");
    expect(code).toBe(0);
    expect(out).toMatch(/^edu on arm64-noncoherent \(seed 1\): OK\n/);
    expect(out).toMatch(/checks: (\d+)\/\1 hold/);
  });
});

describe("dmasim run: failing checks exit 1", () => {
  // An honest failure through the CLI: a valid machine without the edu device. The edu
  // scenario cannot probe its driver, so its "probe" and "edu-bound" checks fail.
  it("edu on a machine without an edu device", async () => {
    const { code, report, err } = await cliJson("run", "edu", "--machine", fixture("machines", "no-devices.yaml"));
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toEqual(["probe", "edu-bound"]);
    expect(err).toBe("");
  });

  it("the summary says FAILED and shows what was expected", async () => {
    const { code, out } = await cli("run", "edu", "--machine", fixture("machines", "no-devices.yaml"));
    expect(code).toBe(1);
    expect(out).toMatch(/: FAILED\n/);
    expect(out).toContain("FAIL probe: 0 (expected 1)");
  });
});

describe("dmasim usage errors exit 2 with a message and nothing on stdout", () => {
  const cases: [string, string[], RegExp][] = [
    ["unknown scenario", ["run", "nosuch"], /unknown scenario "nosuch"/],
    ["--seed not a number", ["run", "edu", "--seed", "abc"], /--seed: .*"abc"/],
    ["--seed negative", ["run", "edu", "--seed", "-1"], /--seed: .*"-1"/],
    ["--seed fractional", ["run", "edu", "--seed", "1.5"], /--seed: .*"1.5"/],
    ["--seed beyond 2^53", ["run", "edu", "--seed", "99999999999999999999"], /--seed: /],
    ["--seed empty", ["run", "edu", "--seed="], /--seed: /],
    ["unknown option", ["run", "edu", "--bogus"], /unknown option '--bogus'/],
    ["unknown machine", ["run", "edu", "--machine", "nosuch"], /--machine: "nosuch" .*x86-coherent.*arm64-noncoherent/],
    ["missing machine file", ["run", "edu", "--machine", "does/not/exist.yaml"], /cannot read does\/not\/exist\.yaml: ENOENT/],
    ["unknown command", ["frob"], /unknown command 'frob'/],
    ["bad --log-level", ["run", "edu", "--log-level", "loud"], /--log-level.*'loud'/],
    ["--trace without a file", ["run", "edu", "--trace"], /--trace <file>.*missing/],
    ["too many arguments", ["run", "edu", "extra"], /too many arguments/],
  ];
  for (const [what, argv, message] of cases) {
    it(what, async () => {
      const { code, out, err } = await cli(...argv);
      expect(code).toBe(2);
      expect(out).toBe("");
      expect(err).toMatch(message);
    });
  }
});
