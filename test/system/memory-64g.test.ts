/**
 * A machine with 64 GiB of simulated RAM must not cost 64 GiB (or anything close): RAM is
 * backed lazily, so running edu on it stays within a small resident-set bound. The run happens
 * in a child process so the RSS measured is that run's alone. A memory bound, not a timing test.
 */

import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../fixtures/cli.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

interface Measured {
  rss: number;
  maxRss: number;
  heapUsed: number;
  ok: boolean;
  residentRamBytes: number;
  ramBytes: number;
}

describe("64 GiB machine", () => {
  it("runs edu with ok checks in under 200 MiB RSS", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "test/fixtures/scripts/run-64g.ts"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(r.error).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim().split("\n").pop()!) as Measured;
    console.log(
      `64 GiB machine: rss ${(m.rss / MiB).toFixed(1)} MiB, peak rss ${(m.maxRss / MiB).toFixed(1)} MiB, ` +
        `heap ${(m.heapUsed / MiB).toFixed(1)} MiB, resident simulated RAM ${m.residentRamBytes} bytes`,
    );
    expect(m.ok).toBe(true);
    expect(m.ramBytes).toBe(64 * GiB);
    expect(m.rss).toBeLessThan(200 * MiB);
    expect(m.maxRss).toBeLessThan(200 * MiB);
    // Only the pages the run touched are backed: a few pages, far below a megabyte.
    expect(m.residentRamBytes).toBeGreaterThan(0);
    expect(m.residentRamBytes).toBeLessThan(1 * MiB);
  }, 120_000);
});
