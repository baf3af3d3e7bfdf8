/**
 * Loading machine descriptions: YAML or JSON text (JSON is a subset of YAML 1.2, so one parser
 * serves both) or an already-built object, validated by `machineSchema`.
 *
 * Every problem becomes one line of a `MachineConfigError`, `file:line:col: field.path: message`,
 * so the CLI can print it as is and exit 2. Line numbers come from the YAML document itself:
 * the parsed JS object has lost them, so each zod issue path is walked back through the
 * document's nodes. hw/ never touches the file system; the caller passes the text.
 */

import { z } from "zod";
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import { describeValue, machineSchema } from "./schema.ts";
import type { MachineDesc } from "./schema.ts";

export interface MachineIssue {
  /** Dotted field path with [i] indexes ("pci.devices[0].irq"); "" for the whole file. */
  path: string;
  message: string;
  line?: number;
  column?: number;
}

/** A bad machine description (a user's configuration error: the CLI exits 2). */
export class MachineConfigError extends Error {
  readonly issues: MachineIssue[];
  readonly source: string;

  constructor(source: string, issues: MachineIssue[]) {
    super(issues.map((i) => formatIssue(source, i)).join("\n"));
    this.name = "MachineConfigError";
    this.source = source;
    this.issues = issues;
  }
}

type Path = readonly PropertyKey[];

export function formatPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function formatIssue(source: string, i: MachineIssue): string {
  const where = i.line === undefined ? source : `${source}:${i.line}:${i.column ?? 1}`;
  return i.path === "" ? `${where}: ${i.message}` : `${where}: ${i.path}: ${i.message}`;
}

// ---- messages for the issues the schema does not word itself ----

const TYPE_NAMES: Record<string, string> = {
  object: "an object (key: value pairs)", array: "a list", string: "a string",
  number: "a number", int: "an integer", boolean: "true or false",
};

/** Closest allowed key by edit distance, to turn "sise" into "did you mean size?". */
function closest(key: string, allowed: string[]): string | undefined {
  const dist = (a: string, b: string) => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const cur = [i];
      for (let j = 1; j <= b.length; j++) {
        cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      }
      prev = cur;
    }
    return prev[b.length]!;
  };
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const a of allowed) {
    const d = dist(key.toLowerCase(), a.toLowerCase());
    if (d < bestD) [best, bestD] = [a, d];
  }
  return best;
}

/** Keys a strict object accepts, read from the schema instance zod hands the error map. */
function allowedKeys(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

/** Carried through zod's message for unrecognized_keys, split per key in `toIssues`. */
const ALLOWED_PREFIX = "allowed keys: ";

const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case "invalid_type":
      if (iss.input === undefined) return `required field is missing; expected ${TYPE_NAMES[iss.expected] ?? iss.expected}`;
      return `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}, found ${describeValue(iss.input)}`;
    case "invalid_value": {
      const want = iss.values.map((v) => JSON.stringify(v)).join(" or ");
      return iss.input === undefined ? `required field is missing; expected ${want}` : `expected ${want}, found ${describeValue(iss.input)}`;
    }
    case "unrecognized_keys":
      return ALLOWED_PREFIX + allowedKeys(iss.inst).join(", ");
    case "too_small":
      if (iss.origin === "string") return `expected a non-empty string, found ${describeValue(iss.input)}`;
      return undefined;
    default:
      return undefined;
  }
};

// ---- mapping paths back to YAML positions ----

interface Located { line: number; column: number }

/**
 * Position for a path: the value's node when it exists; for a missing key, the key that
 * introduces the parent object (or the parent itself inside a list, or the first key at the
 * top level); for an unknown key (`atKey`), the key itself.
 */
function locate(doc: Document, lc: LineCounter, path: Path, atKey: boolean): Located | undefined {
  const pos = (n: unknown): Located | undefined => {
    const offset = (n as YamlNode | null | undefined)?.range?.[0];
    if (offset === undefined) return undefined;
    const p = lc.linePos(offset);
    return { line: p.line, column: p.col };
  };
  let node: unknown = doc.contents;
  let anchor: unknown = node; // where the current node is best pointed at
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    let child: unknown;
    let keyNode: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) return pos(anchor);
      [child, keyNode] = [pair.value, pair.key];
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      child = node.items[seg];
    } else return pos(anchor);
    if (i === path.length - 1) return pos(atKey && keyNode ? keyNode : (child ?? keyNode));
    if (child == null) return pos(keyNode ?? anchor);
    node = child;
    anchor = keyNode ?? child;
  }
  return pos(anchor);
}

