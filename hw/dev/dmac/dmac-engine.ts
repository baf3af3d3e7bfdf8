/**
 * The DMA controller's engine: one bus master shared by all channels (SPEC.md section 6).
 *
 * Theory of operation
 * - Work goes in units, one bus tenure each: a descriptor fetch (one beat), or a piece of data.
 *   Burst mode moves up to 2^BURST beats per tenure (memory-to-memory: half of them reading,
 *   half writing, through the engine's buffer); cycle stealing and transparent mode move one
 *   beat per tenure (memory-to-memory alternates a read beat and a write beat, the bytes held
 *   in the channel meanwhile). Peripheral transfers move at most a FIFO's worth per tenure and
 *   only when the port can take (or give) it.
 * - Channels take turns, round robin, one unit at a time. A unit starts only when the
 *   interconnect says the bus is free (CPU accesses in progress end first); its data moves at
 *   the end of the tenure, when the engine also learns whether a transparent beat was cut by a
 *   CPU access (then nothing moved and the unit is retried).
 * - One event is pending at most: the end of the tenure in flight, or the next moment
 *   something may start (bus free, a FIFO ready). Register writes that may create work kick
 *   the engine. Nothing allocates per unit.
 * - Errors (descriptor fetch or data bus error, invalid descriptor) halt the channel with an
 *   error code and raise its ERROR interrupt; the engine itself never stops.
 */

import type { DeviceContext } from "../../core/device-context.ts";
import type { ScheduledEvent } from "../../core/scheduler.ts";
import type { DmaPort } from "../../dma/dma-port.ts";
import type { BusMode, Interconnect } from "../../bus/interconnect.ts";
import { DmacChannel, decodeDescriptor, type ParsedDescriptor } from "./dmac-channel.ts";
import type { DmacPeripheral } from "./dmac-pport.ts";
import {
  CH_INT_CHAIN_DONE,
  CH_INT_DESC_DONE,
  CH_INT_ERROR,
  CH_MODE_BURST,
  DESC_ALIGN,
  DESC_F_IRQ,
  DESC_F_LAST,
  DESC_SIZE,
  DESC_TYPE_DEV2MEM,
  DESC_TYPE_MEM2DEV,
  DESC_TYPE_MEM2MEM,
  DMAC_BEAT_BYTES,
  DMAC_MAX_UNIT_BYTES,
  ERR_DESC_ALIGN,
  ERR_DESC_FETCH,
  ERR_DESC_INVALID,
  ERR_NAMES,
  ERR_READ,
  ERR_WRITE,
  PP_FIFO_DEPTH,
} from "./dmac-regs.ts";

const U_FETCH = 0;
const U_M2M_BURST = 1;
const U_M2M_READ = 2;
const U_M2M_WRITE = 3;
const U_M2D = 4;
const U_D2M = 5;

/** What the engine needs from the device around it. */
export interface DmacEngineHost {
  readonly name: string;
  readonly dma: DmaPort;
  readonly interconnect: Interconnect;
  readonly ports: readonly DmacPeripheral[];
  /** Peripheral port whose PP_DATA bus address is `addr`, or -1. */
  portOf(addr: number): number;
  /** Global CTRL.ENABLE. */
  enabled(): boolean;
  /** A channel's INT_STATUS gained bits: recompute the interrupt line. */
  raise(ch: DmacChannel, bits: number): void;
  guestError(msg: string): void;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

export class DmacEngine {
  private uCh = -1;
  private uKind = U_FETCH;
  private uBytes = 0;
  private uDur = 0;
  private uEnd = 0;
  private uGen = 0;
  private rr: number;
  private ev: ScheduledEvent | null = null;
  private evAt = Infinity;
  private readonly scratch = new Uint8Array(DMAC_MAX_UNIT_BYTES);
  private readonly view = new DataView(this.scratch.buffer);
  private readonly parsed: ParsedDescriptor = { src: 0, dst: 0, len: 0, flags: 0, next: 0 };
  private readonly portOf: (addr: number) => number;
  private readonly onService = (): void => this.service();

