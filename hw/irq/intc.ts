/**
 * Interrupt controller: wired lines (edge or level), MSI vectors, masking, pending and
 * in-service state, and per-CPU delivery.
 *
 * Vectors 0..lines-1 are the wired lines; vectors lines..lines+msiVectors-1 are MSI vectors,
 * raised by a 4-byte memory write of the vector number into the MSI window (so a device's MSI
 * travels its DMA port like any other write). Each vector is routed to one CPU (its affinity).
 *
 * Delivery: a CPU asks for the highest-priority (lowest-numbered) vector that is pending,
 * unmasked and not in service, acknowledges it, runs handlers, then signals end of interrupt.
 * A level line still asserted at EOI is pending again at once: that is how an unacknowledged
 * device turns into an interrupt storm, exactly as on hardware.
 */

import { MmioRegion, type AccessSize, type MmioOps } from "../mem/mmio.ts";
import type { GuestLog } from "../core/guest-log.ts";

export type Trigger = "edge" | "level";

export interface IntcOptions {
  lines: number;
  msiVectors: number;
  cpus: number;
}

/** A device's interrupt output wire. */
export class IrqLine {
  private level = false;
  constructor(
    private readonly intc: InterruptController,
    readonly vector: number,
  ) {}

  set(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    this.intc.setInput(this.vector, level);
  }

  raise(): void {
    this.set(true);
  }

  lower(): void {
    this.set(false);
  }

  /** A short pulse (edge-style devices). */
  pulse(): void {
    this.set(true);
    this.set(false);
  }

  get asserted(): boolean {
    return this.level;
  }
}

export class InterruptController {
  readonly vectors: number;
  readonly lines: number;
  readonly trigger: Trigger[];
  readonly masked: Uint8Array;
  readonly pending: Uint8Array;
  readonly inService: Uint8Array;
  readonly input: Uint8Array;
  /** Wires currently asserting each line (several devices may share one: a wired-OR). */
  private readonly asserted: Uint16Array;
  readonly affinity: Uint16Array;
  readonly delivered: Float64Array;
  readonly msiRegion: MmioRegion;
  /** Called when `cpu` may have a deliverable interrupt (the CPU side schedules its entry). */
  onDeliverable: (cpu: number) => void = () => {};

  constructor(
    private readonly opts: IntcOptions,
    private readonly log: GuestLog,
  ) {
    this.lines = opts.lines;
    this.vectors = opts.lines + opts.msiVectors;
    this.trigger = new Array<Trigger>(this.vectors).fill("level");
    for (let v = opts.lines; v < this.vectors; v++) this.trigger[v] = "edge";
    this.masked = new Uint8Array(this.vectors).fill(1);
    this.pending = new Uint8Array(this.vectors);
    this.inService = new Uint8Array(this.vectors);
    this.input = new Uint8Array(this.vectors);
    this.asserted = new Uint16Array(this.vectors);
    this.affinity = new Uint16Array(this.vectors);
    this.delivered = new Float64Array(this.vectors);
    this.msiRegion = new MmioRegion("msi", 0x1000, this.msiOps(), [4]);
  }

  /** The wire for line `n` (devices hold this). */
  line(n: number): IrqLine {
    if (!(n >= 0 && n < this.lines)) throw new RangeError(`intc: no line ${n} (have ${this.lines})`);
    return new IrqLine(this, n);
  }

  /** First MSI vector number. */
  get msiFirst(): number {
    return this.lines;
  }

  configure(v: number, trigger: Trigger): void {
    this.trigger[v] = trigger;
  }

  setAffinity(v: number, cpu: number): void {
    this.affinity[v] = cpu % this.opts.cpus;
  }

  mask(v: number): void {
    this.masked[v] = 1;
  }

  unmask(v: number): void {
    this.masked[v] = 0;
    if (this.pending[v] && !this.inService[v]) this.onDeliverable(this.affinity[v]);
  }

  /** A wire changed level (each IrqLine reports only its own changes). */
  setInput(v: number, level: boolean): void {
    const was = this.input[v];
    this.asserted[v] += level ? 1 : this.asserted[v] > 0 ? -1 : 0;
    this.input[v] = this.asserted[v] > 0 ? 1 : 0;
    level = this.input[v] === 1;
    if (this.trigger[v] === "level") {
      this.pending[v] = level ? 1 : 0;
    } else if (level && !was) {
      this.pending[v] = 1;
    }
    if (this.pending[v]) this.notify(v);
  }

  /** Raise an edge vector directly (MSI). */
  raiseEdge(v: number): void {
    this.pending[v] = 1;
    this.notify(v);
  }

  /** Highest-priority deliverable vector for `cpu`, or -1. */
  highestPending(cpu: number): number {
    for (let v = 0; v < this.vectors; v++) {
      if (this.pending[v] && !this.masked[v] && !this.inService[v] && this.affinity[v] === cpu) return v;
    }
    return -1;
  }

  /** CPU takes vector `v`: it is in service until EOI; an edge's pending bit is consumed. */
  ack(v: number): void {
    this.inService[v] = 1;
    if (this.trigger[v] === "edge") this.pending[v] = 0;
    this.delivered[v]++;
  }

  /** End of interrupt. A level line still asserted becomes deliverable again. */
  eoi(v: number): void {
    this.inService[v] = 0;
    if (this.trigger[v] === "level") this.pending[v] = this.input[v];
    if (this.pending[v]) this.notify(v);
  }

  private notify(v: number): void {
    if (!this.masked[v] && !this.inService[v]) this.onDeliverable(this.affinity[v]);
  }

  private msiOps(): MmioOps {
    return {
      read: () => 0,
      write: (offset: number, value: number, size: AccessSize) => {
        if (offset !== 0 || size !== 4) {
          this.log.error("intc", `MSI write of size ${size} at window offset 0x${offset.toString(16)} ignored (expect a 4-byte write at offset 0)`);
          return;
        }
        if (value < this.msiFirst || value >= this.vectors) {
          this.log.error("intc", `MSI with data ${value} names no MSI vector (${this.msiFirst}..${this.vectors - 1})`);
          return;
        }
        this.raiseEdge(value);
      },
    };
  }
}
