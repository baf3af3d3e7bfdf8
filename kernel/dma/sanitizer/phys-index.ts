/**
 * Live streaming mappings by CPU physical address: what the sanitizer consults on every CPU
 * access while any mapping is live.
 *
 * A record covers its mapping's bytes and, for a mapping the device writes (FROM_DEVICE,
 * BIDIRECTIONAL), the rest of every cache-line granule the mapping touches inside the same
 * allocation: the bytes a CPU store must not dirty while the device owns the buffer (§5.3,
 * §5.4). Records may overlap (one buffer mapped twice, or for two devices). They are hashed by
 * first byte into address buckets (addr-buckets.ts: an add or remove is a hash probe, nothing
 * is kept sorted); a query walks the buckets its range and the longest record can reach, then
 * orders its few hits. Queries fill a reused array, so the hot path allocates nothing.
 * Indexing waits for the first query: records added meanwhile sit on a pending list, and an
 * entry whose record it alone determines gets its record only then (addLazy). A device's sg
 * list mapped, read by the device and unmapped with no CPU access in between costs a push
 * per segment, not a record and a hash insert and delete.
 */

import type { dma_debug_entry } from "../debug-entry.ts";
import { AddrBuckets, BIG_EXTENT, bucketOf, type AddrNode } from "../addr-buckets.ts";

export interface san_record {
  readonly e: dma_debug_entry;
  /** First byte a CPU store may not dirty while the device owns the mapping. */
  readonly lo: number;
  /** One past the last such byte. */
  readonly hi: number;
  /**
   * The CPU bytes of the mapping this record covers: [plo, plo + psize), at mapping offset
   * poff. One record per entry (plo = e.phys, poff 0) unless an IOMMU merged pages from several
   * places into one segment (cpu-pieces.ts): then one record per piece.
   */
  readonly plo: number;
  readonly psize: number;
  readonly poff: number;
  /** The entry's first record, which carries cpuWriteAt for all its pieces. */
  readonly main: san_record | null;
  /** The entry's further records (pieces), on its first record only; null: none. */
  more: san_record[] | null;
  /** Where the record is: PENDING (added, not indexed yet), INDEXED, or GONE (removed). */
  state: number;
  /**
   * e.history.length when the CPU last stored, without a cause, into the mapping's bytes it
   * owned or next to them in the granules of a device-written mapping (-1: never). Tells a
   * documented recycle (device reuses a buffer the CPU only read after sync_for_cpu) from a
   * missing sync_for_device.
   */
  cpuWriteAt: number;
}

/** san_record.state values. */
export const SAN_PENDING = 0;
export const SAN_INDEXED = 1;
export const SAN_GONE = 2;

/**
 * dma_debug_entry.san_rec of an entry added but whose record is not made yet: its record is
 * a pure function of the entry (no pieces, nothing to ask the slab), made when first needed.
 */
export const SAN_LAZY: object = Object.freeze({ lazy: true });

/** A pending item: a record, or an entry whose record is made when it is indexed. */
type pending_item = san_record | dma_debug_entry;
const isRecord = (x: pending_item): x is san_record => (x as san_record).main !== undefined;

export class PhysIndex {
  /** Records by first byte (extent: hi - lo). */
  private readonly recs = new AddrBuckets<san_record>();
  /**
   * Records added since the last query, in order, not indexed yet: a mapping made and undone
   * with no CPU access to memory in between (a device's sg list) costs a push and a flag,
   * not a hash insert and delete (nor, for a lazy entry, a record). Removed ones stay (state
   * GONE, or san_rec null) until the list is flushed or none of it is live.
   */
  private readonly pending: (pending_item | null)[] = [];
  /** Slots of `pending` in use (the array keeps its storage between batches). */
  private pendingLen = 0;
  private pendingLive = 0;
  /** Results of the last query (valid until the next one). */
  readonly hits: san_record[] = [];
  /** The hits' starts and insertion numbers, for ordering them. */
  private readonly hitLo: number[] = [];
  private readonly hitSeq: number[] = [];

  /** @makeRecord: the record of an entry added with addLazy. */
  constructor(private readonly makeRecord: (e: dma_debug_entry) => san_record) {}

  get count(): number {
    return this.recs.count + this.pendingLive;
  }

  add(r: san_record): void {
    r.state = SAN_PENDING;
    this.push(r);
  }

