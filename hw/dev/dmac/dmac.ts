/**
 * dmac: a multi-channel DMA controller on the platform bus (SPEC.md; section numbers below
 * refer to it). QEMU's pl330 / Synopsys dw-axi-dmac are the kind of block it stands for.
 *
 * Theory of operation
 * - One MMIO window (at least 4 KiB): global registers, then one register block per channel,
 *   then one per peripheral port. This file decodes it; the engine (dmac-engine.ts) executes
 *   descriptor chains; the channels and ports hold state (dmac-channel.ts, dmac-pport.ts).
 * - The controller is a bus master: its descriptor fetches and data go through its DMA port
 *   (so coherence, the address map and the kernel's sanitizer apply) and every tenure is
 *   arbitrated by the board's interconnect (hw/bus/interconnect.ts), which the board attaches
 *   before realize(), as it attaches the port and the line.
 * - One level-triggered interrupt line: asserted while any channel has a cause that is both
 *   pending (INT_STATUS) and enabled (INT_ENABLE); writing 1s to INT_STATUS clears them.
 * - Bad programming is a guest error and the access is refused as hardware would (reads all
 *   ones, writes change nothing); nothing here throws on what a driver does.
 */

import type { DeviceContext } from "../../core/device-context.ts";
import { TRACE_PID_DEVICE, type TraceTrack } from "../../core/trace.ts";
import type { DmaPort } from "../../dma/dma-port.ts";
import type { IrqLine } from "../../irq/intc.ts";
import { MmioRegion, type AccessSize } from "../../mem/mmio.ts";
import type { BusMaster, Interconnect } from "../../bus/interconnect.ts";
import { DmacChannel, type DmacChannelStats } from "./dmac-channel.ts";
import { DmacEngine, type DmacEngineHost } from "./dmac-engine.ts";
import { PeripheralPort, type DmacPeripheral } from "./dmac-pport.ts";
import {
  CH_BURST_MAX_LOG2,
  CH_CTRL,
  CH_CTRL_ABORT,
  CH_CTRL_BURST_MASK,
  CH_CTRL_BURST_SHIFT,
  CH_CTRL_EN,
  CH_CTRL_MODE_MASK,
  CH_CTRL_MODE_SHIFT,
  CH_CTRL_PAUSE,
  CH_CTRL_VALID,
  CH_CUR_DESC,
  CH_CUR_DST,
  CH_CUR_SRC,
  CH_DESC,
  CH_DONE_COUNT,
  CH_ERR_ADDR,
  CH_INT_ALL,
  CH_INT_CHAIN_DONE,
  CH_INT_ENABLE,
  CH_INT_ERROR,
  CH_INT_STATUS,
  CH_RESIDUE,
  CH_STATUS,
  DMAC_BEAT_BYTES,
  DMAC_CAPS_BEAT_SHIFT,
  DMAC_CAPS_PPORTS_SHIFT,
  DMAC_CH_BASE,
  DMAC_CH_STRIDE,
  DMAC_CTRL_ENABLE,
  DMAC_CTRL_RESET,
  DMAC_DEFAULT_CHANNELS,
  DMAC_DEFAULT_PPORTS,
  DMAC_ID_VALUE,
  DMAC_MAX_CHANNELS,
  DMAC_MAX_PPORTS,
  DMAC_MIN_SIZE,
  DMAC_PP_BASE,
  DMAC_PP_STRIDE,
  DMAC_REG_CAPS,
  DMAC_REG_CTRL,
  DMAC_REG_ID,
  DMAC_REG_IRQ_STATUS,
  PP_CTRL,
  PP_CTRL_EN,
  PP_CTRL_SOURCE,
  PP_DATA,
  PP_RATE,
} from "./dmac-regs.ts";

export interface DmacOptions {
  name?: string;
  /** Bytes of the register window (default and minimum 4 KiB). */
  size?: number;
  /** Index among the board's platform devices (unused for now; kept for trace ids). */
  instance?: number;
  /** Channels (default 4, at most 8). */
  channels?: number;
  /** Peripheral ports (default 4, at most 8). */
  pports?: number;
}

const HI = 0x100000000;
const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * dmacSizeProblem - why `size` cannot be a DMAC's register window
 * Returns: a message for a configuration error, or null when the size is fine.
 */
