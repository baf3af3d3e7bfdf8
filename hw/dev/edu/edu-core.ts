/**
 * edu-core: the edu's registers, factorial unit, interrupt causes and DMA engine, whatever bus
 * the device sits on (SPEC.md; section numbers below refer to it).
 *
 * Theory of operation
 * - The register window (BAR0 on PCI, the MMIO base on the platform bus) is decoded by
 *   `mmioRead`/`mmioWrite` (section 3): below 0x80 only 4-byte accesses decode; the DMA block
 *   0x80..0x9f takes 4-byte accesses to either half of a 64-bit register, or 8-byte accesses to
 *   a whole one. Anything else is a guest error: a refused read returns all ones, a refused
 *   write changes nothing.
 * - Factorial (section 4.2): writing FACTORIAL latches the operand, sets STATUS.COMPUTING and
 *   schedules completion `factorialNs` later on the virtual clock. Completion stores n! mod 2^32
 *   and, if STATUS.IRQ_FACT is set at that moment, raises IRQ_STATUS.FACT.
 * - Interrupts (section 5): IRQ_STATUS is the OR of raised causes. Any raise with a non-zero
 *   status calls the host's `raiseIrq` (one MSI message, or a level line asserted); an
 *   acknowledge that leaves IRQ_STATUS at zero calls `lowerIrq`. How the interrupt travels is
 *   the host's business: the PCI function picks MSI or INTx, the platform device has one line.
 * - DMA (section 6): one transfer at a time between RAM and a 4 KiB internal buffer that the
 *   guest addresses as 0x40000..0x40fff. The command is checked when written (buffer window,
 *   busy engine) and refused as a whole if wrong; the copy itself happens at completion time,
 *   setup latency plus count at the stated bandwidth later, through the host's `dmaRead`/
 *   `dmaWrite`, so bus mastering (on PCI), the engine's address mask (28 bits by default), the
 *   port and cache coherence all apply. The mask is applied here, as QEMU's edu does, not by
 *   the port: on PCI the port also carries MSI messages, which the engine's mask does not limit.
 *   A failed bus transaction is logged by the port; edu has no error bit, so the command still
 *   completes (START clears, the completion IRQ is raised if asked for), as QEMU's does.
 * - Not modelled: the DMA buffer is not visible through the register window (as in QEMU); no
 *   power management.
 */

import type { DeviceContext } from "../../core/device-context.ts";
import type { ScheduledEvent } from "../../core/scheduler.ts";
import { TRACE_PID_DEVICE, type TraceTrack } from "../../core/trace.ts";
import type { AccessSize, MmioOps } from "../../mem/mmio.ts";
import {
  EDU_DEFAULT_DMA_BITS,
  EDU_DMA_BUF_ADDR,
  EDU_DMA_BUF_SIZE,
  EDU_DMA_CMD_DIR,
  EDU_DMA_CMD_IRQ,
  EDU_DMA_CMD_MASK,
  EDU_DMA_CMD_START,
  EDU_DMA_NS_PER_BYTE,
  EDU_DMA_SETUP_NS,
  EDU_FACTORIAL_NS,
  EDU_ID_VALUE,
  EDU_IRQ_DMA,
  EDU_IRQ_FACT,
  EDU_REG_DMA_CMD,
  EDU_REG_DMA_SRC,
  EDU_REG_FACTORIAL,
  EDU_REG_ID,
  EDU_REG_IRQ_ACK,
  EDU_REG_IRQ_RAISE,
  EDU_REG_IRQ_STATUS,
  EDU_REG_LIVENESS,
  EDU_REG_STATUS,
  EDU_STATUS_COMPUTING,
  EDU_STATUS_IRQ_FACT,
  EDU_STATUS_WRITABLE,
  EDU_WIDE_REGS_START,
} from "./edu-regs.ts";

