/**
 * rogue: a DMA-capable PCI function that looks like a plain NIC, and whose firmware an attacker
 * controls (SPEC.md; section numbers below refer to it).
 *
 * Theory of operation
 * - BAR0 (8 KiB, section 2) holds the registers at 0x00..0x37 and the 4 KiB on-device buffer at
 *   0x1000..0x1fff. One `switch` per direction decodes the registers; the buffer takes 1-, 2-
 *   and 4-byte accesses. Refused accesses are guest errors: reads return all ones, writes
 *   change nothing.
 * - The DMA engine (section 6) copies between the buffer and memory, one transfer at a time.
 *   DMA_CMD.GO checks the command and schedules completion setup + len / bandwidth later on the
 *   virtual clock; the copy happens then, as one bus-master read or write through the PCI base
 *   class (refused unless bus mastering is on) and the DMA port (IOMMU, memory, caches).
 * - Completion raises DONE; a transaction the port refused (an IOMMU fault, a master abort)
 *   raises ERROR instead, counts in ERR_COUNT and leaves its start address in ERR_ADDR.
 * - Interrupts (section 5): IRQ_STATUS & IRQ_ENABLE. INTx is level (asserted while that is
 *   non-zero); with MSI one message goes out for every cause that newly becomes pending.
 * - The firmware API (section 8) is not a register: it is the attacker's handle. It issues
 *   DMA through the device's own port at once, whatever the driver programmed, and ignores the
 *   bus-master bit (the bit is enforced by the function's own logic, which the attacker owns).
 *   Its aborts are recorded exactly as the engine's are: the device hardware reports them.
 * - Not modelled: descriptor rings, packets, power management.
 */

import { PciDevice } from "../../bus/pci.ts";
import type { DeviceContext } from "../../core/device-context.ts";
import type { ScheduledEvent } from "../../core/scheduler.ts";
import { TRACE_PID_DEVICE, type TraceTrack } from "../../core/trace.ts";
import { MmioRegion, type AccessSize, type MmioOps } from "../../mem/mmio.ts";
import * as R from "./rogue-regs.ts";

export interface RogueOptions {
  name?: string;
  /** Offer the MSI capability (default true). */
  msi?: boolean;
}

const HI = 0x100000000;
// indexes of 32-bit halves in `regs64` (low first)
const SRC = 0;
const DST = 2;
const ERR_ADDR = 4;

const hex = (n: number): string => `0x${n.toString(16)}`;

/** What a refused read returns: all ones (an 8-byte one as 2^53-1, the largest exact number). */
function allOnes(size: number): number {
  return size >= 8 ? Number.MAX_SAFE_INTEGER : 2 ** (size * 8) - 1;
}

export class RogueDevice extends PciDevice {
  /** Counters for tests and reports: transfers and firmware accesses, and how many aborted. */
  readonly stats = { transfers: 0, firmwareReads: 0, firmwareWrites: 0, aborts: 0 };
  private irqStatus = 0;
  private irqEnable = 0;
  private len = 0;
  private cmd = 0;
  private errCount = 0;
  private readonly regs64 = new Uint32Array(6);
  private readonly buf = new Uint8Array(R.ROGUE_BUF_SIZE);
  private readonly bufView = new DataView(this.buf.buffer);
  private dmaEvent: ScheduledEvent | null = null;
  private track: TraceTrack | null = null;
  private readonly onDmaDone = (): void => this.dmaDone();

  constructor(ctx: DeviceContext, opts: RogueOptions = {}) {
    super(opts.name ?? "rogue", ctx, {
      vendor: R.ROGUE_VENDOR_ID,
      device: R.ROGUE_DEVICE_ID,
      revision: R.ROGUE_REVISION,
      classCode: R.ROGUE_CLASS_CODE,
      msi: opts.msi ?? true,
    });
    const ops: MmioOps = {
      read: (off, size) => this.mmioRead(off, size),
      write: (off, value, size) => this.mmioWrite(off, value, size),
      peek: (off, size) => this.peek(off, size),
    };
    this.declareBar(0, new MmioRegion(`${this.name}-mmio`, R.ROGUE_BAR0_SIZE, ops, [1, 2, 4, 8]));
  }

