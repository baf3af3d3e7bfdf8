/**
 * The memory system: per-CPU L1 caches, a shared last-level cache, RAM and MMIO, as seen by
 * CPUs and by DMA masters.
 *
 * Theory of operation
 * - CPU cached accesses go through the CPU's L1, then the LLC, then RAM. Both levels are
 *   write-back and hold real bytes. A line dirty in one L1 is held by no other L1 (a store
 *   invalidates other copies; a miss snoops a dirty copy out of another L1 into the LLC), so
 *   CPUs always agree with each other.
 * - The LLC is not inclusive: evicting it writes dirty data to RAM and leaves L1 copies alone.
 * - Device accesses reach RAM. On a coherent machine they snoop: a device read first writes
 *   back dirty lines it covers, a device write invalidates the lines (writing back the bytes of
 *   a partly covered dirty line first). On a non-coherent machine they do neither, so a CPU can
 *   read stale lines and a dirty line's write-back can destroy what a device wrote.
 * - Cache maintenance (clean / invalidate / flush) acts on every level to the point of
 *   coherency, by line. Which lines an API call maintains is the kernel's policy, not ours.
 * - Uncached accesses go straight to RAM; write-combining stores gather in a one-line buffer
 *   per CPU, drained on another line, on a barrier, or on any uncached or MMIO access.
 * - Every CPU access charges virtual time to that CPU (`charged[cpu]`), which the kernel turns
 *   into busy time.
 * - With an interconnect attached (hw/bus/interconnect.ts: a DMA master arbitrates for the
 *   bus), a CPU access that goes to RAM may first stall behind a DMA tenure; the stall is
 *   charged to the CPU like the access itself.
 * - Seeded knobs make latent bugs surface: random eviction of a line from the whole hierarchy
 *   and speculative fill of the next line on a miss.
 */

import { BusError, type PhysMap } from "../mem/phys-map.ts";
import type { AccessSize } from "../mem/mmio.ts";
import * as cache from "./cache.ts";
import { CacheLevel, PageResidency } from "./cache.ts";
import type { Interconnect } from "../bus/interconnect.ts";
import * as le from "./le.ts";
import * as memTypes from "./memory-types.ts";
import { MemoryStats, type MemType, type MemoryObserver, type MemorySystemOptions } from "./memory-types.ts";

// Copied into module constants once: TurboFan folds a module's own constants (LINE_SIZE
// divisions become multiplications) but not imported bindings, which it must load and
// hole-check at every use (and under a CommonJS transform each use is a getter call).
const { CLEAN, DIRTY, INVALID, LINE_SHIFT, LINE_SIZE, LINES_PER_PAGE, pageBucket } = cache;
const { MEM_CACHED, MEM_UNCACHED, MEM_WC } = memTypes;
const { decodeLe, encodeLe } = le;
// Offsets within a line or page use `& (size - 1)` (both are powers of two), not `%`: on an
// address above 2^31 (or any value TurboFan keeps as a double) `%` is a slow library call.

const WALK_CLEAN = 0;
const WALK_INVALIDATE = 1;
const WALK_FLUSH = 2;
type WalkOp = typeof WALK_CLEAN | typeof WALK_INVALIDATE | typeof WALK_FLUSH;