export function dmacSizeProblem(size: number): string | null {
  if (!Number.isSafeInteger(size) || size < DMAC_MIN_SIZE) {
    return `a dmac register window must be at least 4 KiB (0x${DMAC_MIN_SIZE.toString(16)}): its registers span 0x0..0x8ff and MMIO is mapped by pages; found ${Number.isSafeInteger(size) && size >= 0 ? hex(size) : String(size)}`;
  }
  return null;
}

/** Is `r` (offset within a channel block) one of the 64-bit registers? */
function isWide(r: number): boolean {
  return r === CH_DESC || r === CH_CUR_DESC || r === CH_CUR_SRC || r === CH_CUR_DST || r === CH_ERR_ADDR;
}

export class DmacDevice implements BusMaster {
  readonly name: string;
  readonly region: MmioRegion;
  /** Set by the board before realize(). */
  dma!: DmaPort;
  irq!: IrqLine;
  interconnect: Interconnect | null = null;
  readonly channels: DmacChannel[] = [];
  /** The built-in FIFO ports (their registers). */
  readonly ports: PeripheralPort[] = [];
  /** The endpoints the engine moves data to and from (a port, or what attachPeripheral put there). */
  private readonly endpoints: DmacPeripheral[] = [];
  private readonly engine: DmacEngine;
  private ctrl = 0;
  private level = false;
  private track: TraceTrack | null = null;

  constructor(
    private readonly ctx: DeviceContext,
    opts: DmacOptions = {},
  ) {
    this.name = opts.name ?? "dmac";
    const size = opts.size ?? DMAC_MIN_SIZE;
    const problem = dmacSizeProblem(size);
    if (problem) throw new RangeError(`${this.name}: ${problem}`);
    const nch = opts.channels ?? DMAC_DEFAULT_CHANNELS;
    const npp = opts.pports ?? DMAC_DEFAULT_PPORTS;
    if (!Number.isInteger(nch) || nch < 1 || nch > DMAC_MAX_CHANNELS) throw new RangeError(`${this.name}: channels must be 1..${DMAC_MAX_CHANNELS}, got ${nch}`);
    if (!Number.isInteger(npp) || npp < 0 || npp > DMAC_MAX_PPORTS) throw new RangeError(`${this.name}: pports must be 0..${DMAC_MAX_PPORTS}, got ${npp}`);
    for (let i = 0; i < nch; i++) this.channels.push(new DmacChannel(i, DMAC_BEAT_BYTES));
    for (let p = 0; p < npp; p++) {
      this.ports.push(new PeripheralPort());
      this.endpoints.push(this.ports[p]);
    }
    const self = this;
    const host: DmacEngineHost = {
      name: this.name,
      get dma() {
        return self.dma;
      },
      get interconnect() {
        return self.interconnect!;
      },
      ports: this.endpoints,
      portOf: (addr) => this.portOf(addr),
      enabled: () => (this.ctrl & DMAC_CTRL_ENABLE) !== 0,
      raise: (ch, bits) => this.raise(ch, bits),
      guestError: (msg) => this.guestError(msg),
    };
    this.engine = new DmacEngine(ctx, host, this.channels);
    this.region = new MmioRegion(`${this.name}-mmio`, size, {
      read: (off, sz) => this.mmioRead(off, sz),
      write: (off, v, sz) => this.mmioWrite(off, v, sz),
      peek: (off, sz) => this.peek(off, sz),
    }, [1, 2, 4, 8]);
  }

  /** The board hands over the memory bus arbiter (BusMaster). */
  attachInterconnect(ic: Interconnect): void {
    this.interconnect = ic;
  }

  /** Put an external endpoint (a device model's FIFO) behind peripheral port `p`'s address. */
  attachPeripheral(p: number, endpoint: DmacPeripheral): void {
    if (!(p >= 0 && p < this.ports.length)) throw new RangeError(`${this.name}: no peripheral port ${p}`);
    this.endpoints[p] = endpoint;
  }

  /** Bus address of peripheral port `p`'s PP_DATA register: what descriptors name. */
  portAddress(p: number): number {
    return this.region.base + DMAC_PP_BASE + p * DMAC_PP_STRIDE + PP_DATA;
  }

  channelStats(ch: number): Readonly<DmacChannelStats> {
    return this.channels[ch].stats;
  }

  get irqAsserted(): boolean {
    return this.level;
  }

