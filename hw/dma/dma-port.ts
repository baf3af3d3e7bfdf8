/**
 * A device's DMA port: the only way a device model reaches memory.
 *
 * The port drives `addressBits` address lines: a higher address loses its top bits on the bus
 * (logged as a guest error, as 32-bit hardware given a 64-bit address would truncate it). It
 * then goes to the memory system, snooping CPU caches only when the device is coherent. A
 * transaction that hits nothing fails and the model reports the error to its driver; the port
 * never throws on guest behaviour. The IOMMU, when added, sits between `translate` and memory.
 */

import type { GuestLog } from "../core/guest-log.ts";
import type { MemorySystem } from "../cpu/memory-system.ts";
import { decodeLe, encodeLe } from "../cpu/memory-system.ts";

export interface DmaPortOptions {
  name: string;
  coherent: boolean;
  addressBits: number;
}

/** Observes every device access that reached memory (the kernel's sanitizer hooks in here). */
export interface DmaObserver {
  onDeviceAccess(port: DmaPort, addr: number, len: number, isWrite: boolean): void;
}

export class DmaPort {
  readonly name: string;
  coherent: boolean;
  addressBits: number;
  observer: DmaObserver | null = null;
  /** Time the device's DMA engine reported spending on transfers (ns), for the report. */
  busyNs = 0;
  private readonly scratch = new Uint8Array(8);
  private readonly view = new DataView(this.scratch.buffer);

  constructor(
    private readonly mem: MemorySystem,
    private readonly log: GuestLog,
    opts: DmaPortOptions,
  ) {
    this.name = opts.name;
    this.coherent = opts.coherent;
    this.addressBits = opts.addressBits;
  }

  /** Read `len` bytes at bus address `addr` into `dst[off..]`; false if the transaction failed. */
  read(addr: number, dst: Uint8Array, off: number, len: number): boolean {
    return this.transfer(addr, dst, off, len, false);
  }

  /** Write `len` bytes from `src[off..]` to bus address `addr`; false if the transaction failed. */
  write(addr: number, src: Uint8Array, off: number, len: number): boolean {
    return this.transfer(addr, src, off, len, true);
  }

  /** Little-endian 32-bit read; returns -1 when the transaction failed. */
  readU32(addr: number): number {
    return this.read(addr, this.scratch, 0, 4) ? this.view.getUint32(0, true) : -1;
  }

  /** Little-endian store of 1, 2, 4 or 8 bytes (MSI messages are 4-byte writes). */
  writeLe(addr: number, value: number, size: 1 | 2 | 4 | 8): boolean {
    encodeLe(this.view, size, value);
    return this.write(addr, this.scratch, 0, size);
  }

  readLe(addr: number, size: 1 | 2 | 4 | 8): number {
    return this.read(addr, this.scratch, 0, size) ? decodeLe(this.view, size) : -1;
  }

  /**
   * The device's address lines drive only the low `addressBits` bits: an address beyond them
   * lands modulo the limit, and a transfer running past the limit wraps around to 0.
   */
  private transfer(addr: number, buf: Uint8Array, off: number, len: number, isWrite: boolean): boolean {
    if (this.addressBits >= 53 || addr + len <= 2 ** this.addressBits) return this.access(addr, buf, off, len, isWrite);
    const limit = 2 ** this.addressBits;
    const a = addr % limit;
    this.log.error(this.name, `DMA address 0x${addr.toString(16)}+${len} exceeds the device's ${this.addressBits}-bit address lines; bus sees 0x${a.toString(16)}`);
    const first = Math.min(len, limit - a);
    if (!this.access(a, buf, off, first, isWrite)) return false;
    return first === len || this.access(0, buf, off + first, len - first, isWrite);
  }

  private access(a: number, buf: Uint8Array, off: number, len: number, isWrite: boolean): boolean {
    const ok = isWrite ? this.mem.deviceWrite(a, buf, off, len, this.coherent) : this.mem.deviceRead(a, buf, off, len, this.coherent);
    if (!ok) {
      this.log.error(this.name, `DMA ${isWrite ? "write" : "read"} of ${len} bytes at 0x${a.toString(16)} hit no memory (master abort)`);
      return false;
    }
    if (this.observer) this.observer.onDeviceAccess(this, a, len, isWrite);
    return true;
  }
}
