/**
 * dma-debug history notes, formatted only when someone reads them.
 *
 * Every map, unmap and sync appends a note to its entry's history, but the text is needed only
 * when a finding is reported or a test looks: a mapping that is made and torn down correctly
 * never has its history read. So a note stores the call's numbers and builds `op` and `detail`
 * on first read (then keeps them). It serialises (toJSON) exactly as the plain
 * `{timeNs, op, detail}` object it replaces, and findings get plain copies (dma_history_copy),
 * so reports and traces are byte for byte what they were.
 */

import type { FindingHistoryEntry } from "../core/findings.ts";
import { dma_dir_name, dma_fmt_addr } from "./defs.ts";

/** How a note's detail reads; `a`..`d` are the numbers the call stored. */
const NoteKind = {
  /** "dev_addr=<a> size=<b> dir=<c>" (map, alloc) */
  Map: 0,
  /** "size=<a> dir=<b>" (unmap) */
  Unmap: 1,
  /** "size=<a>" (free) */
  Free: 2,
  /** "addr=<a> size=<b> dir=<c>" (sync) */
  Sync: 3,
  /** "nents=<a> size=<b> dir=<c>" (sg unmap) */
  SgUnmap: 4,
  /** "nents=<a> addr=<b> size=<c> dir=<d>" (sg sync) */
  SgSync: 5,
} as const;
type NoteKind = (typeof NoteKind)[keyof typeof NoteKind];

export class DmaHistoryNote implements FindingHistoryEntry {
  private opText: string | null = null;
  private detailText: string | null = null;

  constructor(
    readonly timeNs: number,
    private readonly opName: string,
    /** sg segment index for "op[i/nents]", or -1 for a plain op. */
    private readonly seg: number,
    private readonly segs: number,
    private readonly kind: NoteKind,
    private readonly a: number,
    private readonly b: number,
    private readonly c: number,
    private readonly d: number,
  ) {}

  get op(): string {
    return (this.opText ??= this.seg < 0 ? this.opName : `${this.opName}[${this.seg}/${this.segs}]`);
  }

  get detail(): string {
    return (this.detailText ??= this.format());
  }

  private format(): string {
    const { a, b, c, d } = this;
    switch (this.kind) {
      case NoteKind.Map:
        return `dev_addr=${dma_fmt_addr(a)} size=${b} dir=${dma_dir_name(c)}`;
      case NoteKind.Unmap:
        return `size=${a} dir=${dma_dir_name(b)}`;
      case NoteKind.Free:
        return `size=${a}`;
      case NoteKind.Sync:
        return `addr=${dma_fmt_addr(a)} size=${b} dir=${dma_dir_name(c)}`;
      case NoteKind.SgUnmap:
        return `nents=${a} size=${b} dir=${dma_dir_name(c)}`;
      case NoteKind.SgSync:
        return `nents=${a} addr=${dma_fmt_addr(b)} size=${c} dir=${dma_dir_name(d)}`;
    }
  }

  /** Is this the note note_sg_unmap(timeNs, @op, @nents, @size, @dir) would make (timeNs aside)? */
  sameSgUnmap(op: string, nents: number, size: number, dir: number): boolean {
    return this.kind === NoteKind.SgUnmap && this.opName === op && this.a === nents && this.b === size && this.c === dir;
  }

  /**
   * Did this call hand bus addresses [lo, hi) to the device? A dma_map_* call did (all of its
   * mapping); a sync for the device did if its range held them.
   */
  handsToDevice(lo: number, hi: number): boolean {
    switch (this.kind) {
      case NoteKind.Map:
        return this.opName.startsWith("dma_map_");
      case NoteKind.Sync:
        return this.opName.includes("for_device") && this.a <= lo && hi <= this.a + this.b;
      case NoteKind.SgSync:
        return this.opName.includes("for_device") && this.b <= lo && hi <= this.b + this.c;
      default:
        return false;
    }
  }

  toJSON(): FindingHistoryEntry {
    return { timeNs: this.timeNs, op: this.op, detail: this.detail };
  }
}

/** A map or allocation: op, or op[seg/segs] for an sg segment (seg -1: none). */
export function note_map(timeNs: number, op: string, seg: number, segs: number, dev_addr: number, size: number, dir: number): DmaHistoryNote {
  return new DmaHistoryNote(timeNs, op, seg, segs, NoteKind.Map, dev_addr, size, dir, 0);
}

/** A streaming unmap. */
export function note_unmap(timeNs: number, op: string, size: number, dir: number): DmaHistoryNote {
  return new DmaHistoryNote(timeNs, op, -1, 0, NoteKind.Unmap, size, dir, 0, 0);
}

/** A free of an allocation. */
export function note_free(timeNs: number, op: string, size: number): DmaHistoryNote {
  return new DmaHistoryNote(timeNs, op, -1, 0, NoteKind.Free, size, 0, 0, 0);
}

/** A single sync. */
export function note_sync(timeNs: number, op: string, addr: number, size: number, dir: number): DmaHistoryNote {
  return new DmaHistoryNote(timeNs, op, -1, 0, NoteKind.Sync, addr, size, dir, 0);
}

/** One segment of an sg unmap. */
export function note_sg_unmap(timeNs: number, op: string, nents: number, size: number, dir: number): DmaHistoryNote {
  return new DmaHistoryNote(timeNs, op, -1, 0, NoteKind.SgUnmap, nents, size, dir, 0);
}

/** One segment of an sg sync. */
export function note_sg_sync(timeNs: number, op: string, nents: number, addr: number, size: number, dir: number): DmaHistoryNote {
  return new DmaHistoryNote(timeNs, op, -1, 0, NoteKind.SgSync, nents, addr, size, dir);
}

/**
 * dma_history_hands_to_device - did history note @n hand bus addresses [@lo, @hi) to the
 * device (a map, or a sync for the device whose range held them)? A plain note (not made
 * here) is judged by its call's name alone.
 */
export function dma_history_hands_to_device(n: FindingHistoryEntry, lo: number, hi: number): boolean {
  if (n instanceof DmaHistoryNote) return n.handsToDevice(lo, hi);
  return n.op.includes("for_device") || n.op.startsWith("dma_map_");
}

/**
 * dma_history_copy - plain `{timeNs, op, detail}` copies of a history, for a finding (which
 * outlives the entry and is compared, cloned and serialised as plain data).
 */
export function dma_history_copy(history: readonly FindingHistoryEntry[]): FindingHistoryEntry[] {
  const out: FindingHistoryEntry[] = new Array(history.length);
  for (let i = 0; i < history.length; i++) {
    const h = history[i];
    out[i] = { timeNs: h.timeNs, op: h.op, detail: h.detail };
  }
  return out;
}
