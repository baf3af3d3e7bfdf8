/**
 * The memory interconnect: one shared bus between the CPUs' path to RAM and the DMA masters
 * that arbitrate for it (the DMA controller), with the three classic DMA transfer modes.
 *
 * Theory of operation
 * - The bus moves `beatBytes` bytes per beat at `bytesPerNs`: a beat lasts `beatNs`. It is not
 *   split-transaction: a CPU access that goes to RAM (an LLC miss fill, an uncached access)
 *   holds the bus for the whole RAM latency it is charged. Cache hits, write-backs of dirty
 *   victims (posted through a write buffer) and MMIO never touch it. CPUs do not arbitrate
 *   among themselves here: only CPU-versus-DMA contention is modelled.
 * - A DMA master asks `dmaReadyAt(now)` when it may start a tenure: not before the CPU
 *   accesses already holding the bus end, nor before another master's tenure ends. A tenure
 *   always starts at the current event time (`dmaBegin`), so a CPU access that comes later in
 *   virtual time always finds it in place; the master ends it with `dmaEnd` at its end time.
 * - What a CPU access finds during a tenure depends on the tenure's mode:
 *   burst: the master holds the bus for the whole burst; the CPU stalls until the burst ends.
 *   cycle stealing: a tenure is one beat; the CPU stalls until that beat ends (at most one
 *     beat), then holds the bus, and the master's next beat waits for it.
 *   transparent: the master only uses the bus when no CPU needs it. A CPU access never stalls;
 *     if one arrives during a transparent beat, the beat is lost (`dmaEnd` returns false and
 *     the master must redo it once the CPU is done), so the DMA only gets truly idle time.
 * - A stall is returned to the memory system, which charges it to the CPU (so it shows as CPU
 *   busy time) and it is counted here per CPU. Nothing here allocates per access.
 * - Time. DMA masters run on the event clock. A CPU runs ahead of it by the time its code has
 *   charged, so the bus needs the CPU's own time: `cpuClock` when the kernel's platform layer
 *   provides it; otherwise an estimate from the charged time (exact within a slice; at the
 *   start of a slice it may be early by the kernel's entry cost). Arbitration is in the order
 *   the simulator sees accesses, so a CPU loop that runs far ahead of the event clock between
 *   yields is granted the bus first for that whole stretch: workloads that measure contention
 *   let the event clock catch up often (see scenarios/transfer-modes.ts).
 */

export const BUS_MODE_BURST = 0;
export const BUS_MODE_CYCLE_STEAL = 1;
export const BUS_MODE_TRANSPARENT = 2;
export type BusMode = typeof BUS_MODE_BURST | typeof BUS_MODE_CYCLE_STEAL | typeof BUS_MODE_TRANSPARENT;
export const BUS_MODE_NAMES: readonly string[] = ["burst", "cycle-stealing", "transparent"];

/** Default bus geometry: 8 bytes/ns (8 GB/s) in 64-byte beats, so a beat lasts 8 ns. */
export const DEFAULT_BUS_BYTES_PER_NS = 8;
export const DEFAULT_BUS_BEAT_BYTES = 64;

export interface InterconnectOptions {
  cpus: number;
  /** The event clock (the scheduler's now). */
  now: () => number;
  bytesPerNs?: number;
  beatBytes?: number;
}

/** Who holds the bus at a given moment. */
export type BusHolder = "idle" | "cpu" | "dma";

/** Counters since construction; take a `snapshot()` before and after to measure a window. */
export class InterconnectStats {
  /** Stall charged to each CPU, in ns, and how many of its accesses stalled. */
  readonly cpuStallNs: Float64Array;
  readonly cpuStalls: Float64Array;
  /** CPU accesses that reached the bus, and the bus time they held (CPUs may overlap). */
  cpuAccesses = 0;
  cpuBusNs = 0;
  /** DMA tenures that completed, their bus time, and transparent beats lost to a CPU. */
  dmaTenures = 0;
  dmaBusNs = 0;
  dmaLost = 0;