  realize(): void {
    if (this.region.base < 0) throw new Error(`${this.name}: register window not mapped`);
    if (!this.dma) throw new Error(`${this.name}: no DMA port attached`);
    if (!this.irq) throw new Error(`${this.name}: interrupt line not connected`);
    if (!this.interconnect) throw new Error(`${this.name}: no interconnect attached (the DMAC arbitrates for the memory bus)`);
    this.irq.set(this.level);
  }

  /** Power-on state (SPEC.md section 8): every register, channel and port reset, line low. */
  reset(): void {
    this.engine.reset();
    for (const p of this.ports) p.reset();
    this.ctrl = 0;
    this.updateIrq();
  }

  /** Side-effect-free register read: what `read` would return (PP_DATA reads all ones). */
  peek(off: number, size: AccessSize): number {
    const v = this.regValue(off, size);
    return v < 0 ? allOnes(size) : v;
  }

  // ------------------------------------------------------------------ decode (SPEC.md section 3)

  private portOf(addr: number): number {
    const rel = addr - this.region.base - DMAC_PP_BASE;
    if (rel < 0 || rel % DMAC_PP_STRIDE !== PP_DATA) return -1;
    const p = rel / DMAC_PP_STRIDE;
    return p < this.ports.length ? p : -1;
  }

  /** Which block an offset is in: [kind, index, offset within the block]. */
  private locate(off: number): [kind: "global" | "ch" | "pp" | "none", index: number, reg: number] {
    if (off < DMAC_CH_BASE) return ["global", 0, off];
    const chEnd = DMAC_CH_BASE + this.channels.length * DMAC_CH_STRIDE;
    if (off < chEnd) return ["ch", Math.floor((off - DMAC_CH_BASE) / DMAC_CH_STRIDE), (off - DMAC_CH_BASE) % DMAC_CH_STRIDE];
    const ppEnd = DMAC_PP_BASE + this.ports.length * DMAC_PP_STRIDE;
    if (off >= DMAC_PP_BASE && off < ppEnd) return ["pp", Math.floor((off - DMAC_PP_BASE) / DMAC_PP_STRIDE), (off - DMAC_PP_BASE) % DMAC_PP_STRIDE];
    return ["none", 0, off];
  }

  /** Does a `size`-byte access at block offset `r` decode? */
  private sizeOk(kind: string, r: number, size: number): boolean {
    if (kind === "pp" && r === PP_DATA) return true;
    if (kind === "ch" && size === 8) return isWide(r) && (r & 7) === 0;
    if (kind === "ch" && size === 4) return true;
    return size === 4;
  }

  /** Value of a readable register, or -1 when the access does not decode. */
  private regValue(off: number, size: AccessSize): number {
    const [kind, i, r] = this.locate(off);
    if (kind === "none" || (r & (size - 1)) !== 0 || !this.sizeOk(kind, r, size)) return -1;
    if (kind === "global") {
      switch (r) {
        case DMAC_REG_ID: return DMAC_ID_VALUE;
        case DMAC_REG_CAPS: return this.channels.length | (this.ports.length << DMAC_CAPS_PPORTS_SHIFT) | (Math.log2(DMAC_BEAT_BYTES) << DMAC_CAPS_BEAT_SHIFT);
        case DMAC_REG_CTRL: return this.ctrl;
        case DMAC_REG_IRQ_STATUS: return this.irqSummary();
        default: return -1;
      }
    }
    if (kind === "ch") {
      const ch = this.channels[i];
      const base = r & ~7;
      if (isWide(base)) {
        const v = this.wide(ch, base);
        if (size === 8) return v;
        return r === base ? v >>> 0 : Math.floor(v / HI) >>> 0;
      }
      switch (r) {
        case CH_CTRL: return ch.ctrlValue();
        case CH_STATUS: return ch.statusValue(this.engine.inFlight === i);
        case CH_RESIDUE: return ch.residue;
        case CH_INT_STATUS: return ch.intStatus;
        case CH_INT_ENABLE: return ch.intEnable;
        case CH_DONE_COUNT: return ch.doneCount;
        default: return -1;
      }
    }
    return this.ports[i].regRead(r, this.ctx.scheduler.now); // PP_DATA: -1, only mmioRead pops it
  }

  private wide(ch: DmacChannel, r: number): number {
    switch (r) {
      case CH_DESC: return ch.descPtr;
      case CH_CUR_DESC: return ch.curDesc;
      case CH_CUR_SRC: return ch.curSrc;
      case CH_CUR_DST: return ch.curDst;
      default: return ch.errAddr;
    }
  }

