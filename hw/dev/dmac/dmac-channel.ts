/**
 * One DMA controller channel: its programmable state, the descriptor it is executing and its
 * statistics (SPEC.md sections 3.2 and 4). The engine (dmac-engine.ts) moves the data; this
 * file only holds state and decodes descriptors.
 */

import {
  CH_CTRL_BURST_MASK, CH_CTRL_BURST_SHIFT, CH_CTRL_EN, CH_CTRL_MODE_MASK, CH_CTRL_MODE_SHIFT, CH_CTRL_PAUSE,
  CH_STATUS_ACTIVE, CH_STATUS_ERR_SHIFT, CH_STATUS_HALTED, CH_STATUS_PAUSED, DESC_ALIGN, DESC_DST, DESC_F_LAST,
  DESC_F_TYPE_MASK, DESC_F_TYPE_SHIFT, DESC_F_VALID, DESC_FLAGS, DESC_LEN, DESC_MAX_LEN, DESC_NEXT,
  DESC_SRC, DESC_TYPE_DEV2MEM, DESC_TYPE_MEM2DEV,
} from "./dmac-regs.ts";

/** Per-channel measurements, for tests, scenarios and reports (not guest-visible). */
export class DmacChannelStats {
  /** Virtual time of the last start (EN written) and of the end of that run (chain done or error). */
  runStartNs = 0;
  runEndNs = 0;
  /** Data bytes delivered to their destination, since power-on. */
  bytes = 0;
  /** Bus time of the channel's completed tenures, and time it waited for the bus while ready. */
  busNs = 0;
  waitNs = 0;
  /** Tenures that completed, transparent beats lost to the CPU, descriptors completed. */
  units = 0;
  lostUnits = 0;
  descriptors = 0;
}

export class DmacChannel {
  /** CTRL's stored bits (EN reads 1 while active). */
  ctrl = 0;
  active = false;
  halted = false;
  err = 0;
  errAddr = 0;
  descPtr = 0;
  curDesc = 0;
  curSrc = 0;
  curDst = 0;
  intStatus = 0;
  intEnable = 0;
  doneCount = 0;
  /** The descriptor being executed (valid once fetched). */
  needFetch = true;
  len = 0;
  flags = 0;
  next = 0;
  /** Bytes read from the source / delivered to the destination of the current descriptor. */
  readDone = 0;
  written = 0;
  /** Bytes read but not yet written (memory-to-memory one beat at a time). */
  held = 0;
  readonly holdBuf: Uint8Array;
  /** Bumped by abort and reset, so a unit in flight for an older run is discarded. */
  gen = 0;
  /** Peripheral port the current descriptor uses (-1: none). */
  port = -1;
  readonly stats = new DmacChannelStats();

  constructor(
    readonly index: number,
    beatBytes: number,
  ) {
    this.holdBuf = new Uint8Array(beatBytes);
  }

  get mode(): number {
    return (this.ctrl & CH_CTRL_MODE_MASK) >> CH_CTRL_MODE_SHIFT;
  }

  /** Beats per burst: 2^BURST. */
  get burstBeats(): number {
    return 1 << ((this.ctrl & CH_CTRL_BURST_MASK) >> CH_CTRL_BURST_SHIFT);
  }

  get paused(): boolean {
    return (this.ctrl & CH_CTRL_PAUSE) !== 0;
  }

  get type(): number {
    return (this.flags & DESC_F_TYPE_MASK) >> DESC_F_TYPE_SHIFT;
  }

  /** Bytes of the current descriptor not yet delivered (0 when idle or between descriptors). */
  get residue(): number {
    return this.active && !this.needFetch ? this.len - this.written : 0;
  }

  /** CTRL as read: EN only while active. */
  ctrlValue(): number {
    return (this.ctrl & ~CH_CTRL_EN) | (this.active ? CH_CTRL_EN : 0);
  }

  /** STATUS as read; `unitInFlight`: the engine has a tenure open for this channel. */
  statusValue(unitInFlight: boolean): number {
    let v = 0;
    if (this.active) v |= CH_STATUS_ACTIVE;
    if (this.active && this.paused && !unitInFlight) v |= CH_STATUS_PAUSED;
    if (this.halted) v |= CH_STATUS_HALTED;
    return (v | (this.err << CH_STATUS_ERR_SHIFT)) >>> 0;
  }

  /** Back to power-on state (statistics survive: they are not registers). */
  reset(): void {
    this.ctrl = this.err = this.errAddr = this.descPtr = this.curDesc = this.curSrc = this.curDst = 0;
    this.intStatus = this.intEnable = this.doneCount = 0;
    this.active = this.halted = false;
    this.clearDescriptor();
    this.gen++;
  }

  clearDescriptor(): void {
    this.needFetch = true;
    this.len = this.flags = this.next = this.readDone = this.written = this.held = 0;
    this.port = -1;
  }
}

const HI = 0x100000000;

function u64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * HI;
}

export interface ParsedDescriptor {
  src: number;
  dst: number;
  len: number;
  flags: number;
  next: number;
}

/**
 * decodeDescriptor - decode the 32-byte descriptor at the start of `v` into `out`
 * `portOf` maps a bus address to the peripheral port whose PP_DATA it is (-1: none).
 * Returns: null when the descriptor is valid, else why not (for the guest error).
 */
export function decodeDescriptor(v: DataView, out: ParsedDescriptor, portOf: (addr: number) => number): string | null {
  out.src = u64(v, DESC_SRC);
  out.dst = u64(v, DESC_DST);
  out.len = v.getUint32(DESC_LEN, true);
  out.flags = v.getUint32(DESC_FLAGS, true);
  out.next = u64(v, DESC_NEXT);
  const hex = (n: number): string => `0x${n.toString(16)}`;
  if (out.len === 0 || out.len > DESC_MAX_LEN) return `length ${out.len} is outside 1..${DESC_MAX_LEN}`;
  if (out.flags & ~DESC_F_VALID) return `reserved flag bits set (flags ${hex(out.flags)})`;
  const type = (out.flags & DESC_F_TYPE_MASK) >> DESC_F_TYPE_SHIFT;
  if (type === 3) return `transfer type 3 is reserved (flags ${hex(out.flags)})`;
  if (!(out.flags & DESC_F_LAST) && out.next % DESC_ALIGN !== 0) return `next descriptor address ${hex(out.next)} is not ${DESC_ALIGN}-byte aligned`;
  if (type === DESC_TYPE_MEM2DEV && portOf(out.dst) < 0) return `memory-to-device destination ${hex(out.dst)} is not a peripheral port's PP_DATA address`;
  if (type === DESC_TYPE_DEV2MEM && portOf(out.src) < 0) return `device-to-memory source ${hex(out.src)} is not a peripheral port's PP_DATA address`;
  return null;
}