  constructor(
    private readonly ctx: DeviceContext,
    private readonly host: DmacEngineHost,
    readonly channels: readonly DmacChannel[],
  ) {
    this.rr = channels.length - 1;
    this.portOf = (addr) => host.portOf(addr);
  }

  /** The channel whose unit is on the bus now, or -1. */
  get inFlight(): number {
    return this.uCh;
  }

  /** EN written: start executing the chain at DESC (SPEC.md section 6.1). */
  start(ch: DmacChannel): void {
    const now = this.ctx.scheduler.now;
    ch.gen++;
    ch.clearDescriptor();
    ch.err = ch.errAddr = 0;
    ch.halted = false;
    ch.doneCount = 0;
    ch.curDesc = ch.descPtr;
    ch.curSrc = ch.curDst = 0;
    ch.stats.runStartNs = now;
    ch.stats.runEndNs = 0;
    if (ch.descPtr % DESC_ALIGN !== 0) {
      this.fail(ch, ERR_DESC_ALIGN, ch.descPtr, `descriptor address ${hex(ch.descPtr)} is not ${DESC_ALIGN}-byte aligned`);
      return;
    }
    ch.active = true;
    this.kick();
  }

  /** ABORT: stop at once, no interrupt; a unit in flight is discarded when its tenure ends. */
  abort(ch: DmacChannel): void {
    if (!ch.active) return;
    ch.active = false;
    ch.gen++;
    ch.clearDescriptor();
    ch.stats.runEndNs = this.ctx.scheduler.now;
  }

  /** Something may have become runnable (start, resume, a port enabled): look soon. */
  kick(): void {
    if (this.uCh < 0) this.schedule(this.ctx.scheduler.now);
  }

  /** Global reset: close the tenure in flight, forget all work. */
  reset(): void {
    this.ctx.scheduler.cancel(this.ev);
    this.ev = null;
    this.evAt = Infinity;
    if (this.uCh >= 0) this.host.interconnect.dmaEnd();
    this.uCh = -1;
    this.rr = this.channels.length - 1;
    for (const ch of this.channels) ch.reset();
  }

  // ------------------------------------------------------------------ scheduling

  private schedule(t: number): void {
    if (this.ev !== null && this.evAt <= t) return; // an earlier look re-plans anyway
    this.ctx.scheduler.cancel(this.ev);
    this.evAt = t;
    this.ev = this.ctx.scheduler.at(t, `${this.host.name}:engine`, this.onService);
  }

  private service(): void {
    this.ev = null;
    this.evAt = Infinity;
    const now = this.ctx.scheduler.now;
    if (this.uCh >= 0) {
      if (now < this.uEnd) {
        this.schedule(this.uEnd);
        return;
      }
      this.commit(now);
    }
    this.dispatch(now);
  }

  /** Pick the next ready channel and put its next unit on the bus, or wait. */
  private dispatch(now: number): void {
    if (!this.host.enabled()) return;
    const n = this.channels.length;
    let pick = -1;
    let earliest = Infinity;
    for (let i = 1; i <= n; i++) {
      const c = (this.rr + i) % n;
      const ch = this.channels[c];
      if (!ch.active || ch.paused) continue;
      const r = this.readyAt(ch, now);
      if (r <= now) {
        pick = c;
        break;
      }
      if (r < earliest) earliest = r;
    }
    if (pick < 0) {
      if (earliest < Infinity) this.schedule(earliest);
      return;
    }
    const ch = this.channels[pick];
    const bus = this.host.interconnect;
    const at = bus.dmaReadyAt(now);
    if (at > now) {
      ch.stats.waitNs += at - now;
      this.schedule(at);
      return;
    }
    const beats = this.plan(ch);
    this.uDur = (beats * DMAC_BEAT_BYTES) / bus.bytesPerNs;
    bus.dmaBegin(now, this.uDur, ch.mode as BusMode);
    this.uCh = pick;
    this.uGen = ch.gen;
    this.uEnd = now + this.uDur;
    this.rr = pick;
    this.schedule(this.uEnd);
  }