  /** Add @e, whose one record makeRecord will make when needed (e.san_rec = SAN_LAZY). */
  addLazy(e: dma_debug_entry): void {
    e.san_rec = SAN_LAZY;
    this.push(e);
  }

  private push(x: pending_item): void {
    // mostly removed already (long-lived mappings amid churn): drop the dead first
    if (this.pendingLen > 64 && this.pendingLen > 2 * this.pendingLive) this.compactPending();
    this.pending[this.pendingLen++] = x;
    this.pendingLive++;
  }

  /** The record of lazy entry @e, made now (it stays pending until the next query). */
  materialize(e: dma_debug_entry): san_record {
    const r = this.makeRecord(e);
    r.state = SAN_PENDING;
    e.san_rec = r;
    return r;
  }

  /** Remove lazy entry @e (added with addLazy, never materialized). */
  removeLazy(e: dma_debug_entry): void {
    e.san_rec = null;
    if (--this.pendingLive === 0) this.clearPending();
  }

  /** Is pending item @x still live, and its record (if made)? */
  private static pendingRecord(x: pending_item): san_record | typeof SAN_LAZY | null {
    if (isRecord(x)) return x.state === SAN_PENDING ? x : null;
    const s = x.san_rec;
    if (s === SAN_LAZY) return SAN_LAZY;
    const r = s as san_record | null | undefined;
    return r !== null && r !== undefined && r.state === SAN_PENDING ? r : null;
  }

  remove(r: san_record): void {
    if (r.state === SAN_INDEXED) this.recs.remove(r.lo, r);
    else if (r.state === SAN_PENDING && --this.pendingLive === 0) this.clearPending();
    r.state = SAN_GONE;
  }

  private clearPending(): void {
    this.pending.fill(null, 0, this.pendingLen);
    this.pendingLen = 0;
  }

  private compactPending(): void {
    const p = this.pending;
    let w = 0;
    for (let i = 0; i < this.pendingLen; i++) {
      const x = p[i]!;
      if (PhysIndex.pendingRecord(x) !== null) p[w++] = x;
    }
    p.fill(null, w, this.pendingLen);
    this.pendingLen = w;
  }

  /** Index the pending records, in the order they came. */
  private flush(): void {
    const p = this.pending;
    for (let i = 0; i < this.pendingLen; i++) {
      const x = p[i]!;
      const pr = PhysIndex.pendingRecord(x);
      if (pr === null) continue;
      const r = pr === SAN_LAZY ? this.materialize(x as dma_debug_entry) : (pr as san_record);
      r.state = SAN_INDEXED;
      this.recs.add(r.lo, r, r.hi - r.lo);
    }
    this.clearPending();
    this.pendingLive = 0;
  }

  /**
   * Records overlapping [a, b), into `hits`: in descending start order, the later added first
   * among records with the same start.
   * Returns: how many.
   */
  query(a: number, b: number): number {
    if (this.pendingLen !== 0) this.flush();
    this.hits.length = 0;
    this.hitLo.length = 0;
    this.hitSeq.length = 0;
    const recs = this.recs;
    for (let n = bucketOf(b - 1), last = recs.lowestBucketFor(a); n >= last; n--) {
      const bk = recs.bucket(n);
      if (bk !== undefined) this.collect(bk, a, b, false);
    }
    if (recs.bigHead !== null) this.collect(recs.bigHead, a, b, true);
    const hits = this.hits;
    const lo = this.hitLo;
    const seq = this.hitSeq;
    // insertion sort by (start desc, insertion desc): a handful of hits
    for (let i = 1; i < hits.length; i++) {
      const r = hits[i];
      const l = lo[i];
      const s = seq[i];
      let j = i - 1;
      while (j >= 0 && (lo[j] < l || (lo[j] === l && seq[j] < s))) {
        hits[j + 1] = hits[j];
        lo[j + 1] = lo[j];
        seq[j + 1] = seq[j];
        j--;
      }
      hits[j + 1] = r;
      lo[j + 1] = l;
      seq[j + 1] = s;
    }
    return hits.length;
  }

  private collect(head: AddrNode<san_record>, a: number, b: number, big: boolean): void {
    for (let x: AddrNode<san_record> | null = head; x !== null; x = big ? x.nextBig : x.next) {
      if (x.key > b - 1 || x.dead || (!big && x.ext > BIG_EXTENT)) continue;
      const r = x.item!;
      if (r.hi <= a) continue;
      this.hits.push(r);
      this.hitLo.push(x.key);
      this.hitSeq.push(x.seq);
    }
  }
}