  /** Check the board's wiring (QEMU's realize): a bug in the board, not the guest, if it throws. */
  realize(): void {
    if (!this.dma) throw new Error(`${this.name}: no DMA port attached`);
    if (!this.intx) throw new Error(`${this.name}: INTx line not connected`);
  }

  /** Side-effect-free register read (no log, no trace): what `read` would return. */
  peek(off: number, size: AccessSize): number {
    const v = this.regValue(off, size);
    return v < 0 ? allOnes(size) : v;
  }

  /** Reset (SPEC.md section 9): registers, buffer and counters to zero, transfer cancelled. */
  override reset(): void {
    this.ctx.scheduler.cancel(this.dmaEvent);
    this.dmaEvent = null;
    this.irqStatus = this.irqEnable = this.len = this.cmd = this.errCount = 0;
    this.regs64.fill(0);
    this.buf.fill(0);
    this.lowerIrq();
    super.reset();
  }

  // ------------------------------------------------------------- firmware API (SPEC.md section 8)

  /**
   * firmwareRead - the compromised firmware reads `len` bytes at bus address `addr`, now
   * Returns: the bytes, or null when the port refused the transaction (recorded as an error).
   */
  firmwareRead(addr: number, len: number): Uint8Array | null {
    checkFirmwareArgs(addr, len);
    this.stats.firmwareReads++;
    const out = new Uint8Array(len);
    const ok = this.dma.read(addr, out, 0, len);
    this.traceFw("fw_read", addr, len, ok);
    if (ok) return out;
    this.dmaError(addr);
    return null;
  }

  /**
   * firmwareWrite - the compromised firmware writes `bytes` at bus address `addr`, now
   * Returns: true when the whole write went through; false when the port refused some of it
   * (pages before the refused one may have been written, as on a real bus).
   */
  firmwareWrite(addr: number, bytes: Uint8Array): boolean {
    checkFirmwareArgs(addr, bytes.length);
    this.stats.firmwareWrites++;
    const ok = this.dma.write(addr, bytes, 0, bytes.length);
    this.traceFw("fw_write", addr, bytes.length, ok);
    if (!ok) this.dmaError(addr);
    return ok;
  }

  // ------------------------------------------------------------- MMIO decode (SPEC.md section 3)

  private mmioRead(off: number, size: AccessSize): number {
    let v = this.regValue(off, size);
    if (v < 0) {
      this.guestError(`${size}-byte read at ${hex(off)} returns all ones: ${this.whyNot(off, size, false)}`);
      v = allOnes(size);
    }
    return v;
  }

  /** The value of a readable location, or -1 when the access does not decode. */
  private regValue(off: number, size: AccessSize): number {
    if (off >= R.ROGUE_BUF_OFFSET) return this.bufOk(off, size) ? this.bufRead(off - R.ROGUE_BUF_OFFSET, size) : -1;
    if (!this.regSizeOk(off, size)) return -1;
    switch (off) {
      case R.ROGUE_REG_ID:
        return R.ROGUE_ID_VALUE;
      case R.ROGUE_REG_STATUS:
        return this.dmaEvent ? R.ROGUE_STATUS_BUSY : 0;
      case R.ROGUE_REG_IRQ_STATUS:
        return this.irqStatus;
      case R.ROGUE_REG_IRQ_ENABLE:
        return this.irqEnable;
      case R.ROGUE_REG_DMA_LEN:
        return this.len;
      case R.ROGUE_REG_DMA_CMD:
        return this.cmd;
      case R.ROGUE_REG_ERR_COUNT:
        return this.errCount;
      case 0x10: case 0x14: case 0x18: case 0x1c: case 0x30: case 0x34: {
        const i = this.half(off);
        return size === 4 ? this.regs64[i] : this.regs64[i] + this.regs64[i + 1] * HI;
      }
      default:
        return -1;
    }
  }

