/**
 * One level of write-back cache that really holds data.
 *
 * Set-associative, 64-byte lines, a dirty bit per line and LRU replacement. Lines are keyed by
 * line number (physical address / 64). All state lives in typed arrays sized at construction,
 * so lookups and fills allocate nothing. This class knows nothing of coherence or of the levels
 * around it; `MemorySystem` moves lines between levels and memory.
 */

// The sizes as module-private constants, exported below under their names. V8 keeps an
// exported binding in a cell that even this module loads and hole-checks at every use, so
// `line / LINES_PER_PAGE` in pageBucket was a real integer division on every cache access and
// maintenance walk; a private const folds into a shift or a multiplication.
const SHIFT = 6;
const LINE = 1 << SHIFT;
const PAGE_LINES = 4096 / LINE;
const BUCKETS = 4096;

export const LINE_SHIFT = SHIFT;
export const LINE_SIZE = LINE;

/** Lines per 4 KiB page. */
export const LINES_PER_PAGE = PAGE_LINES;
/** Page residency buckets per level (a power of two). */
export const PAGE_BUCKETS = BUCKETS;

/**
 * The residency bucket of `line`'s page. Pages 4096 apart share a bucket, so a zero count is
 * exact (no line of the page is held) and a non-zero one only says "maybe".
 */
export function pageBucket(line: number): number {
  return (line / PAGE_LINES) & (BUCKETS - 1); // ToInt32 truncates: floor for line >= 0
}

export const INVALID = 0;
export const CLEAN = 1;
export const DIRTY = 2;

export interface CacheGeometry {
  size: number;
  ways: number;
}

/**
 * Valid and dirty lines per page bucket summed over several levels (a memory system's whole
 * hierarchy): one read answers "may any level hold a line of this page?", which the per-page
 * skip of maintenance walks and device snoops asks for every page they cover.
 */
export class PageResidency {
  readonly valid = new Uint32Array(BUCKETS);
  readonly dirty = new Uint32Array(BUCKETS);
  /** Dirty lines over every level: 0 answers "is this range dirty?" without a bucket read. */
  dirtyLines = 0;
}

/** A residency no one reads: levels built alone (tests) count into it. */
const UNSHARED = (): PageResidency => new PageResidency();

export class CacheLevel {
  readonly sets: number;
  readonly ways: number;
  /** Line number held by each slot (slot = set * ways + way); -1 when invalid. */
  readonly tags: Float64Array;
  readonly state: Uint8Array;
  readonly lru: Float64Array;
  readonly data: Uint8Array;
  private stamp = 0;
  dirtyLines = 0;
  validLines = 0;
  /**
   * Valid and dirty lines per page bucket (pageBucket): lets range walks (cache maintenance,
   * snooping device accesses) skip a page none of whose lines is held in O(1), instead of
   * looking up its 64 lines one by one.
   */
  readonly pageValid = new Uint32Array(BUCKETS);
  readonly pageDirty = new Uint32Array(BUCKETS);

  /** The hierarchy-wide counts this level adds its own to. */
  readonly total: PageResidency;

  constructor(
    readonly name: string,
    geom: CacheGeometry,
    total: PageResidency = UNSHARED(),
  ) {
    this.total = total;
    if (!Number.isInteger(geom.ways) || geom.ways < 1) throw new RangeError(`${name}: ways must be a positive integer, got ${geom.ways}`);
    const sets = geom.size / (geom.ways * LINE);
    if (!Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0) {
      throw new RangeError(`${name}: size ${geom.size} with ${geom.ways} ways does not give a power-of-two set count`);
    }
    this.sets = sets;
    this.ways = geom.ways;
    const slots = sets * geom.ways;
    this.tags = new Float64Array(slots).fill(-1);
    this.state = new Uint8Array(slots);
    this.lru = new Float64Array(slots);
    this.data = new Uint8Array(slots * LINE);
  }

  /** Slot holding `line`, or -1. */
  find(line: number): number {
    const base = (line & (this.sets - 1)) * this.ways; // sets is a power of two; `%` on a double is slow
    const tags = this.tags;
    for (let i = base, end = base + this.ways; i < end; i++) {
      if (tags[i] === line) return i;
    }
    return -1;
  }

  /** Mark a slot most recently used. */
  touch(slot: number): void {
    this.lru[slot] = ++this.stamp;
  }

  /** The slot to fill for `line`: an invalid way if any, else the least recently used. */
  victimFor(line: number): number {
    const base = (line & (this.sets - 1)) * this.ways;
    let best = base;
    for (let i = base, end = base + this.ways; i < end; i++) {
      if (this.state[i] === INVALID) return i;
      if (this.lru[i] < this.lru[best]) best = i;
    }
    return best;
  }

  /** Byte offset of a slot's data. */
  dataOffset(slot: number): number {
    return slot * LINE;
  }

  /** Install `line` in `slot` (which the caller has emptied) with the given state. */
  install(slot: number, line: number, st: number): void {
    this.tags[slot] = line;
    this.state[slot] = st;
    this.validLines++;
    const b = pageBucket(line);
    this.pageValid[b]++;
    this.total.valid[b]++;
    if (st === DIRTY) {
      this.dirtyLines++;
      this.pageDirty[b]++;
      this.total.dirty[b]++;
      this.total.dirtyLines++;
    }
    this.touch(slot);
  }

  setState(slot: number, st: number): void {
    const old = this.state[slot];
    if (old === st) return;
    // an INVALID slot's tag is -1: a slot only becomes valid through install()
    const b = pageBucket(this.tags[slot]);
    const total = this.total;
    if (old === DIRTY) {
      this.dirtyLines--;
      this.pageDirty[b]--;
      total.dirty[b]--;
      total.dirtyLines--;
    }
    if (st === DIRTY) {
      this.dirtyLines++;
      this.pageDirty[b]++;
      total.dirty[b]++;
      total.dirtyLines++;
    }
    if (old === INVALID) {
      this.validLines++;
      this.pageValid[b]++;
      total.valid[b]++;
    }
    if (st === INVALID) {
      this.validLines--;
      this.pageValid[b]--;
      total.valid[b]--;
      this.tags[slot] = -1;
    }
    this.state[slot] = st;
  }

  /** May this level hold a line of the page of `line` (a dirty one, if `dirty`)? False is exact. */
  pageMayHold(line: number, dirty: boolean): boolean {
    return (dirty ? this.pageDirty : this.pageValid)[pageBucket(line)] !== 0;
  }

  /** Drop a slot (its data is forgotten, dirty or not). */
  drop(slot: number): void {
    this.setState(slot, INVALID);
  }
}