  /** One beat per tenure outside burst mode, and in burst mode with BURST = 0. */
  private single(ch: DmacChannel): boolean {
    return ch.mode !== CH_MODE_BURST || ch.burstBeats === 1;
  }

  /** Bytes the channel's next data unit moves. */
  private unitBytes(ch: DmacChannel): number {
    const beat = DMAC_BEAT_BYTES;
    const single = this.single(ch);
    switch (ch.type) {
      case DESC_TYPE_MEM2MEM:
        if (single) return ch.held > 0 ? ch.held : Math.min(ch.len - ch.readDone, beat);
        return Math.min(ch.len - ch.readDone, (ch.burstBeats >> 1) * beat);
      default:
        return Math.min(ch.len - ch.written, single ? beat : ch.burstBeats * beat, PP_FIFO_DEPTH);
    }
  }

  private readyAt(ch: DmacChannel, now: number): number {
    if (ch.needFetch || ch.type === DESC_TYPE_MEM2MEM) return now;
    return this.host.ports[ch.port].readyAt(now, this.unitBytes(ch), ch.type === DESC_TYPE_MEM2DEV);
  }

  /** Decide the unit; returns its length in beats. */
  private plan(ch: DmacChannel): number {
    const beat = DMAC_BEAT_BYTES;
    if (ch.needFetch) {
      this.uKind = U_FETCH;
      this.uBytes = DESC_SIZE;
      return 1;
    }
    const n = this.unitBytes(ch);
    this.uBytes = n;
    const beats = Math.ceil(n / beat);
    switch (ch.type) {
      case DESC_TYPE_MEM2MEM:
        if (!this.single(ch)) {
          this.uKind = U_M2M_BURST;
          return 2 * beats;
        }
        this.uKind = ch.held > 0 ? U_M2M_WRITE : U_M2M_READ;
        return beats;
      case DESC_TYPE_MEM2DEV:
        this.uKind = U_M2D;
        return beats;
      default:
        this.uKind = U_D2M;
        return beats;
    }
  }

  // ------------------------------------------------------------------ completing units