/** What the edu logic needs from the bus it sits on (QEMU's PCIDevice / SysBusDevice parts). */
export interface EduHost {
  /** Device name for guest errors and trace tracks. */
  readonly name: string;
  /** Bus-master read of RAM into `dst[off..]`; false when the transaction failed (logged). */
  dmaRead(addr: number, dst: Uint8Array, off: number, len: number): boolean;
  /** Bus-master write of `src[off..]` to RAM; false when the transaction failed (logged). */
  dmaWrite(addr: number, src: Uint8Array, off: number, len: number): boolean;
  /** Signal the interrupt (called on every raise that leaves IRQ_STATUS non-zero). */
  raiseIrq(): void;
  /** Withdraw it (IRQ_STATUS became zero); a no-op for edge-like delivery such as MSI. */
  lowerIrq(): void;
  /** Whether interrupts currently travel as MSI messages (for the trace; false off PCI). */
  usesMsi(): boolean;
  /** First id of this device's async trace spans: ids share one namespace in a trace file. */
  traceIdBase(): number;
  /** Account time the DMA engine spends on a transfer (for the report's DMA time). */
  dmaBusy(ns: number): void;
}

export interface EduCoreOptions {
  /** Address lines the DMA engine drives (default 28, i.e. a 256 MiB reach). */
  dmaBits?: number;
  /** Factorial latency in ns (default EDU_FACTORIAL_NS). */
  factorialNs?: number;
  /** Add up to 25% seeded random latency to factorials and DMA (default off). */
  jitter?: boolean;
}

const HI = 0x100000000;
const DMA_SRC = 0; // indexes into dmaRegs (32-bit halves, low first)
const DMA_DST = 2;
const DMA_COUNT = 4;
const DMA_CMD = 6;

/** n! modulo 2^32 for a 32-bit n (the product is 0 for every n >= 34, so the loop is short). */
export function eduFactorial32(n: number): number {
  let r = 1;
  for (let i = n >>> 0; i > 1 && r !== 0; i--) r = Math.imul(r, i) >>> 0;
  return r;
}