// ---- validation ----

type Locator = (path: Path, atKey: boolean) => Located | undefined;

function toIssues(error: z.ZodError, locator?: Locator): MachineIssue[] {
  const out: MachineIssue[] = [];
  const push = (path: Path, message: string, atKey: boolean) => {
    out.push({ path: formatPath(path), message, ...locator?.(path, atKey) });
  };
  for (const iss of error.issues) {
    if (iss.code === "unrecognized_keys") {
      const allowed = iss.message.startsWith(ALLOWED_PREFIX) ? iss.message.slice(ALLOWED_PREFIX.length).split(", ") : [];
      for (const key of iss.keys) {
        const guess = closest(key, allowed);
        const hint = guess ? `; did you mean "${guess}"?` : allowed.length ? ` (allowed: ${allowed.join(", ")})` : "";
        push([...iss.path, key], `unknown key "${key}"${hint}`, true);
      }
    } else push(iss.path, iss.message, false);
  }
  // Report in file order; zod's order (fields first, cross-field rules last) is arbitrary to a reader.
  return out
    .map((i, n) => ({ i, n }))
    .sort((a, b) => (a.i.line ?? Infinity) - (b.i.line ?? Infinity) || (a.i.column ?? 0) - (b.i.column ?? 0) || a.n - b.n)
    .map(({ i }) => i);
}

function validate(obj: unknown, source: string, locator?: Locator): MachineDesc {
  const r = machineSchema.safeParse(obj, { error: errorMap });
  if (!r.success) throw new MachineConfigError(source, toIssues(r.error, locator));
  return r.data;
}

/** A parsed YAML/JSON text with what is needed to point messages at lines. */
export interface YamlText {
  readonly doc: Document;
  readonly lc: LineCounter;
  readonly value: unknown;
}

/** Parse YAML or JSON text; syntax errors and empty files throw MachineConfigError with lines. */
export function parseYamlText(text: string, fileName: string, what: string): YamlText {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new MachineConfigError(fileName, doc.errors.map((e) => {
      const pos = lc.linePos(e.pos[0]);
      return { path: "", message: `YAML syntax error: ${e.message.split("\n")[0]}`, line: pos.line, column: pos.col };
    }));
  }
  if (doc.contents === null) throw new MachineConfigError(fileName, [{ path: "", message: `the file is empty; expected ${what}` }]);
  return { doc, lc, value: doc.toJS() };
}

/**
 * Validate `obj` against any zod schema, pointing each issue at its line in `src`. `at` is
 * where `obj` sits inside the document (e.g. ["machine"] for a machine nested in a scenario
 * file); paths in messages include it. Throws MachineConfigError.
 */
export function validateAt<T>(schema: z.ZodType<T>, obj: unknown, fileName: string, src: YamlText, at: Path = []): T {
  const r = schema.safeParse(obj, { error: errorMap });
  if (r.success) return r.data;
  const issues = toIssues(r.error, (path, atKey) => locate(src.doc, src.lc, [...at, ...path], atKey));
  const prefix = formatPath(at);
  throw new MachineConfigError(fileName, issues.map((i) => ({ ...i, path: prefix && i.path ? `${prefix}.${i.path}` : prefix || i.path })));
}

/** Validate a machine description found at `at` inside a parsed file. */
export function parseMachineAt(obj: unknown, fileName: string, src: YamlText, at: Path): MachineDesc {
  return validateAt(machineSchema, obj, fileName, src, at);
}

/**
 * Validates an object (e.g. a built-in profile, or JSON already parsed by a caller).
 * `source` names it in messages. Throws MachineConfigError.
 */
export function parseMachineObject(obj: unknown, source: string): MachineDesc {
  return validate(obj, source);
}

/** Parses and validates YAML or JSON text. `fileName` prefixes every message. Throws MachineConfigError. */
export function parseMachineText(text: string, fileName: string): MachineDesc {
  const src = parseYamlText(text, fileName, "a machine description (an object with name, arch, memory ...)");
  return validateAt(machineSchema, src.value, fileName, src);
}
