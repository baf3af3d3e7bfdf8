/**
 * The IOTLB (SPEC.md section 4.4): a set-associative cache of translations tagged by
 * (domain id, IOVA page), LRU within a set.
 *
 * 4 KiB and 2 MiB entries share the sets; a 2 MiB entry is filed under its 2 MiB frame number,
 * so a lookup probes two sets (one per page size; the second only while 2 MiB entries are
 * cached). Entries leave only through `invalidate*`: nothing here ever looks at the page
 * tables, which is the point. Lookups and inserts allocate nothing (one per DMA page).
 */

export interface IotlbEntry {
  did: number;
  /** IOVA >> shift. */
  vpn: number;
  /** 12 (4 KiB) or 21 (2 MiB). */
  shift: number;
  /** Physical base of the page. */
  phys: number;
  canRead: boolean;
  canWrite: boolean;
}

interface Slot extends IotlbEntry {
  valid: boolean;
  lru: number;
}

export class Iotlb {
  readonly sets: number;
  private readonly slots: Slot[];
  private clock = 0;
  /** sets - 1 when the set count is a power of two (a mask instead of a division), else -1. */
  private readonly setMask: number;
  /** Valid 2 MiB entries: while 0, a lookup skips the 2 MiB probe. */
  private large = 0;

  constructor(
    readonly entries: number,
    readonly ways: number,
  ) {
    if (!(Number.isInteger(entries) && Number.isInteger(ways) && entries > 0 && ways > 0 && entries % ways === 0)) {
      throw new RangeError(`iotlb: entries (${entries}) must be a positive multiple of ways (${ways})`);
    }
    this.sets = entries / ways;
    this.setMask = (this.sets & (this.sets - 1)) === 0 ? this.sets - 1 : -1;
    this.slots = Array.from({ length: entries }, () => ({ valid: false, lru: 0, did: 0, vpn: 0, shift: 12, phys: 0, canRead: false, canWrite: false }));
  }

  /** The cached translation covering `iova` in domain `did`, or null. Updates LRU on a hit. */
  lookup(did: number, iova: number): IotlbEntry | null {
    const e = this.probe(did, iova, 12);
    return e !== null || this.large === 0 ? e : this.probe(did, iova, 21);
  }

  /** File a successful walk; evicts the least recently used way of the set when full. Returns the entry. */
  insert(did: number, vpn: number, shift: number, phys: number, canRead: boolean, canWrite: boolean): IotlbEntry {
    const base = this.setOf(did, vpn, shift) * this.ways;
    let victim = base;
    for (let i = base; i < base + this.ways; i++) {
      const s = this.slots[i]!;
      if (s.valid && s.did === did && s.vpn === vpn && s.shift === shift) {
        victim = i;
        break;
      }
      if (!s.valid) {
        victim = i;
        break;
      }
      if (s.lru < this.slots[victim]!.lru) victim = i;
    }
    const v = this.slots[victim]!;
    if (v.valid && v.shift === 21) this.large--;
    if (shift === 21) this.large++;
    v.valid = true;
    v.lru = ++this.clock;
    v.did = did;
    v.vpn = vpn;
    v.shift = shift;
    v.phys = phys;
    v.canRead = canRead;
    v.canWrite = canWrite;
    return v;
  }

  invalidateAll(): number {
    return this.drop(() => true);
  }

  invalidateDomain(did: number): number {
    return this.drop((s) => s.did === did);
  }

  /** Drop entries of `did` overlapping IOVA pages [firstPage, firstPage + pages) (4 KiB pages). */
  invalidateRange(did: number, firstPage: number, pages: number): number {
    const end = firstPage + pages;
    return this.drop((s) => {
      if (s.did !== did) return false;
      const span = 2 ** (s.shift - 12);
      const start = s.vpn * span;
      return start < end && firstPage < start + span;
    });
  }