/** What a refused read returns: all ones (an 8-byte one as 2^53-1, the largest exact number). */
export function allOnes(size: number): number {
  return size >= 8 ? Number.MAX_SAFE_INTEGER : 2 ** (size * 8) - 1;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

export class EduCore {
  readonly dmaBits: number;
  readonly factorialNs: number;
  /** The register decoder, for the host's MMIO region. */
  readonly ops: MmioOps;
  private readonly jitter: boolean;
  private liveness = 0;
  private fact = 0;
  private status = 0;
  private irqStatus = 0;
  /** src, dst, count, cmd as (low, high) 32-bit halves. */
  private readonly dmaRegs = new Uint32Array(8);
  private readonly buf = new Uint8Array(EDU_DMA_BUF_SIZE);
  private factEvent: ScheduledEvent | null = null;
  private dmaEvent: ScheduledEvent | null = null;
  private dmaSeq = 0;
  private track: TraceTrack | null = null;
  private readonly onFactorialDone = (): void => this.factorialDone();
  private readonly onDmaDone = (): void => this.dmaDone();

  constructor(
    private readonly ctx: DeviceContext,
    private readonly host: EduHost,
    opts: EduCoreOptions = {},
  ) {
    this.dmaBits = opts.dmaBits ?? EDU_DEFAULT_DMA_BITS;
    this.factorialNs = opts.factorialNs ?? EDU_FACTORIAL_NS;
    this.jitter = opts.jitter ?? false;
    if (!Number.isInteger(this.dmaBits) || this.dmaBits < 1 || this.dmaBits > 64) {
      throw new RangeError(`${host.name}: dmaBits must be an integer in 1..64, got ${this.dmaBits}`);
    }
    if (!Number.isFinite(this.factorialNs) || this.factorialNs < 0) {
      throw new RangeError(`${host.name}: factorialNs must be a finite number >= 0, got ${this.factorialNs}`);
    }
    this.ops = {
      read: (off, size) => this.mmioRead(off, size),
      write: (off, value, size) => this.mmioWrite(off, value, size),
      peek: (off, size) => this.peek(off, size),
    };
  }

  private get name(): string {
    return this.host.name;
  }

  /** Side-effect-free register read (no log, no trace): what `read` would return. */
  peek(off: number, size: AccessSize): number {
    const v = this.regValue(off, size);
    return v < 0 ? allOnes(size) : v;
  }

  /**
   * Return every register to its reset value, cancel a running factorial or DMA (no completion
   * interrupt follows) and withdraw the interrupt (SPEC.md section 9).
   */
  reset(): void {
    if (this.dmaEvent && this.ctx.trace.enabled) {
      this.ctx.trace.asyncEnd(this.trk(), "dma", "dma_transfer", this.traceId(), this.ctx.scheduler.now, { aborted: true });
    }
    this.ctx.scheduler.cancel(this.factEvent);
    this.ctx.scheduler.cancel(this.dmaEvent);
    this.factEvent = this.dmaEvent = null;
    this.liveness = this.fact = this.status = this.irqStatus = 0;
    this.dmaRegs.fill(0);
    this.buf.fill(0);
    this.host.lowerIrq();
  }

  // ------------------------------------------------------------- MMIO decode (SPEC.md section 3)

  private mmioRead(off: number, size: AccessSize): number {
    let v = this.regValue(off, size);
    if (v < 0) {
      this.guestError(this.whyUnreadable(off, size));
      v = allOnes(size);
    }
    if (this.ctx.trace.enabled) {
      this.ctx.trace.instant(this.trk(), "mmio", "mmio_read", this.ctx.scheduler.now, { offset: off, value: v, size });
    }
    return v;
  }

  /** The value of a readable register, or -1 when the access does not decode. */
  private regValue(off: number, size: AccessSize): number {
    if (!this.sizeOk(off, size)) return -1;
    switch (off) {
      case EDU_REG_ID:
        return EDU_ID_VALUE;
      case EDU_REG_LIVENESS:
        return this.liveness;
      case EDU_REG_FACTORIAL:
        return this.fact;
      case EDU_REG_STATUS:
        return this.status;
      case EDU_REG_IRQ_STATUS:
        return this.irqStatus;
      case 0x80: case 0x84: case 0x88: case 0x8c:
      case 0x90: case 0x94: case 0x98: case 0x9c: {
        const i = (off - EDU_REG_DMA_SRC) >> 2;
        return size === 4 ? this.dmaRegs[i] : this.dmaRegs[i] + this.dmaRegs[i + 1] * HI;
      }
      default:
        return -1; // write-only or nothing there
    }
  }

  private mmioWrite(off: number, value: number, size: AccessSize): void {
    if (this.ctx.trace.enabled) {
      this.ctx.trace.instant(this.trk(), "mmio", "mmio_write", this.ctx.scheduler.now, { offset: off, value, size });
    }
    if (!this.sizeOk(off, size)) {
      this.guestError(`${size}-byte write of ${hex(value)} at ${hex(off)} ignored: ${this.sizeRule(off)}`);
      return;
    }
    const lo = value >>> 0;
    const hi = size === 8 ? Math.floor(value / HI) >>> 0 : 0;
    switch (off) {
      case EDU_REG_ID:
      case EDU_REG_IRQ_STATUS:
        this.guestError(`write of ${hex(value)} to read-only register at ${hex(off)} ignored`);
        break;
      case EDU_REG_LIVENESS:
        this.liveness = ~lo >>> 0;
        break;
      case EDU_REG_FACTORIAL:
        this.factorialStart(lo);
        break;
      case EDU_REG_STATUS:
        this.status = (this.status & ~EDU_STATUS_WRITABLE) | (lo & EDU_STATUS_WRITABLE);
        break;
      case EDU_REG_IRQ_RAISE:
        this.irqRaise(lo);
        break;
      case EDU_REG_IRQ_ACK:
        this.irqAck(lo);
        break;
      case EDU_REG_DMA_CMD:
        this.dmaCommand(lo, hi);
        break;
      case 0x9c: // high half of DMA_CMD: reserved
        if (lo) this.guestError(`write of ${hex(lo)} to reserved high half of DMA_CMD ignored`);
        break;
      case 0x80: case 0x84: case 0x88: case 0x8c:
      case 0x90: case 0x94:
        this.dmaRegWrite(off, lo, hi, size);
        break;
      default:
        this.guestError(`write of ${hex(value)} to unknown offset ${hex(off)} ignored`);
    }
  }

  private sizeOk(off: number, size: number): boolean {
    if (off < EDU_WIDE_REGS_START) return size === 4;
    return size === 4 || (size === 8 && (off & 7) === 0);
  }

  private sizeRule(off: number): string {
    return off < EDU_WIDE_REGS_START ? "registers below 0x80 take 4-byte accesses only" : "the DMA block takes aligned 4- or 8-byte accesses";
  }

  private whyUnreadable(off: number, size: number): string {
    if (!this.sizeOk(off, size)) return `${size}-byte read at ${hex(off)} returns all ones: ${this.sizeRule(off)}`;
    if (off === EDU_REG_IRQ_RAISE || off === EDU_REG_IRQ_ACK) return `read of write-only register at ${hex(off)} returns all ones`;
    return `read of unknown offset ${hex(off)} returns all ones`;
  }

  // ------------------------------------------------------------- factorial (SPEC.md section 4.2)

  private factorialStart(n: number): void {
    if (this.status & EDU_STATUS_COMPUTING) {
      this.guestError(`FACTORIAL written (${hex(n)}) while a computation is running: ignored`);
      return;
    }
    this.fact = n;
    this.status |= EDU_STATUS_COMPUTING;
    const ns = this.latency(this.factorialNs);
    this.factEvent = this.ctx.scheduler.after(ns, `${this.name}:factorial`, this.onFactorialDone);
    if (this.ctx.trace.enabled) {
      this.ctx.trace.slice(this.trk(), "compute", "factorial", this.ctx.scheduler.now, ns, { n });
    }
  }

  private factorialDone(): void {
    this.factEvent = null;
    this.fact = eduFactorial32(this.fact);
    this.status &= ~EDU_STATUS_COMPUTING;
    if (this.status & EDU_STATUS_IRQ_FACT) this.irqRaise(EDU_IRQ_FACT);
  }

  // ------------------------------------------------------------- interrupts (SPEC.md section 5)

  private irqRaise(bits: number): void {
    this.irqStatus = (this.irqStatus | bits) >>> 0;
    if (this.ctx.trace.enabled) {
      this.ctx.trace.instant(this.trk(), "irq", "irq_raise", this.ctx.scheduler.now, { bits, status: this.irqStatus, msi: this.host.usesMsi() });
    }
    if (this.irqStatus) this.host.raiseIrq();
  }

  private irqAck(bits: number): void {
    this.irqStatus = (this.irqStatus & ~bits) >>> 0;
    if (this.ctx.trace.enabled) {
      this.ctx.trace.instant(this.trk(), "irq", "irq_ack", this.ctx.scheduler.now, { bits, status: this.irqStatus });
    }
    if (!this.irqStatus) this.host.lowerIrq();
  }

  // ------------------------------------------------------------- DMA engine (SPEC.md section 6)

  private get dmaBusy(): boolean {
    return (this.dmaRegs[DMA_CMD] & EDU_DMA_CMD_START) !== 0;
  }

  private reg64(i: number): number {
    return this.dmaRegs[i] + this.dmaRegs[i + 1] * HI;
  }

  private dmaRegWrite(off: number, lo: number, hi: number, size: number): void {
    if (this.dmaBusy) {
      this.guestError(`write to DMA register at ${hex(off)} while a transfer is running: ignored`);
      return;
    }
    const i = (off - EDU_REG_DMA_SRC) >> 2;
    this.dmaRegs[i] = lo;
    if (size === 8) this.dmaRegs[i + 1] = hi;
  }

  private dmaCommand(cmd: number, hi: number): void {
    if (this.dmaBusy) {
      this.guestError(`DMA command ${hex(cmd)} written while a transfer is running: ignored`);
      return;
    }
    if (!(cmd & EDU_DMA_CMD_START)) {
      this.guestError(`DMA command ${hex(cmd)} without the start bit: ignored`);
      return;
    }
    if (hi || cmd & ~EDU_DMA_CMD_MASK) this.guestError(`DMA command ${hex(cmd)}: reserved bits set, dropped`);
    const toRam = (cmd & EDU_DMA_CMD_DIR) !== 0;
    const devAddr = this.reg64(toRam ? DMA_SRC : DMA_DST);
    const count = this.reg64(DMA_COUNT);
    const end = EDU_DMA_BUF_ADDR + EDU_DMA_BUF_SIZE;
    if (devAddr < EDU_DMA_BUF_ADDR || count > EDU_DMA_BUF_SIZE || devAddr + count > end) {
      this.guestError(
        `DMA ${toRam ? "source" : "destination"} range ${hex(devAddr)}+${hex(count)} is outside the buffer window ` +
          `${hex(EDU_DMA_BUF_ADDR)}..${hex(end - 1)}: command ignored`,
      );
      return;
    }
    this.dmaRegs[DMA_CMD] = cmd & EDU_DMA_CMD_MASK;
    const ns = this.latency(EDU_DMA_SETUP_NS + count * EDU_DMA_NS_PER_BYTE);
    this.dmaEvent = this.ctx.scheduler.after(ns, `${this.name}:dma`, this.onDmaDone);
    this.host.dmaBusy(ns);
    if (this.ctx.trace.enabled) {
      const ram = this.reg64(toRam ? DMA_DST : DMA_SRC);
      this.dmaSeq++;
      this.ctx.trace.asyncBegin(this.trk(), "dma", "dma_transfer", this.traceId(), this.ctx.scheduler.now, {
        dir: toRam ? "edu->ram" : "ram->edu",
        ram,
        count,
      });
    }
  }

  private dmaDone(): void {
    this.dmaEvent = null;
    const cmd = this.dmaRegs[DMA_CMD];
    const toRam = (cmd & EDU_DMA_CMD_DIR) !== 0;
    const count = this.reg64(DMA_COUNT);
    const bufOff = this.reg64(toRam ? DMA_SRC : DMA_DST) - EDU_DMA_BUF_ADDR;
    const ram = this.clampToMask(this.reg64(toRam ? DMA_DST : DMA_SRC), count);
    let ok = true;
    if (count > 0) ok = toRam ? this.host.dmaWrite(ram, this.buf, bufOff, count) : this.host.dmaRead(ram, this.buf, bufOff, count);
    this.dmaRegs[DMA_CMD] = cmd & ~EDU_DMA_CMD_START;
    if (this.ctx.trace.enabled) {
      this.ctx.trace.asyncEnd(this.trk(), "dma", "dma_transfer", this.traceId(), this.ctx.scheduler.now, { ok });
    }
    if (cmd & EDU_DMA_CMD_IRQ) this.irqRaise(EDU_IRQ_DMA);
  }

  /**
   * The engine drives only `dmaBits` address lines (QEMU's dma_mask): a RAM address beyond them
   * loses its top bits. Done here, not by the port, because a PCI port also carries MSI
   * messages, whose doorbell address is not limited by the engine's mask.
   */
  private clampToMask(addr: number, count: number): number {
    const limit = 2 ** this.dmaBits;
    if (addr + count <= limit) return addr;
    const bus = addr % limit;
    this.guestError(`DMA address ${hex(addr)}+${hex(count)} exceeds the engine's ${this.dmaBits}-bit mask; the bus sees ${hex(bus)}`);
    return bus;
  }

  // ------------------------------------------------------------- helpers

  private latency(ns: number): number {
    return this.jitter ? ns + this.ctx.prng.nextInt(Math.floor(ns / 4) + 1) : ns;
  }

  private guestError(msg: string): void {
    this.ctx.log.error(this.name, msg);
    if (this.ctx.trace.enabled) this.ctx.trace.instant(this.trk(), "guest", "guest_error", this.ctx.scheduler.now, { msg });
  }

  private traceId(): number {
    return this.host.traceIdBase() + this.dmaSeq;
  }

  private trk(): TraceTrack {
    return (this.track ??= this.ctx.trace.track(TRACE_PID_DEVICE, this.name));
  }
}
