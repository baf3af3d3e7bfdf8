/**
 * The DMA controller's peripheral ports (SPEC.md section 5): built-in FIFO endpoints that stand
 * for a peripheral's data register, so memory-to-device and device-to-memory transfers have
 * something real to pace them.
 *
 * Theory of operation
 * - A port is a sink (it consumes bytes, as a DAC or a UART transmitter would) or a source (it
 *   produces them, as an ADC or a receiver would) with a FIFO of PP_FIFO_DEPTH bytes and a
 *   rate in bytes per second. A sink drains at that rate, a source fills at it; rate 0 means
 *   as fast as anyone asks (a sink that is always empty, a source that is always full).
 * - The level is computed lazily from the last change (level at `t0`, the rate since), so a
 *   port costs nothing while nobody looks at it.
 * - A source produces the byte sequence 0, 1, 2, ..., 255, 0, 1, ... from its enable on. Both
 *   kinds keep a count and an FNV-1a hash of the bytes that went through, so a test or a
 *   driver can check a whole stream without keeping it.
 * - The CPU may also use a port by PIO through PP_DATA (1, 2, 4 or 8 bytes): a store pushes
 *   into a sink, a load pops from a source. Overflow and underflow are guest errors.
 */

import { decodeLe, encodeLe } from "../../cpu/le.ts";
import type { AccessSize } from "../../mem/mmio.ts";
import { PP_COUNT, PP_CTRL, PP_CTRL_EN, PP_CTRL_SOURCE, PP_DEPTH, PP_FIFO_DEPTH, PP_LEVEL, PP_RATE, PP_SUM } from "./dmac-regs.ts";

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** What the controller needs from a peripheral endpoint. */
export interface DmacPeripheral {
  /** Earliest time >= `now` at which `n` bytes can be pushed (sink) or pulled (source); Infinity: never. */
  readyAt(now: number, n: number, toDevice: boolean): number;
  /** Hand `n` bytes from `src[off..]` to the peripheral (memory-to-device); false: no room. */
  push(now: number, src: Uint8Array, off: number, n: number): boolean;
  /** Take `n` bytes from the peripheral into `dst[off..]` (device-to-memory); false: not there. */
  pull(now: number, dst: Uint8Array, off: number, n: number): boolean;
}

export class PeripheralPort implements DmacPeripheral {
  ctrl = 0;
  /** Bytes per second; 0: unlimited. */
  rate = 0;
  count = 0;
  sum = FNV_OFFSET;
  /** Test hook: sees every byte a sink consumes or a source produces. Null: off. */
  tap: ((data: Uint8Array, off: number, n: number) => void) | null = null;
  private level0 = 0;
  private t0 = 0;
  private seq = 0;
  private readonly pio = new Uint8Array(8);
  private readonly pioView = new DataView(this.pio.buffer);

  get enabled(): boolean {
    return (this.ctrl & PP_CTRL_EN) !== 0;
  }

  get isSource(): boolean {
    return (this.ctrl & PP_CTRL_SOURCE) !== 0;
  }

  /** Bytes in the FIFO at `now` (fractional while a rate drains or fills it). */
  level(now: number): number {
    if (!this.enabled) return 0;
    if (this.rate === 0) return this.isSource ? PP_FIFO_DEPTH : 0;
    const moved = (this.rate * (now - this.t0)) / 1e9;
    return this.isSource ? Math.min(PP_FIFO_DEPTH, this.level0 + moved) : Math.max(0, this.level0 - moved);
  }

  /** PP_CTRL write: enabling (or switching direction) restarts the stream from empty. */
  writeCtrl(now: number, value: number): void {
    const restart = (value & PP_CTRL_EN) !== 0 && (!this.enabled || (value & PP_CTRL_SOURCE) !== (this.ctrl & PP_CTRL_SOURCE));
    this.sync(now);
    this.ctrl = value & (PP_CTRL_EN | PP_CTRL_SOURCE);
    if (restart) {
      this.level0 = 0;
      this.t0 = now;
      this.count = 0;
      this.sum = FNV_OFFSET;
      this.seq = 0;
    }
  }