  private mmioWrite(off: number, value: number, size: AccessSize): void {
    if (off >= R.ROGUE_BUF_OFFSET) {
      if (this.bufOk(off, size)) this.bufWrite(off - R.ROGUE_BUF_OFFSET, value, size);
      else this.guestError(`${size}-byte write of ${hex(value)} at ${hex(off)} ignored: ${this.whyNot(off, size, true)}`);
      return;
    }
    if (!this.regSizeOk(off, size)) {
      this.guestError(`${size}-byte write of ${hex(value)} at ${hex(off)} ignored: ${this.whyNot(off, size, true)}`);
      return;
    }
    const lo = value >>> 0;
    switch (off) {
      case R.ROGUE_REG_ID: case R.ROGUE_REG_STATUS: case R.ROGUE_REG_ERR_COUNT: case 0x30: case 0x34:
        this.guestError(`write of ${hex(value)} to read-only register at ${hex(off)} ignored`);
        break;
      case R.ROGUE_REG_IRQ_STATUS:
        this.setIrqStatus(this.irqStatus & ~lo);
        break;
      case R.ROGUE_REG_IRQ_ENABLE:
        if (lo & ~R.ROGUE_IRQ_MASK) this.guestError(`IRQ_ENABLE ${hex(lo)}: reserved bits dropped`);
        this.setIrqEnable(lo & R.ROGUE_IRQ_MASK);
        break;
      case R.ROGUE_REG_DMA_CMD:
        this.dmaCommand(lo);
        break;
      case R.ROGUE_REG_DMA_LEN: case 0x10: case 0x14: case 0x18: case 0x1c:
        this.dmaRegWrite(off, lo, size === 8 ? Math.floor(value / HI) >>> 0 : 0, size);
        break;
      default:
        this.guestError(`write of ${hex(value)} to unknown offset ${hex(off)} ignored`);
    }
  }

  /** Registers take aligned 4-byte accesses; the 64-bit ones also an aligned 8-byte access. */
  private regSizeOk(off: number, size: number): boolean {
    if (off >= R.ROGUE_REGS_END || off % size !== 0) return false;
    if (size === 4) return true;
    return size === 8 && (off === R.ROGUE_REG_DMA_SRC || off === R.ROGUE_REG_DMA_DST || off === R.ROGUE_REG_ERR_ADDR);
  }

  private bufOk(off: number, size: number): boolean {
    return off + size <= R.ROGUE_BUF_OFFSET + R.ROGUE_BUF_SIZE && size <= 4 && off % size === 0;
  }

  private whyNot(off: number, size: number, write: boolean): string {
    if (off >= R.ROGUE_BUF_OFFSET + R.ROGUE_BUF_SIZE || (off >= R.ROGUE_REGS_END && off < R.ROGUE_BUF_OFFSET)) return "nothing decodes there";
    if (off >= R.ROGUE_BUF_OFFSET) return "the buffer takes aligned 1-, 2- and 4-byte accesses";
    if (!this.regSizeOk(off, size)) return "registers take aligned 4-byte accesses (8-byte on DMA_SRC, DMA_DST, ERR_ADDR)";
    return write ? "no writable register there" : "no register there";
  }

  private half(off: number): number {
    if (off < 0x20) return off < 0x18 ? SRC + ((off >> 2) & 1) : DST + ((off >> 2) & 1);
    return ERR_ADDR + ((off >> 2) & 1);
  }

  private bufRead(i: number, size: number): number {
    return size === 1 ? this.buf[i] : size === 2 ? this.bufView.getUint16(i, true) : this.bufView.getUint32(i, true);
  }

  private bufWrite(i: number, value: number, size: number): void {
    if (size === 1) this.buf[i] = value & 0xff;
    else if (size === 2) this.bufView.setUint16(i, value & 0xffff, true);
    else this.bufView.setUint32(i, value >>> 0, true);
  }

  // ------------------------------------------------------------- interrupts (SPEC.md section 5)

  private setIrqStatus(v: number): void {
    const before = this.irqStatus & this.irqEnable;
    this.irqStatus = v & R.ROGUE_IRQ_MASK;
    this.updateIrq(before);
  }

  private setIrqEnable(v: number): void {
    const before = this.irqStatus & this.irqEnable;
    this.irqEnable = v;
    this.updateIrq(before);
  }

  /** The one place the interrupt output is recomputed; `before` is what was pending. */
  private updateIrq(before: number): void {
    const pending = this.irqStatus & this.irqEnable;
    if (pending & ~before) this.raiseIrq();
    else if (!pending) this.lowerIrq();
  }

  // ------------------------------------------------------------- DMA engine (SPEC.md section 6)

  private reg64(i: number): number {
    return this.regs64[i] + this.regs64[i + 1] * HI;
  }