  private mmioRead(off: number, size: AccessSize): number {
    const [kind, i, r] = this.locate(off);
    if (kind === "pp" && r === PP_DATA) return this.pioRead(i, size);
    const v = this.regValue(off, size);
    if (v >= 0) return v;
    this.guestError(`${size}-byte read at ${hex(off)} returns all ones: ${this.why(kind, r, size)}`);
    return allOnes(size);
  }

  private why(kind: string, r: number, size: number): string {
    if (kind === "none") return "no register there";
    if ((r & (size - 1)) !== 0 || !this.sizeOk(kind, r, size)) return kind === "ch" ? "channel registers take 4-byte accesses (8-byte for the 64-bit ones, aligned)" : "registers take aligned 4-byte accesses";
    return "no register there";
  }

  private mmioWrite(off: number, value: number, size: AccessSize): void {
    const [kind, i, r] = this.locate(off);
    if (kind === "none" || (r & (size - 1)) !== 0 || !this.sizeOk(kind, r, size)) {
      this.guestError(`${size}-byte write of ${hex(value)} at ${hex(off)} ignored: ${this.why(kind, r, size)}`);
      return;
    }
    if (this.ctx.trace.enabled) this.ctx.trace.instant(this.trk(), "mmio", "mmio_write", this.ctx.scheduler.now, { offset: off, value, size });
    const lo = value >>> 0;
    if (kind === "global") this.writeGlobal(off, lo);
    else if (kind === "ch") this.writeChannel(this.channels[i], r, lo, size === 8 ? Math.floor(value / HI) >>> 0 : 0, size);
    else this.writePort(i, r, value, size);
  }

  private writeGlobal(off: number, v: number): void {
    if (off !== DMAC_REG_CTRL) {
      this.guestError(`write of ${hex(v)} to read-only register at ${hex(off)} ignored`);
      return;
    }
    if (v & ~(DMAC_CTRL_ENABLE | DMAC_CTRL_RESET)) this.guestError(`CTRL write ${hex(v)}: reserved bits set, dropped`);
    if (v & DMAC_CTRL_RESET) {
      this.reset();
      return;
    }
    this.ctrl = v & DMAC_CTRL_ENABLE;
    if (this.ctrl) this.engine.kick();
  }

  private writeChannel(ch: DmacChannel, r: number, lo: number, hi: number, size: number): void {
    const base = r & ~7;
    if (base === CH_DESC) {
      if (ch.active) {
        this.guestError(`channel ${ch.index}: DESC written while the channel is active: ignored`);
        return;
      }
      if (size === 8) ch.descPtr = lo + hi * HI;
      else if (r === base) ch.descPtr = Math.floor(ch.descPtr / HI) * HI + lo;
      else ch.descPtr = (ch.descPtr % HI) + lo * HI;
      return;
    }
    switch (r) {
      case CH_CTRL:
        this.writeCtrl(ch, lo);
        return;
      case CH_INT_STATUS:
        ch.intStatus = (ch.intStatus & ~lo) >>> 0;
        this.updateIrq();
        return;
      case CH_INT_ENABLE:
        if (lo & ~CH_INT_ALL) this.guestError(`channel ${ch.index}: INT_ENABLE write ${hex(lo)}: reserved bits set, dropped`);
        ch.intEnable = lo & CH_INT_ALL;
        this.updateIrq();
        return;
      default:
        this.guestError(`channel ${ch.index}: write of ${hex(lo)} to read-only register at +${hex(r)} ignored`);
    }
  }

