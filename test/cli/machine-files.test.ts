/**
 * `dmasim run --machine FILE`: custom machines in YAML and JSON run; bad ones exit 2 with one
 * `file:line:col: field.path: message` line on stderr and nothing on stdout.
 */

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli, cliJson, configErrorLine, fixture, tempDir } from "../fixtures/cli.ts";

const machine = (name: string): string => fixture("machines", name);

describe("good machine files", () => {
  it("a 4-CPU YAML machine with edu on INTx runs edu and reports the IRQ mode", async () => {
    const { code, report, err } = await cliJson("run", "edu", "--machine", machine("custom-intx.yaml"));
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(report.machine).toBe("custom-intx");
    expect(report.results["irq-mode"]).toBe("INTx");
    expect(report.stats.cpuBusyNs).toHaveLength(4);
    // INTx: the interrupt comes in on the machine's line 11, not on an MSI vector.
    expect(report.stats.interrupts.map((i) => i.irq)).toEqual([11]);
    expect(report.stats.interrupts[0]!.count).toBe(8);
  });

  it("the human summary shows the IRQ mode too", async () => {
    const { code, out } = await cli("run", "edu", "--machine", machine("custom-intx.yaml"));
    expect(code).toBe(0);
    expect(out).toContain('irq-mode="INTx"');
  });

  it("a JSON machine file works (arm64, MSI by default)", async () => {
    const { code, report } = await cliJson("run", "edu", "--machine", machine("custom-msi.json"));
    expect(code).toBe(0);
    expect(report.machine).toBe("json-machine");
    expect(report.results["irq-mode"]).toBe("MSI");
  });

  it("a machine file changes the outcome the way its coherence says (arm64 file: stale data)", async () => {
    const { code, report } = await cliJson("run", "edu-stale-read", "--machine", machine("custom-msi.json"));
    expect(code).toBe(0);
    expect(report.checks.find((c) => c.name === "data-intact")).toMatchObject({ expected: false, actual: false });
  });
});

describe("bad machine files exit 2, naming the field and its line", () => {
  // [fixture, line, field path, what the message says]
  const cases: [string, number, string, RegExp][] = [
    ["bad-unknown-key.yaml", 9, "memory.ram[0].nodee", /unknown key "nodee"; did you mean "node"\?/],
    ["bad-wrong-type.yaml", 4, "cpus.count", /expected an integer .*found "four"/],
    ["bad-negative-ram.yaml", 8, "memory.ram[0].size", /at least 4 KiB, found -4096/],
    ["bad-overlap-mmio.yaml", 9, "memory.ram[1].base", /overlaps PCI MMIO window/],
    ["bad-irq-twice.yaml", 13, "pci.devices[1].irq", /IRQ 11 is already claimed by pci\.devices\[0\]/],
    ["bad-unknown-model.yaml", 11, "pci.devices[0].model", /unknown device model "e1000"; known models: edu/],
    ["bad-yaml-syntax.yaml", 4, "", /YAML syntax error/],
    ["bad-json-type.json", 5, "memory.ram[0].size", /expected a size .*found true/],
  ];
  for (const [file, line, path, message] of cases) {
    it(`${file}: ${path || "(syntax)"} at line ${line}`, async () => {
      const f = machine(file);
      const { code, out, err } = await cli("run", "edu", "--machine", f);
      expect(code).toBe(2);
      expect(out).toBe("");
      const lines = err.trimEnd().split("\n");
      expect(lines, err).toHaveLength(1);
      expect(lines[0]).toMatch(/^dmasim: /);
      expect(lines[0]).toMatch(configErrorLine(f, line, path));
      expect(lines[0]).toMatch(message);
    });
  }

  it("a config error writes no trace file either", async () => {
    const t = tempDir();
    try {
      const { code } = await cli("run", "edu", "--machine", machine("bad-irq-twice.yaml"), "--trace", join(t.dir, "a.json"));
      expect(code).toBe(2);
      expect(readdirSync(t.dir)).toEqual([]);
    } finally {
      t.cleanup();
    }
  });
});