  private dmaRegWrite(off: number, lo: number, hi: number, size: number): void {
    if (this.dmaEvent) {
      this.guestError(`write to DMA register at ${hex(off)} while a transfer is running: ignored`);
      return;
    }
    if (off === R.ROGUE_REG_DMA_LEN) {
      this.len = lo;
      return;
    }
    const i = this.half(off);
    this.regs64[i] = lo;
    if (size === 8) this.regs64[i + 1] = hi;
  }

  private dmaCommand(cmd: number): void {
    if (this.dmaEvent) {
      this.guestError(`DMA_CMD ${hex(cmd)} written while a transfer is running: ignored`);
      return;
    }
    if (!(cmd & R.ROGUE_CMD_GO)) {
      this.guestError(`DMA_CMD ${hex(cmd)} without GO: ignored`);
      return;
    }
    if (cmd & ~R.ROGUE_CMD_MASK) this.guestError(`DMA_CMD ${hex(cmd)}: reserved bits dropped`);
    const toMem = (cmd & R.ROGUE_CMD_TO_MEM) !== 0;
    const bufOff = this.reg64(toMem ? SRC : DST);
    if (this.len > R.ROGUE_BUF_SIZE || bufOff + this.len > R.ROGUE_BUF_SIZE) {
      this.guestError(`DMA buffer range ${hex(bufOff)}+${hex(this.len)} is outside the ${R.ROGUE_BUF_SIZE}-byte buffer: command ignored`);
      return;
    }
    this.cmd = cmd & R.ROGUE_CMD_MASK;
    const ns = R.ROGUE_DMA_SETUP_NS + Math.ceil(this.len / R.ROGUE_DMA_BYTES_PER_NS);
    this.dmaEvent = this.ctx.scheduler.after(ns, `${this.name}:dma`, this.onDmaDone);
    this.dma.busyNs += ns;
    if (this.ctx.trace.enabled) {
      this.ctx.trace.slice(this.trk(), "dma", toMem ? "dma_to_mem" : "dma_from_mem", this.ctx.scheduler.now, ns, { len: this.len });
    }
  }

  private dmaDone(): void {
    this.dmaEvent = null;
    const toMem = (this.cmd & R.ROGUE_CMD_TO_MEM) !== 0;
    this.cmd &= ~R.ROGUE_CMD_GO;
    const bufOff = this.reg64(toMem ? SRC : DST);
    const bus = this.reg64(toMem ? DST : SRC);
    this.stats.transfers++;
    let ok = true;
    if (this.len > 0) ok = toMem ? this.dmaWrite(bus, this.buf, bufOff, this.len) : this.dmaRead(bus, this.buf, bufOff, this.len);
    if (ok) this.setIrqStatus(this.irqStatus | R.ROGUE_IRQ_DONE);
    else this.dmaError(bus);
  }

  /** A refused transaction: count it, remember where, raise ERROR (SPEC.md section 6.3). */
  private dmaError(addr: number): void {
    this.stats.aborts++;
    this.errCount = Math.min(this.errCount + 1, 0xffffffff);
    this.regs64[ERR_ADDR] = addr >>> 0;
    this.regs64[ERR_ADDR + 1] = Math.floor(addr / HI) >>> 0;
    this.setIrqStatus(this.irqStatus | R.ROGUE_IRQ_ERROR);
  }

  // ------------------------------------------------------------- helpers

  private guestError(msg: string): void {
    this.ctx.log.error(this.name, msg);
    if (this.ctx.trace.enabled) this.ctx.trace.instant(this.trk(), "guest", "guest_error", this.ctx.scheduler.now, { msg });
  }

  private traceFw(name: string, addr: number, len: number, ok: boolean): void {
    if (this.ctx.trace.enabled) this.ctx.trace.instant(this.trk(), "dma", name, this.ctx.scheduler.now, { addr, len, ok });
  }

  private trk(): TraceTrack {
    return (this.track ??= this.ctx.trace.track(TRACE_PID_DEVICE, this.name));
  }
}

/** The firmware API is the simulator's (the attack script's), not the guest's: bad arguments throw. */
function checkFirmwareArgs(addr: number, len: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0) throw new RangeError(`rogue firmware: bad bus address ${addr}`);
  if (!Number.isSafeInteger(len) || len < 1) throw new RangeError(`rogue firmware: bad length ${len}`);
}