  constructor(cpus: number) {
    this.cpuStallNs = new Float64Array(cpus);
    this.cpuStalls = new Float64Array(cpus);
  }
}

/** A copy of the counters at one moment (allocates: for measurements, not hot paths). */
export interface BusSnapshot {
  readonly atNs: number;
  readonly cpuStallNs: readonly number[];
  readonly cpuStalls: readonly number[];
  readonly cpuAccesses: number;
  readonly cpuBusNs: number;
  readonly dmaTenures: number;
  readonly dmaBusNs: number;
  readonly dmaLost: number;
}

/** What happened on the bus between two snapshots. */
export interface BusWindow {
  readonly ns: number;
  readonly cpuStallNs: readonly number[];
  readonly cpuStalls: readonly number[];
  readonly cpuBusNs: number;
  readonly dmaBusNs: number;
  readonly dmaLost: number;
  /** Fraction of the window the bus was busy (CPU holds plus DMA tenures), at most 1. */
  readonly utilisation: number;
}

/** A device that masters the bus through the interconnect (the board hands it over). */
export interface BusMaster {
  attachInterconnect(ic: Interconnect): void;
}

export function isBusMaster(x: unknown): x is BusMaster {
  return typeof (x as { attachInterconnect?: unknown }).attachInterconnect === "function";
}

export class Interconnect {
  readonly bytesPerNs: number;
  readonly beatBytes: number;
  readonly beatNs: number;
  readonly stats: InterconnectStats;
  /**
   * The CPU's own time for an access (event time plus what its running code charged). Set by
   * the kernel's platform layer when it has one; null: estimated from `charged` (see above).
   */
  cpuClock: ((cpu: number, charged: number) => number) | null = null;
  private readonly now: () => number;
  private readonly anchorTime: Float64Array;
  private readonly anchorCharged: Float64Array;
  private cpuUntil = 0;
  private dmaFrom = 0;
  private dmaUntil = 0;
  private dmaMode: BusMode = BUS_MODE_BURST;
  private dmaOpen = false;
  private dmaCut = false;

  constructor(opts: InterconnectOptions) {
    this.bytesPerNs = opts.bytesPerNs ?? DEFAULT_BUS_BYTES_PER_NS;
    this.beatBytes = opts.beatBytes ?? DEFAULT_BUS_BEAT_BYTES;
    if (!(this.bytesPerNs > 0) || !Number.isFinite(this.bytesPerNs)) throw new RangeError(`interconnect: bytesPerNs must be > 0, got ${this.bytesPerNs}`);
    if (!Number.isInteger(this.beatBytes) || this.beatBytes < 1) throw new RangeError(`interconnect: beatBytes must be a positive integer, got ${this.beatBytes}`);
    this.beatNs = this.beatBytes / this.bytesPerNs;
    this.now = opts.now;
    this.stats = new InterconnectStats(opts.cpus);
    this.anchorTime = new Float64Array(opts.cpus);
    this.anchorCharged = new Float64Array(opts.cpus);
  }

  // ------------------------------------------------------------------ CPU side

  /**
   * A CPU access to RAM is about to hold the bus for `holdNs`; `charged` is the CPU time its
   * code has charged so far (the memory system's counter). Returns the stall in ns, which the
   * caller charges to the CPU before the access's own latency.
   */
  cpuAccess(cpu: number, charged: number, holdNs: number): number {
    return this.cpuAccessAt(cpu, this.cpuTime(cpu, charged), holdNs);
  }

  /** The same, at an explicit CPU time `t` (tests, and callers that know their time). */
  cpuAccessAt(cpu: number, t: number, holdNs: number): number {
    let stall = 0;
    if (this.dmaOpen && t < this.dmaUntil && t + holdNs > this.dmaFrom) {
      if (this.dmaMode === BUS_MODE_TRANSPARENT) this.dmaCut = true;
      else if (t >= this.dmaFrom) stall = this.dmaUntil - t;
    }
    const end = t + stall + holdNs;
    if (end > this.cpuUntil) this.cpuUntil = end;
    const s = this.stats;
    s.cpuAccesses++;
    s.cpuBusNs += holdNs;
    if (stall > 0) {
      s.cpuStallNs[cpu] += stall;
      s.cpuStalls[cpu]++;
    }
    return stall;
  }

