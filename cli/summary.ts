/** The human-readable run summary (what `dmasim run` prints without --json). */
import type { RunReport } from "../sim/report.ts";

function us(ns: number): string {
  return `${(ns / 1000).toFixed(3)} us`;
}

const SHOWN_PER_KIND = 5;

export function formatSummary(r: RunReport): string {
  const lines: string[] = [];
  lines.push(`${r.scenario} on ${r.machine} (seed ${r.seed}): ${r.ok ? "OK" : "FAILED"}`);
  lines.push(`  claim: ${r.claim}`);
  const held = r.checks.filter((c) => c.ok).length;
  lines.push(`  checks: ${held}/${r.checks.length} hold`);
  for (const c of r.checks) {
    const mark = c.ok ? "ok  " : "FAIL";
    lines.push(`    ${mark} ${c.name}: ${JSON.stringify(c.actual)}${c.ok ? "" : ` (expected ${JSON.stringify(c.expected)})`}`);
  }
  const res = Object.entries(r.results);
  if (res.length) lines.push(`  results: ${res.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")}`);
  if (r.findings.length === 0) lines.push("  findings: none");
  else {
    lines.push(`  findings: ${r.findings.length}`);
    // A rogue device can fault thousands of times: show the first few of each kind; --json has all.
    const shown = new Map<string, number>();
    for (const f of r.findings) {
      const n = (shown.get(f.kind) ?? 0) + 1;
      shown.set(f.kind, n);
      if (n > SHOWN_PER_KIND) continue;
      // Checker messages carry their own "DMA-API: <driver> <device>: " prefix for dmesg; the
      // summary already names driver and device, so drop the repeat.
      const msg = f.message.replace(/^DMA-(API|SAN): \S+ \S+: /, "");
      lines.push(`    [${f.kind}] ${f.driver ? `${f.driver} ` : ""}${f.device ? `${f.device}: ` : ""}${msg}`);
      lines.push(`      fix: ${f.fix}`);
    }
    for (const [kind, n] of shown) {
      if (n > SHOWN_PER_KIND) lines.push(`    ... and ${n - SHOWN_PER_KIND} more [${kind}] (all of them in --json)`);
    }
  }
  if (r.guestErrors.length) {
    lines.push(`  guest errors: ${r.guestErrors.length}`);
    for (const g of r.guestErrors.slice(0, 10)) lines.push(`    ${g.device}: ${g.message}`);
  }
  const s = r.stats;
  const irqs = s.interrupts.map((i) => `${i.name || `irq ${i.irq}`} x${i.count}`).join(", ") || "none";
  lines.push(`  virtual time ${us(r.virtualTimeNs)}; CPU busy ${s.cpuBusyNs.map(us).join(" / ")}; DMA busy ${us(s.dmaBusyNs)}`);
  lines.push(`  interrupts: ${irqs}; DMA read ${s.dmaBytesRead} B, written ${s.dmaBytesWritten} B; MMIO ${s.mmioReads} reads, ${s.mmioWrites} writes`);
  if (s.iommu) {
    const io = s.iommu;
    const t = io.hw ?? {};
    lines.push(`  iommu (${io.policy}): ${t.translations ?? 0} translations, IOTLB ${t.hits ?? 0} hits / ${t.misses ?? 0} misses, ${t.walks ?? 0} walks (${t.walkReadBytes ?? 0} B of tables read), ${t.invalidations ?? 0} invalidations; ${io.faultsSeen} faults (${io.faultsDropped} dropped by the full fault log)`);
  }
  lines.push(`  cache: L1 ${s.cache.l1Hits} hits / ${s.cache.l1Misses} misses, ${s.cache.cleanedLines} lines cleaned, ${s.cache.invalidatedLines} invalidated, ${s.cache.writebacks} write-backs`);
  return lines.join("\n") + "\n";
}