  /** CH_CTRL (SPEC.md section 3.2): ABORT first, then mode/burst, PAUSE and EN. */
  private writeCtrl(ch: DmacChannel, v: number): void {
    if (v & ~CH_CTRL_VALID) this.guestError(`channel ${ch.index}: CTRL write ${hex(v)}: reserved bits set, dropped`);
    if (v & CH_CTRL_ABORT) {
      this.engine.abort(ch);
      ch.ctrl = (ch.ctrl & ~(CH_CTRL_EN | CH_CTRL_PAUSE)) >>> 0;
      this.traceInstant("abort", ch.index);
      return;
    }
    const modeBurst = CH_CTRL_MODE_MASK | CH_CTRL_BURST_MASK;
    let keep = v & modeBurst;
    const mode = (v & CH_CTRL_MODE_MASK) >> CH_CTRL_MODE_SHIFT;
    const burst = (v & CH_CTRL_BURST_MASK) >> CH_CTRL_BURST_SHIFT;
    if (mode === 3 || burst > CH_BURST_MAX_LOG2) {
      this.guestError(`channel ${ch.index}: CTRL write ${hex(v)}: ${mode === 3 ? "MODE 3 is reserved" : `BURST ${burst} exceeds ${CH_BURST_MAX_LOG2}`}; mode and burst unchanged`);
      keep = ch.ctrl & modeBurst;
    } else if (ch.active && keep !== (ch.ctrl & modeBurst)) {
      this.guestError(`channel ${ch.index}: MODE/BURST changed while the channel is active: ignored`);
      keep = ch.ctrl & modeBurst;
    }
    const wasPaused = ch.paused;
    ch.ctrl = (keep | (v & CH_CTRL_PAUSE)) >>> 0;
    if (ch.active && !(v & CH_CTRL_EN)) this.guestError(`channel ${ch.index}: EN cleared while active: ignored (write ABORT to stop a channel)`);
    if (!ch.active && v & CH_CTRL_EN) {
      if (!(this.ctrl & DMAC_CTRL_ENABLE)) {
        this.guestError(`channel ${ch.index}: EN written while the controller is disabled (CTRL.ENABLE = 0): ignored`);
        return;
      }
      this.engine.start(ch);
      this.traceInstant("start", ch.index);
    } else if (wasPaused && !ch.paused) {
      this.engine.kick();
    }
  }

  // ------------------------------------------------------------------ peripheral ports

  private writePort(i: number, r: number, value: number, size: AccessSize): void {
    const p = this.ports[i];
    const now = this.ctx.scheduler.now;
    switch (r) {
      case PP_DATA: {
        const why = p.pioStore(now, value, size);
        if (why !== null) this.guestError(`port ${i}: PP_DATA write of ${size} bytes ignored: ${why}`);
        return;
      }
      case PP_CTRL:
        if (value & ~(PP_CTRL_EN | PP_CTRL_SOURCE)) this.guestError(`port ${i}: PP_CTRL write ${hex(value)}: reserved bits set, dropped`);
        p.writeCtrl(now, value >>> 0);
        this.engine.kick();
        return;
      case PP_RATE:
        p.writeRate(now, value >>> 0);
        this.engine.kick();
        return;
      default:
        this.guestError(`port ${i}: write of ${hex(value)} to read-only register at +${hex(r)} ignored`);
    }
  }

  private pioRead(i: number, size: AccessSize): number {
    const v = this.ports[i].pioLoad(this.ctx.scheduler.now, size);
    if (typeof v === "number") return v;
    this.guestError(`port ${i}: PP_DATA read of ${size} bytes returns all ones: ${v}`);
    return allOnes(size);
  }

  // ------------------------------------------------------------------ interrupts (SPEC.md section 6.4)

  private irqSummary(): number {
    let v = 0;
    for (const ch of this.channels) if (ch.intStatus & ch.intEnable) v |= 1 << ch.index;
    return v;
  }

  private raise(ch: DmacChannel, bits: number): void {
    ch.intStatus = (ch.intStatus | bits) >>> 0;
    this.traceInstant(bits & CH_INT_ERROR ? "error" : bits & CH_INT_CHAIN_DONE ? "chain_done" : "desc_done", ch.index);
    this.updateIrq();
  }

  private updateIrq(): void {
    const level = this.irqSummary() !== 0;
    this.level = level;
    if (this.irq) this.irq.set(level);
  }

  // ------------------------------------------------------------------ helpers

  private guestError(msg: string): void {
    this.ctx.log.error(this.name, msg);
    if (this.ctx.trace.enabled) this.ctx.trace.instant(this.trk(), "guest", "guest_error", this.ctx.scheduler.now, { msg });
  }

  private traceInstant(what: string, ch: number): void {
    if (this.ctx.trace.enabled) this.ctx.trace.instant(this.trk(), "dma", what, this.ctx.scheduler.now, { channel: ch });
  }

  private trk(): TraceTrack {
    return (this.track ??= this.ctx.trace.track(TRACE_PID_DEVICE, this.name));
  }
}

function allOnes(size: number): number {
  return size >= 8 ? Number.MAX_SAFE_INTEGER : 2 ** (size * 8) - 1;
}