  writeRate(now: number, bytesPerSecond: number): void {
    this.sync(now);
    this.rate = bytesPerSecond >>> 0;
  }

  readyAt(now: number, n: number, toDevice: boolean): number {
    if (!this.enabled || this.isSource === toDevice || n > PP_FIFO_DEPTH) return Infinity;
    if (this.rate === 0) return now;
    const l = this.level(now);
    if (toDevice ? l + n <= PP_FIFO_DEPTH : l >= n) return now;
    // Time at which the level crosses the threshold, rounded up to the next whole ns.
    const need = toDevice ? l + n - PP_FIFO_DEPTH : n - l;
    return now + Math.ceil((need * 1e9) / this.rate);
  }

  /** Accept bytes into a sink; returns false (nothing taken) when they do not fit. */
  push(now: number, src: Uint8Array, off: number, n: number): boolean {
    this.sync(now);
    if (this.level0 + n > PP_FIFO_DEPTH + 1e-9) return false;
    if (this.rate !== 0) this.level0 += n;
    this.account(src, off, n);
    return true;
  }

  /** Produce bytes from a source; returns false (nothing produced) when not enough are there. */
  pull(now: number, dst: Uint8Array, off: number, n: number): boolean {
    this.sync(now);
    if (this.rate !== 0 && this.level0 + 1e-9 < n) return false;
    for (let i = 0; i < n; i++) dst[off + i] = this.seq++ & 0xff;
    if (this.rate !== 0) this.level0 = Math.max(0, this.level0 - n);
    this.account(dst, off, n);
    return true;
  }

  /** A register other than PP_DATA (side-effect free), or -1 when there is none at `r`. */
  regRead(r: number, now: number): number {
    switch (r) {
      case PP_CTRL: return this.ctrl;
      case PP_RATE: return this.rate;
      case PP_LEVEL: return Math.floor(this.level(now) + 1e-9);
      case PP_COUNT: return this.count;
      case PP_SUM: return this.sum;
      case PP_DEPTH: return PP_FIFO_DEPTH;
      default: return -1;
    }
  }

  /** A CPU store to PP_DATA. Returns: null, or why it was refused (for the guest error). */
  pioStore(now: number, value: number, size: AccessSize): string | null {
    if (!this.enabled || this.isSource) return `the port is ${this.enabled ? "a source" : "disabled"}`;
    encodeLe(this.pioView, size, value);
    return this.push(now, this.pio, 0, size) ? null : `${size} bytes overflow the FIFO: dropped`;
  }

  /** A CPU load from PP_DATA. Returns: the bytes (little-endian), or why not (a string). */
  pioLoad(now: number, size: AccessSize): number | string {
    if (!this.enabled || !this.isSource) return `the port is ${this.enabled ? "a sink" : "disabled"}`;
    if (!this.pull(now, this.pio, 0, size)) return `${size} bytes underflow the FIFO`;
    return decodeLe(this.pioView, size);
  }

  reset(): void {
    this.ctrl = this.rate = this.count = this.level0 = this.t0 = this.seq = 0;
    this.sum = FNV_OFFSET;
  }

  private sync(now: number): void {
    this.level0 = this.level(now);
    this.t0 = now;
  }

  private account(data: Uint8Array, off: number, n: number): void {
    let h = this.sum;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ data[off + i], FNV_PRIME) >>> 0;
    this.sum = h;
    this.count = (this.count + n) >>> 0;
    if (this.tap !== null) this.tap(data, off, n);
  }
}

/** FNV-1a (32-bit) of a byte string: what PP_SUM reads after exactly these bytes. */
export function fnv1a32(data: Uint8Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], FNV_PRIME) >>> 0;
  return h;
}
