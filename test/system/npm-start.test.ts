/**
 * `npm start` (cli/demo.ts) as a user runs it: a child process that prints the summary of the
 * six demo runs (edu and edu-stale-read on both plain machines, the rogue device without and
 * with an IOMMU) and "6/6", exit code 0.
 */

import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../fixtures/cli.ts";

describe("npm start", () => {
  it("runs the six demo scenarios, all showing what they claim", () => {
    const r = spawnSync("npx", ["tsx", "cli/demo.ts"], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
    expect(r.error).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const out = r.stdout;
    for (const scenario of ["edu", "edu-stale-read"]) {
      for (const machine of ["x86-coherent", "arm64-noncoherent"]) {
        // The summary header of each run, and its verdict line at the end.
        expect(out).toContain(`${scenario} on ${machine} (seed 1): OK\n`);
        expect(out).toMatch(new RegExp(`^\\s+OK\\s+${scenario}\\s+${machine}\\s`, "m"));
      }
    }
    for (const machine of ["x86-coherent", "x86-iommu"]) expect(out).toContain(`iommu-rogue-device on ${machine} (seed 1): OK\n`);
    expect(out).toMatch(/6\/6 scenarios showed what they claim/);
    // The lesson of the demo: only the non-coherent machine with the missing sync reads stale data.
    expect(out).toMatch(/^\s+OK\s+edu-stale-read\s+arm64-noncoherent\s+data STALE/m);
    expect(out).toMatch(/^\s+OK\s+edu-stale-read\s+x86-coherent\s+data intact/m);
    // ...and only the machine without an IOMMU lets the rogue device read the secret.
    expect(out).toMatch(/^\s+OK\s+iommu-rogue-device\s+x86-coherent\s+secret LEAKED/m);
    expect(out).toMatch(/^\s+OK\s+iommu-rogue-device\s+x86-iommu\s+attack contained/m);
    expect(r.stderr).toBe("");
  }, 120_000);
});