  private commit(now: number): void {
    const ch = this.channels[this.uCh];
    this.uCh = -1;
    const ok = this.host.interconnect.dmaEnd();
    if (ch.gen !== this.uGen || !ch.active) return; // aborted or restarted meanwhile
    if (!ok) {
      ch.stats.lostUnits++;
      return;
    }
    ch.stats.busNs += this.uDur;
    ch.stats.units++;
    this.host.dma.busyNs += this.uDur;
    const dma = this.host.dma;
    const n = this.uBytes;
    switch (this.uKind) {
      case U_FETCH:
        this.fetched(ch);
        return;
      case U_M2M_BURST:
        if (!dma.read(ch.curSrc, this.scratch, 0, n)) return this.fail(ch, ERR_READ, ch.curSrc, `data read of ${n} bytes at ${hex(ch.curSrc)} failed (bus error)`);
        if (!dma.write(ch.curDst, this.scratch, 0, n)) return this.fail(ch, ERR_WRITE, ch.curDst, `data write of ${n} bytes at ${hex(ch.curDst)} failed (bus error)`);
        ch.readDone += n;
        ch.curSrc += n;
        this.delivered(ch, n, true);
        break;
      case U_M2M_READ:
        if (!dma.read(ch.curSrc, ch.holdBuf, 0, n)) return this.fail(ch, ERR_READ, ch.curSrc, `data read of ${n} bytes at ${hex(ch.curSrc)} failed (bus error)`);
        ch.held = n;
        ch.readDone += n;
        ch.curSrc += n;
        return;
      case U_M2M_WRITE:
        if (!dma.write(ch.curDst, ch.holdBuf, 0, n)) return this.fail(ch, ERR_WRITE, ch.curDst, `data write of ${n} bytes at ${hex(ch.curDst)} failed (bus error)`);
        ch.held = 0;
        this.delivered(ch, n, true);
        break;
      case U_M2D: {
        const port = this.host.ports[ch.port];
        if (port.readyAt(now, n, true) > now) return; // the CPU filled the FIFO meanwhile: retry
        if (!dma.read(ch.curSrc, this.scratch, 0, n)) return this.fail(ch, ERR_READ, ch.curSrc, `data read of ${n} bytes at ${hex(ch.curSrc)} failed (bus error)`);
        port.push(now, this.scratch, 0, n);
        ch.readDone += n;
        ch.curSrc += n;
        this.delivered(ch, n, false);
        break;
      }
      default: {
        const port = this.host.ports[ch.port];
        if (port.readyAt(now, n, false) > now) return;
        port.pull(now, this.scratch, 0, n);
        if (!dma.write(ch.curDst, this.scratch, 0, n)) return this.fail(ch, ERR_WRITE, ch.curDst, `data write of ${n} bytes at ${hex(ch.curDst)} failed (bus error)`);
        ch.readDone += n;
        this.delivered(ch, n, true);
      }
    }
    if (ch.written === ch.len) this.descriptorDone(ch, now);
  }

  private delivered(ch: DmacChannel, n: number, toMemory: boolean): void {
    ch.written += n;
    if (toMemory) ch.curDst += n;
    ch.stats.bytes += n;
  }

  private fetched(ch: DmacChannel): void {
    const at = ch.curDesc;
    if (!this.host.dma.read(at, this.scratch, 0, DESC_SIZE)) {
      this.fail(ch, ERR_DESC_FETCH, at, `descriptor fetch at ${hex(at)} failed (bus error)`);
      return;
    }
    const p = this.parsed;
    const why = decodeDescriptor(this.view, p, this.portOf);
    if (why !== null) {
      this.fail(ch, ERR_DESC_INVALID, at, `invalid descriptor at ${hex(at)}: ${why}`);
      return;
    }
    ch.len = p.len;
    ch.flags = p.flags;
    ch.next = p.next;
    ch.curSrc = p.src;
    ch.curDst = p.dst;
    ch.readDone = ch.written = ch.held = 0;
    ch.needFetch = false;
    ch.port = ch.type === DESC_TYPE_MEM2DEV ? this.portOf(p.dst) : ch.type === DESC_TYPE_DEV2MEM ? this.portOf(p.src) : -1;
  }

  private descriptorDone(ch: DmacChannel, now: number): void {
    ch.doneCount = (ch.doneCount + 1) >>> 0;
    ch.stats.descriptors++;
    let bits = ch.flags & DESC_F_IRQ ? CH_INT_DESC_DONE : 0;
    if (ch.flags & DESC_F_LAST) {
      ch.active = false;
      ch.stats.runEndNs = now;
      bits |= CH_INT_CHAIN_DONE;
    } else {
      ch.curDesc = ch.next;
    }
    ch.clearDescriptor();
    if (bits) this.host.raise(ch, bits);
  }

  /** Halt the channel on an error (SPEC.md section 7). */
  private fail(ch: DmacChannel, code: number, addr: number, msg: string): void {
    this.host.guestError(`channel ${ch.index}: ${msg}; channel halted with error ${code} (${ERR_NAMES[code]})`);
    ch.active = false;
    ch.halted = true;
    ch.err = code;
    ch.errAddr = addr;
    ch.stats.runEndNs = this.ctx.scheduler.now;
    this.host.raise(ch, CH_INT_ERROR);
  }
}