  /** Valid entries (for tests and reports). */
  get occupancy(): number {
    return this.slots.reduce((n, s) => n + (s.valid ? 1 : 0), 0);
  }

  private probe(did: number, iova: number, shift: number): IotlbEntry | null {
    const vpn = Math.floor(iova / (shift === 12 ? 4096 : 2097152)); // (no `**`: a Math.pow call per DMA page)
    const base = this.setOf(did, vpn, shift) * this.ways;
    for (let i = base; i < base + this.ways; i++) {
      const s = this.slots[i]!;
      if (s.valid && s.shift === shift && s.did === did && s.vpn === vpn) {
        s.lru = ++this.clock;
        return s;
      }
    }
    return null;
  }

  private setOf(did: number, vpn: number, shift: number): number {
    // Mix the domain in so two domains using the same IOVAs do not fight over one set.
    // (`>>> 0` is the low 32 bits of any integer below 2^53; no `%`, a slow call on doubles)
    const h = (vpn >>> 0) ^ Math.imul(did + 1, 0x9e3779b1) ^ (shift === 21 ? 0x5bd1e995 : 0);
    return this.setMask >= 0 ? (h >>> 1) & this.setMask : (h >>> 1) % this.sets;
  }

  private drop(pred: (s: Slot) => boolean): number {
    let n = 0;
    for (const s of this.slots) {
      if (s.valid && pred(s)) {
        s.valid = false;
        if (s.shift === 21) this.large--;
        n++;
      }
    }
    return n;
  }
}

/**
 * The paging-structure cache (SPEC.md section 4.4): level-1 table addresses by (domain, 2 MiB
 * IOVA frame), with the permissions of the levels above, so an IOTLB miss under a known level-1
 * table costs one entry read instead of four. Direct-mapped, typed arrays, no allocation.
 * Invalidated with the IOTLB by every scope (a RANGE drops the frames it overlaps).
 */
export class PagingStructureCache {
  private readonly did: Int32Array;
  private readonly frame: Float64Array;
  private readonly table: Float64Array;
  private readonly perm: Uint8Array;
  private readonly mask: number;

  constructor(readonly entries: number) {
    this.did = new Int32Array(entries).fill(-1);
    this.frame = new Float64Array(entries);
    this.table = new Float64Array(entries);
    this.perm = new Uint8Array(entries);
    this.mask = entries - 1;
  }

  /** The level-1 table for (did, 2 MiB frame), or -1; `permOut[0]` gets bit 0 read, bit 1 write. */
  lookup(did: number, frame: number, permOut: Uint8Array): number {
    const i = this.index(did, frame);
    if (this.did[i] !== did || this.frame[i] !== frame) return -1;
    permOut[0] = this.perm[i]!;
    return this.table[i]!;
  }

  insert(did: number, frame: number, table: number, canRead: boolean, canWrite: boolean): void {
    const i = this.index(did, frame);
    this.did[i] = did;
    this.frame[i] = frame;
    this.table[i] = table;
    this.perm[i] = (canRead ? 1 : 0) | (canWrite ? 2 : 0);
  }

  invalidateAll(): void {
    this.did.fill(-1);
  }

  invalidateDomain(did: number): void {
    for (let i = 0; i <= this.mask; i++) if (this.did[i] === did) this.did[i] = -1;
  }

  /** Drop the frames of `did` overlapping 4 KiB pages [firstPage, firstPage + pages). */
  invalidateRange(did: number, firstPage: number, pages: number): void {
    const lo = Math.floor(firstPage / 512);
    const hi = Math.floor((firstPage + Math.max(pages, 1) - 1) / 512);
    for (let i = 0; i <= this.mask; i++) {
      if (this.did[i] === did && this.frame[i]! >= lo && this.frame[i]! <= hi) this.did[i] = -1;
    }
  }

  private index(did: number, frame: number): number {
    return ((frame % 0x100000000) ^ Math.imul(did + 1, 0x9e3779b1)) & this.mask;
  }
}
