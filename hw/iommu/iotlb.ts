/**
 * The IOTLB (SPEC.md section 4.4): a set-associative cache of translations tagged by
 * (domain id, IOVA page), LRU within a set.
 *
 * 4 KiB and 2 MiB entries share the sets; a 2 MiB entry is filed under its 2 MiB frame number,
 * so a lookup probes two sets (one per page size). Entries leave only through `invalidate*`:
 * nothing here ever looks at the page tables, which is the point.
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

  constructor(
    readonly entries: number,
    readonly ways: number,
  ) {
    if (!(Number.isInteger(entries) && Number.isInteger(ways) && entries > 0 && ways > 0 && entries % ways === 0)) {
      throw new RangeError(`iotlb: entries (${entries}) must be a positive multiple of ways (${ways})`);
    }
    this.sets = entries / ways;
    this.slots = Array.from({ length: entries }, () => ({ valid: false, lru: 0, did: 0, vpn: 0, shift: 12, phys: 0, canRead: false, canWrite: false }));
  }

  /** The cached translation covering `iova` in domain `did`, or null. Updates LRU on a hit. */
  lookup(did: number, iova: number): IotlbEntry | null {
    return this.probe(did, iova, 12) ?? this.probe(did, iova, 21);
  }

  /** File a successful walk; evicts the least recently used way of the set when full. */
  insert(e: IotlbEntry): void {
    const base = this.setOf(e.did, e.vpn, e.shift) * this.ways;
    let victim = base;
    for (let i = base; i < base + this.ways; i++) {
      const s = this.slots[i]!;
      if (s.valid && s.did === e.did && s.vpn === e.vpn && s.shift === e.shift) {
        victim = i;
        break;
      }
      if (!s.valid) {
        victim = i;
        break;
      }
      if (s.lru < this.slots[victim]!.lru) victim = i;
    }
    Object.assign(this.slots[victim]!, e, { valid: true, lru: ++this.clock });
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
    const vpn = Math.floor(iova / 2 ** shift);
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
    const lo = vpn % 0x100000000 >>> 0;
    const h = (lo ^ Math.imul(did + 1, 0x9e3779b1) ^ (shift === 21 ? 0x5bd1e995 : 0)) >>> 0;
    return h % this.sets;
  }

  private drop(pred: (s: Slot) => boolean): number {
    let n = 0;
    for (const s of this.slots) {
      if (s.valid && pred(s)) {
        s.valid = false;
        n++;
      }
    }
    return n;
  }
}