  /** The CPU's time from its charged counter (see the header comment). */
  private cpuTime(cpu: number, charged: number): number {
    if (this.cpuClock !== null) return this.cpuClock(cpu, charged);
    const now = this.now();
    let t = this.anchorTime[cpu] + (charged - this.anchorCharged[cpu]);
    if (!(t >= now)) t = now; // idle since, or a new slice started at the event time
    this.anchorTime[cpu] = t;
    this.anchorCharged[cpu] = charged;
    return t;
  }

  // ------------------------------------------------------------------ DMA side

  /** Earliest time >= `now` at which a DMA master may begin a tenure. */
  dmaReadyAt(now: number): number {
    let t = now;
    if (this.cpuUntil > t) t = this.cpuUntil;
    if (this.dmaOpen && this.dmaUntil > t) t = this.dmaUntil;
    return t;
  }

  /** Begin a tenure of `durNs` at `now` in `mode` (the caller checked dmaReadyAt(now) === now). */
  dmaBegin(now: number, durNs: number, mode: BusMode): void {
    this.dmaFrom = now;
    this.dmaUntil = now + durNs;
    this.dmaMode = mode;
    this.dmaOpen = true;
    this.dmaCut = false;
  }

  /**
   * End the current tenure. Returns false when it was a transparent beat a CPU access cut
   * into: nothing moved, and the master retries after the CPU is done.
   */
  dmaEnd(): boolean {
    this.dmaOpen = false;
    const s = this.stats;
    if (this.dmaCut) {
      s.dmaLost++;
      return false;
    }
    s.dmaTenures++;
    s.dmaBusNs += this.dmaUntil - this.dmaFrom;
    return true;
  }

  /** Bus time of `bytes` moved in whole beats. */
  beatsFor(bytes: number): number {
    return Math.ceil(bytes / this.beatBytes);
  }

  // ------------------------------------------------------------------ views

  /** Who holds the bus at `t` (as far as the accesses seen so far tell). */
  holderAt(t: number): BusHolder {
    if (this.dmaOpen && t >= this.dmaFrom && t < this.dmaUntil) return "dma";
    if (t < this.cpuUntil) return "cpu";
    return "idle";
  }

  /** The end of everything granted so far. */
  get busyUntil(): number {
    return Math.max(this.cpuUntil, this.dmaOpen ? this.dmaUntil : 0);
  }

  snapshot(): BusSnapshot {
    const s = this.stats;
    return {
      atNs: this.now(),
      cpuStallNs: [...s.cpuStallNs],
      cpuStalls: [...s.cpuStalls],
      cpuAccesses: s.cpuAccesses,
      cpuBusNs: s.cpuBusNs,
      dmaTenures: s.dmaTenures,
      dmaBusNs: s.dmaBusNs,
      dmaLost: s.dmaLost,
    };
  }

  /** What happened between two snapshots (window length from `to.atNs`, or `ns` if given). */
  static window(from: BusSnapshot, to: BusSnapshot, ns = to.atNs - from.atNs): BusWindow {
    const cpuBusNs = to.cpuBusNs - from.cpuBusNs;
    const dmaBusNs = to.dmaBusNs - from.dmaBusNs;
    return {
      ns,
      cpuStallNs: to.cpuStallNs.map((v, i) => v - from.cpuStallNs[i]),
      cpuStalls: to.cpuStalls.map((v, i) => v - from.cpuStalls[i]),
      cpuBusNs,
      dmaBusNs,
      dmaLost: to.dmaLost - from.dmaLost,
      utilisation: ns > 0 ? Math.min(1, (cpuBusNs + dmaBusNs) / ns) : 0,
    };
  }
}