export class MemorySystem {
  readonly l1: CacheLevel[];
  readonly llc: CacheLevel;
  readonly charged: Float64Array;
  readonly stats = new MemoryStats();
  /** Checker hooks (see MemoryObserver); null when no checker listens. */
  observer: MemoryObserver | null = null;
  /**
   * The memory bus arbiter (hw/bus/interconnect.ts), attached by the board when a DMA master
   * arbitrates for the bus. A CPU access that goes to RAM first asks it how long to stall
   * behind a DMA tenure. Null: no arbitration, one null check per RAM access.
   */
  interconnect: Interconnect | null = null;
  private readonly ram;
  private readonly wcLine: Float64Array;
  private readonly wcData: Uint8Array;
  private readonly wcMask: Uint8Array;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);
  private readonly lineBuf = new Uint8Array(LINE_SIZE);
  /** Lines per page bucket over every level (each level counts into it). */
  private readonly residency = new PageResidency();
  /** The cost of one line of a maintenance walk (timing.llcHitNs), read once. */
  private readonly llcHitNs: number;

  constructor(
    readonly map: PhysMap,
    readonly opts: MemorySystemOptions,
  ) {
    this.ram = map.ram;
    this.llcHitNs = opts.timing.llcHitNs;
    this.l1 = [];
    for (let i = 0; i < opts.cpus; i++) this.l1.push(new CacheLevel(`L1.${i}`, opts.l1, this.residency));
    this.llc = new CacheLevel("LLC", opts.llc, this.residency);
    this.charged = new Float64Array(opts.cpus);
    this.wcLine = new Float64Array(opts.cpus).fill(-1);
    this.wcData = new Uint8Array(opts.cpus * LINE_SIZE);
    this.wcMask = new Uint8Array(opts.cpus * LINE_SIZE);
  }

  get cpus(): number {
    return this.opts.cpus;
  }

  // ---------------------------------------------------------------- CPU data accesses

  /** CPU load of `len` bytes at physical `addr` into `dst[off..]`. */
  cpuRead(cpu: number, addr: number, dst: Uint8Array, off: number, len: number, type: MemType): void {
    this.checkRam(addr, len, false);
    if (type !== MEM_CACHED) {
      this.wcDrain(cpu);
      this.stats.uncachedAccesses++;
      if (this.interconnect !== null) this.charged[cpu] += this.interconnect.cpuAccess(cpu, this.charged[cpu], this.opts.timing.uncachedNs);
      this.charged[cpu] += this.opts.timing.uncachedNs;
      this.ram.read(addr, dst, off, len);
      return;
    }
    const l1 = this.l1[cpu];
    while (len > 0) {
      const line = Math.floor(addr / LINE_SIZE);
      const lo = addr - line * LINE_SIZE;
      const n = Math.min(len, LINE_SIZE - lo);
      const slot = this.l1Slot(cpu, line, false);
      const base = l1.dataOffset(slot) + lo;
      dst.set(l1.data.subarray(base, base + n), off);
      if (this.observer !== null) this.observer.onCpuLoad(cpu, addr, n, dst, off);
      addr += n;
      off += n;
      len -= n;
    }
  }

  /** CPU store of `len` bytes from `src[off..]` to physical `addr`. */
  cpuWrite(cpu: number, addr: number, src: Uint8Array, off: number, len: number, type: MemType): void {
    this.checkRam(addr, len, true);
    if (type === MEM_UNCACHED) {
      this.wcDrain(cpu);
      this.stats.uncachedAccesses++;
      if (this.interconnect !== null) this.charged[cpu] += this.interconnect.cpuAccess(cpu, this.charged[cpu], this.opts.timing.uncachedNs);
      this.charged[cpu] += this.opts.timing.uncachedNs;
      this.ram.write(addr, src, off, len);
      if (this.observer !== null) this.observeStore(addr, len);
      return;
    }
    if (type === MEM_WC) {
      this.wcWrite(cpu, addr, src, off, len);
      if (this.observer !== null) this.observeStore(addr, len);
      return;
    }
    const l1 = this.l1[cpu];
    while (len > 0) {
      const line = Math.floor(addr / LINE_SIZE);
      const lo = addr - line * LINE_SIZE;
      const n = Math.min(len, LINE_SIZE - lo);
      const slot = this.l1Slot(cpu, line, true);
      l1.data.set(src.subarray(off, off + n), l1.dataOffset(slot) + lo);
      l1.setState(slot, DIRTY);
      if (this.observer !== null) this.observer.onCpuStore(addr, n);
      addr += n;
      off += n;
      len -= n;
    }
  }

  /** CPU memset. */
  cpuFill(cpu: number, addr: number, value: number, len: number, type: MemType): void {
    const chunk = this.lineBuf;
    chunk.fill(value);
    while (len > 0) {
      const n = Math.min(len, LINE_SIZE - (addr & (LINE_SIZE - 1)));
      this.cpuWrite(cpu, addr, chunk, 0, n, type);
      addr += n;
      len -= n;
    }
  }

  /** Little-endian typed load of 1, 2, 4 or 8 bytes (8 returns a Number; exact below 2^53). */
  cpuLoad(cpu: number, addr: number, size: AccessSize, type: MemType): number {
    this.cpuRead(cpu, addr, this.scratch, 0, size, type);
    return decodeLe(this.scratchView, size);
  }

  /** Little-endian typed store of 1, 2, 4 or 8 bytes. */
  cpuStore(cpu: number, addr: number, value: number, size: AccessSize, type: MemType): void {
    encodeLe(this.scratchView, size, value);
    this.cpuWrite(cpu, addr, this.scratch, 0, size, type);
  }

  // ---------------------------------------------------------------- MMIO

  /** CPU read of a device register. Throws BusError when nothing decodes the address. */
  mmioRead(cpu: number, addr: number, size: AccessSize): number {
    this.wcDrain(cpu);
    const r = this.map.mmioAt(addr);
    if (!r || addr + size > r.base + r.size) throw new BusError(addr, false);
    this.stats.mmioReads++;
    this.charged[cpu] += this.opts.timing.mmioNs;
    return r.ops.read(addr - r.base, size);
  }

  /** CPU write of a device register. Throws BusError when nothing decodes the address. */
  mmioWrite(cpu: number, addr: number, value: number, size: AccessSize): void {
    this.wcDrain(cpu);
    const r = this.map.mmioAt(addr);
    if (!r || addr + size > r.base + r.size) throw new BusError(addr, true);
    this.stats.mmioWrites++;
    this.charged[cpu] += this.opts.timing.mmioNs;
    r.ops.write(addr - r.base, value, size);
  }

  // ---------------------------------------------------------------- cache maintenance (PoC)

  /**
   * Write back dirty lines covering [addr, addr+len); lines stay valid and clean.
   * Returns: the lines the range covers (each charged to `cpu`, dirty or not).
   */
  cacheClean(cpu: number, addr: number, len: number): number {
    // The usual case of a DMA map (a page or less, within a page no level holds dirty): nothing
    // to write back, only the cost of the DC CVAC loop, without the walk's set-up. (`&` keeps
    // the low 32 bits of the address, exact for offsets; `/ LINE_SIZE` need not be floored for
    // pageBucket, which truncates.)
    const lo = addr & (LINES_PER_PAGE * LINE_SIZE - 1);
    const res = this.residency;
    if (len > 0 && lo + len <= LINES_PER_PAGE * LINE_SIZE && (res.dirtyLines === 0 || res.dirty[pageBucket(addr / LINE_SIZE)] === 0)) {
      const n = ((lo & (LINE_SIZE - 1)) + len + LINE_SIZE - 1) >> LINE_SHIFT;
      if (cpu >= 0) this.charged[cpu] += n * this.llcHitNs;
      return n;
    }
    return this.walkLines(cpu, addr, len, WALK_CLEAN);
  }

  /**
   * Drop lines covering [addr, addr+len) from every level; dirty data is lost.
   * Returns: the lines the range covers.
   */
  cacheInvalidate(cpu: number, addr: number, len: number): number {
    return this.walkLines(cpu, addr, len, WALK_INVALIDATE);
  }

  /** Clean then invalidate. Returns: the lines the range covers. */
  cacheFlush(cpu: number, addr: number, len: number): number {
    return this.walkLines(cpu, addr, len, WALK_FLUSH);
  }

  /** Drain this CPU's write-combining buffer to RAM (a barrier does this). */
  wcDrain(cpu: number): void {
    const line = this.wcLine[cpu];
    if (line < 0) return;
    const base = cpu * LINE_SIZE;
    const mask = this.wcMask;
    let i = 0;
    while (i < LINE_SIZE) {
      if (!mask[base + i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < LINE_SIZE && mask[base + j]) j++;
      this.ram.write(line * LINE_SIZE + i, this.wcData, base + i, j - i);
      i = j;
    }
    mask.fill(0, base, base + LINE_SIZE);
    this.wcLine[cpu] = -1;
    this.charged[cpu] += this.opts.timing.uncachedNs;
  }

  /** Where the newest copy of a line is: "L1.n", "LLC" or "RAM" (for tests and reports). */
  whereIs(addr: number): { level: string; dirty: boolean }[] {
    const line = Math.floor(addr / LINE_SIZE);
    const out: { level: string; dirty: boolean }[] = [];
    for (const c of [...this.l1, this.llc]) {
      const s = c.find(line);
      if (s >= 0) out.push({ level: c.name, dirty: c.state[s] === DIRTY });
    }
    return out;
  }

  // ---------------------------------------------------------------- device (DMA) accesses

  /** A bus master reads memory. Returns false (nothing read) when the range is not all RAM. */
  deviceRead(addr: number, dst: Uint8Array, off: number, len: number, coherent: boolean): boolean {
    if (!this.busRead(addr, dst, off, len, coherent)) return false;
    this.stats.deviceReadBytes += len;
    return true;
  }

  /**
   * A read by a translation agent (the IOMMU's context and page-table walks): a bus-master read
   * as deviceRead, but no device's DMA, so not counted in deviceReadBytes (the IOMMU counts its
   * own walk bytes).
   */
  walkerRead(addr: number, dst: Uint8Array, off: number, len: number, coherent: boolean): boolean {
    return this.busRead(addr, dst, off, len, coherent);
  }

  /** A bus-master read of RAM, snooping the caches if `coherent`; false when no RAM decodes it. */
  private busRead(addr: number, dst: Uint8Array, off: number, len: number, coherent: boolean): boolean {
    if (!this.map.isRam(addr, len)) {
      this.stats.deviceErrors++;
      return false;
    }
    if (coherent && this.anyDirty()) this.walkLines(-1, addr, len, WALK_CLEAN);
    this.ram.read(addr, dst, off, len);
    return true;
  }

  /**
   * A bus master writes memory. RAM and MMIO (e.g. an MSI doorbell) are both reachable;
   * returns false when nothing decodes the range.
   */
  deviceWrite(addr: number, src: Uint8Array, off: number, len: number, coherent: boolean): boolean {
    if (!this.map.isRam(addr, len)) {
      const r = this.map.mmioAt(addr);
      if (r && len <= 8 && addr + len <= r.base + r.size && (len === 1 || len === 2 || len === 4 || len === 8)) {
        this.scratch.set(src.subarray(off, off + len));
        r.ops.write(addr - r.base, decodeLe(this.scratchView, len), len);
        return true;
      }
      this.stats.deviceErrors++;
      return false;
    }
    if (coherent && this.anyValid()) this.snoopInvalidate(addr, len);
    this.ram.write(addr, src, off, len);
    this.stats.deviceWriteBytes += len;
    return true;
  }

  // ---------------------------------------------------------------- side-effect-free views (checkers)

  /** Copy what RAM holds at [addr, addr+len): no cache involved, nothing charged or counted. */
  peekRam(addr: number, dst: Uint8Array, off: number, len: number): void {
    this.ram.read(addr, dst, off, len);
  }

  /**
   * The bytes a cached load by `cpu` would return now, without loading anything: per line, the
   * CPU's own L1 copy, else another L1's copy (the only dirty one, if any), else the LLC's, else
   * RAM. With `cpu` -1: the newest copy any CPU would see. Nothing is charged, counted or moved.
   */
  peekCached(cpu: number, addr: number, dst: Uint8Array, off: number, len: number): void {
    while (len > 0) {
      const line = Math.floor(addr / LINE_SIZE);
      const lo = addr - line * LINE_SIZE;
      const n = Math.min(len, LINE_SIZE - lo);
      let level: CacheLevel | null = null;
      let slot = cpu >= 0 ? this.l1[cpu].find(line) : -1;
      if (slot >= 0) level = this.l1[cpu];
      for (let o = 0; level === null && o < this.l1.length; o++) {
        slot = this.l1[o].find(line);
        if (slot >= 0) level = this.l1[o];
      }
      if (level === null) {
        slot = this.llc.find(line);
        if (slot >= 0) level = this.llc;
      }
      if (level === null) this.ram.read(addr, dst, off, n);
      else dst.set(level.data.subarray(level.dataOffset(slot) + lo, level.dataOffset(slot) + lo + n), off);
      addr += n;
      off += n;
      len -= n;
    }
  }

  /** Does any cache level hold the line of `addr`? */
  isCached(addr: number): boolean {
    const line = Math.floor(addr / LINE_SIZE);
    if (!this.pageMayHold(line, false)) return false;
    if (this.llc.find(line) >= 0) return true;
    for (const c of this.l1) if (c.find(line) >= 0) return true;
    return false;
  }

  /** Is the line of `addr` dirty in some cache level? */
  isDirty(addr: number): boolean {
    const line = Math.floor(addr / LINE_SIZE);
    if (!this.pageMayHold(line, true)) return false;
    let s = this.llc.find(line);
    if (s >= 0 && this.llc.state[s] === DIRTY) return true;
    for (const c of this.l1) {
      s = c.find(line);
      if (s >= 0 && c.state[s] === DIRTY) return true;
    }
    return false;
  }

  /** Is any line dirty anywhere? (A cheap test before asking isDirty line by line.) */
  hasDirtyLines(): boolean {
    return this.anyDirty();
  }

  // ---------------------------------------------------------------- internals

  /** Tell the observer about a store that bypassed the cache, line by line. */
  private observeStore(addr: number, len: number): void {
    while (len > 0) {
      const n = Math.min(len, LINE_SIZE - (addr & (LINE_SIZE - 1)));
      this.observer!.onCpuStore(addr, n);
      addr += n;
      len -= n;
    }
  }

  private checkRam(addr: number, len: number, isWrite: boolean): void {
    if (!this.map.isRam(addr, len)) throw new BusError(addr, isWrite);
  }

  /** L1 slot of `line` for `cpu`, filling it (and keeping CPUs coherent) on a miss. */
  private l1Slot(cpu: number, line: number, forWrite: boolean): number {
    const l1 = this.l1[cpu];
    const t = this.opts.timing;
    if (this.opts.evictionRate > 0 && this.opts.prng.chance(this.opts.evictionRate)) this.injectEviction(cpu);
    let slot = l1.find(line);
    if (slot >= 0) {
      this.stats.l1Hits++;
      this.charged[cpu] += t.l1HitNs;
      l1.touch(slot);
      if (forWrite) this.dropFromOtherL1(cpu, line);
      return slot;
    }
    this.stats.l1Misses++;
    this.snoopOtherL1(cpu, line, forWrite);
    slot = this.fillL1(cpu, line);
    if (this.opts.prefetchRate > 0 && this.opts.prng.chance(this.opts.prefetchRate)) this.prefetch(cpu, line + 1, slot);
    return slot;
  }

  /** Bring `line` into this CPU's L1 from the LLC or RAM; returns its slot. */
  private fillL1(cpu: number, line: number): number {
    const l1 = this.l1[cpu];
    const slot = l1.victimFor(line);
    this.evictL1(l1, slot);
    const src = this.llcSlotFor(cpu, line);
    l1.data.set(this.llc.data.subarray(this.llc.dataOffset(src), this.llc.dataOffset(src) + LINE_SIZE), l1.dataOffset(slot));
    l1.install(slot, line, CLEAN);
    return slot;
  }

  /** LLC slot of `line`, filling from RAM on a miss (charged to `cpu`). */
  private llcSlotFor(cpu: number, line: number): number {
    const llc = this.llc;
    let s = llc.find(line);
    if (s >= 0) {
      this.stats.llcHits++;
      if (cpu >= 0) this.charged[cpu] += this.opts.timing.llcHitNs;
      llc.touch(s);
      return s;
    }
    this.stats.llcMisses++;
    if (cpu >= 0) {
      if (this.interconnect !== null) this.charged[cpu] += this.interconnect.cpuAccess(cpu, this.charged[cpu], this.opts.timing.ramNs);
      this.charged[cpu] += this.opts.timing.ramNs;
    }
    s = llc.victimFor(line);
    this.evictLlc(s);
    this.ram.read(line * LINE_SIZE, llc.data, llc.dataOffset(s), LINE_SIZE);
    llc.install(s, line, CLEAN);
    return s;
  }

  private evictL1(l1: CacheLevel, slot: number): void {
    if (l1.state[slot] === INVALID) return;
    if (l1.state[slot] === DIRTY) this.writeLineToLlc(l1.tags[slot], l1.data, l1.dataOffset(slot));
    l1.drop(slot);
  }

  private evictLlc(slot: number): void {
    const llc = this.llc;
    if (llc.state[slot] === INVALID) return;
    if (llc.state[slot] === DIRTY) {
      if (this.observer !== null) this.observer.onWriteBack(llc.tags[slot] * LINE_SIZE, llc.data, llc.dataOffset(slot));
      this.ram.write(llc.tags[slot] * LINE_SIZE, llc.data, llc.dataOffset(slot), LINE_SIZE);
      this.stats.writebacks++;
    }
    llc.drop(slot);
  }

  private writeLineToLlc(line: number, src: Uint8Array, srcOff: number): void {
    const llc = this.llc;
    let s = llc.find(line);
    if (s < 0) {
      s = llc.victimFor(line);
      this.evictLlc(s);
      llc.install(s, line, DIRTY);
    } else {
      llc.setState(s, DIRTY);
      llc.touch(s);
    }
    llc.data.set(src.subarray(srcOff, srcOff + LINE_SIZE), llc.dataOffset(s));
  }

  /** Another CPU missed on `line`: move any dirty L1 copy to the LLC; drop copies for a write. */
  private snoopOtherL1(cpu: number, line: number, forWrite: boolean): void {
    for (let o = 0; o < this.l1.length; o++) {
      if (o === cpu) continue;
      const c = this.l1[o];
      const s = c.find(line);
      if (s < 0) continue;
      if (c.state[s] === DIRTY) {
        this.writeLineToLlc(line, c.data, c.dataOffset(s));
        c.setState(s, CLEAN);
      }
      if (forWrite) c.drop(s);
    }
  }

  private dropFromOtherL1(cpu: number, line: number): void {
    for (let o = 0; o < this.l1.length; o++) {
      if (o === cpu) continue;
      const s = this.l1[o].find(line);
      if (s >= 0) this.l1[o].drop(s); // clean by the single-dirty-owner invariant
    }
  }

  private cleanLine(line: number): void {
    for (const c of this.l1) {
      const s = c.find(line);
      if (s >= 0 && c.state[s] === DIRTY) {
        if (this.observer !== null) this.observer.onWriteBack(line * LINE_SIZE, c.data, c.dataOffset(s));
        this.ram.write(line * LINE_SIZE, c.data, c.dataOffset(s), LINE_SIZE);
        c.setState(s, CLEAN);
        const ls = this.llc.find(line);
        if (ls >= 0) {
          this.llc.data.set(c.data.subarray(c.dataOffset(s), c.dataOffset(s) + LINE_SIZE), this.llc.dataOffset(ls));
          this.llc.setState(ls, CLEAN);
        }
        this.stats.writebacks++;
        this.stats.cleanedLines++;
        return;
      }
    }
    const ls = this.llc.find(line);
    if (ls >= 0 && this.llc.state[ls] === DIRTY) {
      if (this.observer !== null) this.observer.onWriteBack(line * LINE_SIZE, this.llc.data, this.llc.dataOffset(ls));
      this.ram.write(line * LINE_SIZE, this.llc.data, this.llc.dataOffset(ls), LINE_SIZE);
      this.llc.setState(ls, CLEAN);
      this.stats.writebacks++;
      this.stats.cleanedLines++;
    }
  }

  private invalidateLine(line: number): void {
    let dropped = false;
    for (const c of this.l1) {
      const s = c.find(line);
      if (s >= 0) {
        c.drop(s);
        dropped = true;
      }
    }
    const ls = this.llc.find(line);
    if (ls >= 0) {
      this.llc.drop(ls);
      dropped = true;
    }
    if (dropped) {
      this.stats.invalidatedLines++;
      if (this.observer !== null) this.observer.onLineGone(line * LINE_SIZE);
    }
  }

  /** Coherent device write: invalidate covered lines, keeping bytes of partly covered dirty ones. */
  private snoopInvalidate(addr: number, len: number): void {
    const first = Math.floor(addr / LINE_SIZE);
    const last = Math.floor((addr + len - 1) / LINE_SIZE);
    for (let line = first; line <= last; line++) {
      if ((line & (LINES_PER_PAGE - 1)) === 0 || line === first) {
        // nothing of this page is cached: no line of it to clean or drop
        const next = Math.min(last + 1, (Math.floor(line / LINES_PER_PAGE) + 1) * LINES_PER_PAGE);
        if (!this.pageMayHold(line, false)) {
          line = next - 1;
          continue;
        }
      }
      const partial = (line === first && (addr & (LINE_SIZE - 1)) !== 0) || (line === last && ((addr + len) & (LINE_SIZE - 1)) !== 0);
      if (partial) this.cleanLine(line);
      this.invalidateLine(line);
    }
  }

  /**
   * Clean, invalidate or flush (clean then invalidate, line by line) every line covering
   * [addr, addr+len), charging `cpu` (if >= 0) per line walked. A page none of whose lines any
   * level holds (dirty, for a clean) is skipped whole: those lines' clean or invalidate would
   * do nothing, count nothing and tell the observer nothing.
   */
  private walkLines(cpu: number, addr: number, len: number, op: WalkOp): number {
    if (len <= 0) return 0;
    const first = Math.floor(addr / LINE_SIZE);
    const last = Math.floor((addr + len - 1) / LINE_SIZE);
    // a clean needs only dirty lines; an invalidate or flush any line
    const held = op === WALK_CLEAN ? this.residency.dirty : this.residency.valid;
    for (let line = first; line <= last; ) {
      const stop = Math.min(last + 1, (Math.floor(line / LINES_PER_PAGE) + 1) * LINES_PER_PAGE);
      if (held[pageBucket(line)] === 0) {
        line = stop;
        continue;
      }
      for (; line < stop; line++) {
        if (op !== WALK_INVALIDATE) this.cleanLine(line);
        if (op !== WALK_CLEAN) this.invalidateLine(line);
      }
    }
    const n = last - first + 1;
    if (cpu >= 0) this.charged[cpu] += n * this.llcHitNs;
    return n;
  }

  /** May any level hold a line of the page of `line` (a dirty one, if `dirty`)? False is exact. */
  private pageMayHold(line: number, dirty: boolean): boolean {
    return (dirty ? this.residency.dirty : this.residency.valid)[pageBucket(line)] !== 0;
  }

  private anyDirty(): boolean {
    return this.residency.dirtyLines !== 0; // every level counts into it
  }

  private anyValid(): boolean {
    if (this.llc.validLines) return true;
    for (const c of this.l1) if (c.validLines) return true;
    return false;
  }

  /** A line leaves the whole hierarchy at a moment the driver does not choose. */
  private injectEviction(cpu: number): void {
    const l1 = this.l1[cpu];
    if (l1.validLines === 0) return;
    const slots = l1.sets * l1.ways;
    let s = this.opts.prng.nextInt(slots);
    for (let i = 0; i < slots && l1.state[s] === INVALID; i++) s = (s + 1) % slots;
    const line = l1.tags[s];
    this.stats.evictionsInjected++;
    this.cleanLine(line);
    this.invalidateLine(line);
  }

  /** Speculative fill: the CPU pulls a line it was not asked for. */
  private prefetch(cpu: number, line: number, keepSlot: number): void {
    if (!this.map.isRam(line * LINE_SIZE, LINE_SIZE)) return;
    const l1 = this.l1[cpu];
    // Never evict the line the demand access is about to use.
    if (l1.find(line) >= 0 || l1.victimFor(line) === keepSlot) return;
    this.snoopOtherL1(cpu, line, false);
    this.stats.prefetches++;
    const saved = this.charged[cpu];
    this.fillL1(cpu, line);
    this.charged[cpu] = saved; // speculation is off the critical path
  }

  private wcWrite(cpu: number, addr: number, src: Uint8Array, off: number, len: number): void {
    while (len > 0) {
      const line = Math.floor(addr / LINE_SIZE);
      const lo = addr - line * LINE_SIZE;
      const n = Math.min(len, LINE_SIZE - lo);
      if (this.wcLine[cpu] !== line) {
        this.wcDrain(cpu);
        this.wcLine[cpu] = line;
      }
      const base = cpu * LINE_SIZE + lo;
      this.wcData.set(src.subarray(off, off + n), base);
      this.wcMask.fill(1, base, base + n);
      addr += n;
      off += n;
      len -= n;
    }
  }
}
