/**
 * The one dependency rule of DESIGN.md, enforced:
 *   hw/       imports hw/ only
 *   kernel/   imports kernel/; only kernel/platform/ may import hw/
 *   drivers/  imports only kernel/include/ (and its own folder)
 * plus no host time or host randomness in hw/, kernel/ or drivers/.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const p = join(dir, name);
    if (statSync(join(ROOT, p)).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith(".ts")) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const src = readFileSync(join(ROOT, file), "utf8");
  const specs: string[] = [];
  for (const m of src.matchAll(/(?:import|export)\s[^'"]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
    specs.push(m[1] ?? m[2]);
  }
  return specs;
}

/** Path of a relative import, from the repository root; null for packages. */
function target(file: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  return relative(ROOT, resolve(ROOT, dirname(file), spec));
}

function violations(layer: string, allowed: (file: string, to: string) => boolean, allowPackages: (spec: string) => boolean): string[] {
  const bad: string[] = [];
  for (const f of tsFiles(layer)) {
    for (const spec of imports(f)) {
      const to = target(f, spec);
      if (to === null ? !allowPackages(spec) : !allowed(f, to)) bad.push(`${f} -> ${spec}`);
    }
  }
  return bad;
}

describe("layer rule", () => {
  it("hw/ imports only hw/", () => {
    expect(violations("hw", (_f, to) => to.startsWith("hw/"), (s) => s === "zod" || s === "yaml")).toEqual([]);
  });

  it("kernel/ imports only kernel/, and only kernel/platform/ reaches hw/", () => {
    const bad = violations(
      "kernel",
      (f, to) => to.startsWith("kernel/") || (to.startsWith("hw/") && f.startsWith("kernel/platform/")),
      (s) => s === "pino" || s === "node:stream",
    );
    expect(bad).toEqual([]);
  });

  it("drivers/ import only kernel/include/ and their own folder", () => {
    const bad = violations(
      "drivers",
      (f, to) => to.startsWith("kernel/include/") || to.startsWith(dirname(f)) || to === "drivers/index.ts",
      () => false,
    );
    expect(bad).toEqual([]);
  });

  it("hw/, kernel/ and drivers/ never read host time or host randomness", () => {
    const forbidden = /\b(Date\.now|new Date\b|Math\.random|setTimeout|setInterval|setImmediate|performance\.now|process\.hrtime)/;
    const bad: string[] = [];
    for (const layer of ["hw", "kernel", "drivers"]) {
      for (const f of tsFiles(layer)) {
        const src = readFileSync(join(ROOT, f), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
        const m = forbidden.exec(src);
        if (m) bad.push(`${f}: ${m[0]}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("finds the files it checks (the rule is not vacuous)", () => {
    expect(tsFiles("hw").length).toBeGreaterThan(5);
    expect(tsFiles("kernel").length).toBeGreaterThan(5);
  });
});
