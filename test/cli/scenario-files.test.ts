/**
 * `dmasim run FILE`: scenario files (YAML or JSON) that name a scenario with its machine and
 * seed. The file's seed and machine apply unless the command line overrides them; bad files
 * exit 2 naming the field and its line, like machine files.
 */

import { describe, expect, it } from "vitest";
import { cli, cliJson, configErrorLine, fixture } from "../fixtures/cli.ts";

const scenario = (name: string): string => fixture("scenarios", name);

describe("good scenario files", () => {
  it("runs the named scenario on the named profile with the file's seed", async () => {
    const { code, report, err } = await cliJson("run", scenario("stale-read-seed7.yaml"));
    // stderr carries only kernel log lines (the sanitizer's DMA-SAN errors for this buggy driver)
    expect(err.split("\n").filter((l) => l !== "" && !/^\[\s*\d+\.\d{6}\] /.test(l))).toEqual([]);
    expect(code).toBe(0);
    expect(report.scenario).toBe("edu-stale-read");
    expect(report.machine).toBe("arm64-noncoherent");
    expect(report.seed).toBe(7);
    expect(report.checks.find((c) => c.name === "data-intact")).toMatchObject({ expected: false, actual: false });
  });

  it("gives the same report as the equivalent command line", async () => {
    const fromFile = await cli("run", scenario("stale-read-seed7.yaml"), "--json");
    const fromFlags = await cli("run", "edu-stale-read", "--machine", "arm64-noncoherent", "--seed", "7", "--json");
    expect(fromFile.out).toBe(fromFlags.out);
  });

  it("--seed on the command line overrides the file's seed", async () => {
    const { code, report } = await cliJson("run", scenario("stale-read-seed7.yaml"), "--seed", "9");
    expect(code).toBe(0);
    expect(report.seed).toBe(9);
  });

  it("--machine on the command line overrides the file's machine", async () => {
    const { code, report } = await cliJson("run", scenario("stale-read-seed7.yaml"), "--machine", "x86-coherent");
    expect(code).toBe(0);
    expect(report.machine).toBe("x86-coherent");
    expect(report.seed).toBe(7);
    expect(report.checks.find((c) => c.name === "data-intact")).toMatchObject({ expected: true, actual: true });
  });

  it("an inline machine description works", async () => {
    const { code, report } = await cliJson("run", scenario("inline-machine.yaml"));
    expect(code).toBe(0);
    expect(report.machine).toBe("inline-intx");
    expect(report.seed).toBe(3);
    expect(report.stats.cpuBusyNs).toHaveLength(4);
    expect(report.results["irq-mode"]).toBe("INTx");
  });

  it("a JSON scenario file works", async () => {
    const { code, report } = await cliJson("run", scenario("stale-read-x86.json"));
    expect(code).toBe(0);
    expect([report.scenario, report.machine, report.seed]).toEqual(["edu-stale-read", "x86-coherent", 9]);
  });
});

describe("bad scenario files exit 2, naming the field and its line", () => {
  async function bad(file: string): Promise<{ f: string; line: string }> {
    const f = scenario(file);
    const { code, out, err } = await cli("run", f);
    expect(code).toBe(2);
    expect(out).toBe("");
    const lines = err.trimEnd().split("\n");
    expect(lines, err).toHaveLength(1);
    expect(lines[0]).toMatch(/^dmasim: /);
    return { f, line: lines[0]! };
  }

  it("unknown profile", async () => {
    const { f, line } = await bad("bad-unknown-profile.yaml");
    expect(line).toMatch(configErrorLine(f, 4, "machine"));
    expect(line).toMatch(/unknown machine profile "riscv-coherent"/);
  });

  it("wrong type", async () => {
    const { f, line } = await bad("bad-wrong-type.yaml");
    expect(line).toMatch(configErrorLine(f, 4, "seed"));
  });

  it("unknown key: exit 2 and the key is named", async () => {
    const { line } = await bad("bad-unknown-key.yaml");
    expect(line).toContain('"sed"');
  });

  // Regression test for a bug these tests found (fixed).
  it("unknown key: the message points at the key's own line and names it as the field", async () => {
    const { f, line } = await bad("bad-unknown-key.yaml");
    expect(line).toMatch(configErrorLine(f, 4, "sed"));
  });

  it("an inline machine with an unknown device model: exit 2 and the field is named", async () => {
    const { line } = await bad("bad-inline-machine.yaml");
    expect(line).toMatch(/pci\.devices\[0\]\.model: unknown device model "e1000"/);
  });

  // Regression test for a bug these tests found (fixed).
  it("an inline machine error carries its line in the scenario file", async () => {
    const { f, line } = await bad("bad-inline-machine.yaml");
    expect(line).toMatch(configErrorLine(f, 12, "machine.pci.devices[0].model"));
  });

  it("unknown scenario name in a file: exit 2 naming the scenario", async () => {
    const { line } = await bad("bad-unknown-scenario.yaml");
    expect(line).toMatch(/unknown scenario "nosuch"/);
  });

  // Regression test for a bug these tests found (fixed).
  it("unknown scenario name in a file: the message names the file, the field and the line", async () => {
    const { f, line } = await bad("bad-unknown-scenario.yaml");
    expect(line).toMatch(configErrorLine(f, 2, "scenario"));
  });

  it("a missing scenario file: exit 2 naming the file", async () => {
    const { code, out, err } = await cli("run", "no/such/scenario.yaml");
    expect(code).toBe(2);
    expect(out).toBe("");
    expect(err).toMatch(/cannot read no\/such\/scenario\.yaml/);
  });
});
