/**
 * One level of write-back cache that really holds data.
 *
 * Set-associative, 64-byte lines, a dirty bit per line and LRU replacement. Lines are keyed by
 * line number (physical address / 64). All state lives in typed arrays sized at construction,
 * so lookups and fills allocate nothing. This class knows nothing of coherence or of the levels
 * around it; `MemorySystem` moves lines between levels and memory.
 */

export const LINE_SHIFT = 6;
export const LINE_SIZE = 1 << LINE_SHIFT;

export const INVALID = 0;
export const CLEAN = 1;
export const DIRTY = 2;

export interface CacheGeometry {
  size: number;
  ways: number;
}

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

  constructor(
    readonly name: string,
    geom: CacheGeometry,
  ) {
    if (!Number.isInteger(geom.ways) || geom.ways < 1) throw new RangeError(`${name}: ways must be a positive integer, got ${geom.ways}`);
    const sets = geom.size / (geom.ways * LINE_SIZE);
    if (!Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0) {
      throw new RangeError(`${name}: size ${geom.size} with ${geom.ways} ways does not give a power-of-two set count`);
    }
    this.sets = sets;
    this.ways = geom.ways;
    const slots = sets * geom.ways;
    this.tags = new Float64Array(slots).fill(-1);
    this.state = new Uint8Array(slots);
    this.lru = new Float64Array(slots);
    this.data = new Uint8Array(slots * LINE_SIZE);
  }

  /** Slot holding `line`, or -1. */
  find(line: number): number {
    const base = (line % this.sets) * this.ways;
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
    const base = (line % this.sets) * this.ways;
    let best = base;
    for (let i = base, end = base + this.ways; i < end; i++) {
      if (this.state[i] === INVALID) return i;
      if (this.lru[i] < this.lru[best]) best = i;
    }
    return best;
  }

  /** Byte offset of a slot's data. */
  dataOffset(slot: number): number {
    return slot * LINE_SIZE;
  }

  /** Install `line` in `slot` (which the caller has emptied) with the given state. */
  install(slot: number, line: number, st: number): void {
    this.tags[slot] = line;
    this.state[slot] = st;
    this.validLines++;
    if (st === DIRTY) this.dirtyLines++;
    this.touch(slot);
  }

  setState(slot: number, st: number): void {
    const old = this.state[slot];
    if (old === st) return;
    if (old === DIRTY) this.dirtyLines--;
    if (st === DIRTY) this.dirtyLines++;
    if (old === INVALID) this.validLines++;
    if (st === INVALID) {
      this.validLines--;
      this.tags[slot] = -1;
    }
    this.state[slot] = st;
  }

  /** Drop a slot (its data is forgotten, dirty or not). */
  drop(slot: number): void {
    this.setState(slot, INVALID);
  }
}
